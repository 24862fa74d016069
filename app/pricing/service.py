"""Pricing use case: snapshot → theo and greeks → hit curve → optimal client quote, stored."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PricingSettings
from app.errors import Conflict, Unprocessable
from app.marketdata.errors import MarketDataError
from app.metrics import STAGE_LATENCY
from app.models import ClientQuote, MarketSnapshot, Rfq
from app.pricing.calc import LegSpec, QuoteCalc, QuoteParams, compute_quote
from app.pricing.desk import DeskRiskRepository
from app.pricing.hit import HitCurve
from app.quant.errors import QuantError

if TYPE_CHECKING:
    from app.marketdata.feed import MarketDataFeed

log = structlog.get_logger(__name__)


def legs_of(rfq: Rfq) -> list[LegSpec]:
    return [
        LegSpec(
            expiry=leg.expiry,
            strike=float(leg.strike),
            is_call=leg.option_type == "call",
            ratio=leg.ratio,
            sign=1 if leg.direction == "buy" else -1,
        )
        for leg in rfq.legs
    ]


class PricingService:
    def __init__(self, feed: MarketDataFeed, hit: HitCurve, settings: PricingSettings) -> None:
        self.feed = feed
        self.hit = hit
        self.settings = settings

    def params(self, underlying: str) -> QuoteParams:
        s = self.settings
        return QuoteParams(
            risk_aversion_per_usd=s.risk_aversion_per_usd,
            horizon_days=s.horizon_days,
            vol_of_vol_points_per_day=s.vol_of_vol_points_per_day,
            spot_vol_correlation=s.spot_vol_correlation,
            vega_term_decorrelation_years=s.vega_term_decorrelation_years,
            tick_coin=s.tick_coin.get(underlying, Decimal("0.0001")),
            max_abs_delta_coins=s.max_abs_delta_coins.get(underlying, float("inf")),
            max_abs_vega_usd=s.max_abs_vega_usd.get(underlying, float("inf")),
        )

    async def quote(self, session: AsyncSession, rfq: Rfq, now: datetime) -> ClientQuote:
        """Price the RFQ on a fresh snapshot and store the quote with that snapshot."""
        try:
            snap = await self.feed.snapshot(rfq.underlying)
        except MarketDataError as exc:
            raise Unprocessable(str(exc), field="underlying", code="no_market") from exc
        inventory = await DeskRiskRepository(session).inventory(rfq.underlying)
        started = time.perf_counter()
        try:
            calc = compute_quote(
                snap,
                legs_of(rfq),
                quantity=float(rfq.quantity),
                side=rfq.side,
                hedge_reference=float(rfq.hedge_reference) if rfq.hedge_reference else None,
                structure=rfq.structure,
                client=rfq.client,
                inventory=inventory,
                params=self.params(rfq.underlying),
                hit=self.hit,
            )
        except (QuantError, MarketDataError) as exc:
            raise Unprocessable(
                f"cannot price this package: {exc}", field="legs", code="unpriceable"
            ) from exc
        STAGE_LATENCY.labels("price").observe(time.perf_counter() - started)
        if calc.bid is None and calc.ask is None:
            reasons = "; ".join(f"{k}: {v}" for k, v in calc.refused.items())
            raise Conflict(f"risk limit: {reasons}", code="risk_limit")
        stored = MarketSnapshot(
            underlying=snap.underlying,
            taken_at=snap.as_of,
            source=snap.source,
            spot=Decimal(repr(snap.spot)),
            data=snap.to_dict(),
        )
        session.add(stored)
        await session.flush()
        quote = _client_quote(
            rfq, calc, stored, now, self.settings.quote_valid_ms, self.hit.version, inventory
        )
        session.add(quote)
        await session.flush()
        return quote


def _client_quote(
    rfq: Rfq,
    calc: QuoteCalc,
    snap: MarketSnapshot,
    now: datetime,
    valid_ms: int,
    model_version: str,
    inventory: dict[str, float],
) -> ClientQuote:
    spot = float(snap.spot)
    explanation = {
        "units": "USD per structure unit; vol points are gross-vega vol points",
        "bid": calc.bid.explanation if calc.bid else None,
        "ask": calc.ask.explanation if calc.ask else None,
        "not_quoted": calc.refused,
        "desk_inventory_before": inventory,
        "package_factors": calc.factors,
    }
    return ClientQuote(
        rfq_id=rfq.id,
        snapshot_id=snap.id,
        created_at=now,
        valid_until=min(now + timedelta(milliseconds=valid_ms), rfq.expires_at),
        theo_usd=_dec(calc.theo_usd),
        theo_coin=_dec(calc.theo_coin),
        bid_coin=calc.bid.price_coin if calc.bid else None,
        ask_coin=calc.ask.price_coin if calc.ask else None,
        bid_usd=_dec(float(calc.bid.price_coin) * spot) if calc.bid else None,
        ask_usd=_dec(float(calc.ask.price_coin) * spot) if calc.ask else None,
        p_hit_bid=calc.bid.hit_probability if calc.bid else None,
        p_hit_ask=calc.ask.hit_probability if calc.ask else None,
        model_version=model_version,
        status="live",
        greeks=calc.greeks | {"factors": calc.factors, "spot": spot},
        explanation=explanation,
    )


def _dec(x: float) -> Decimal:
    return Decimal(f"{x:.8f}")
