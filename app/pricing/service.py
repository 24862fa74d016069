"""Pricing use case: snapshot → theo and greeks → hit curve → optimal client quote, stored."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import DealerSettings, PricingSettings
from app.dealers.quotes import cover_price
from app.errors import Conflict, Unprocessable
from app.marketdata.errors import MarketDataError
from app.marketdata.snapshot import MarketSnapshot as Snapshot
from app.metrics import STAGE_LATENCY
from app.models import ClientQuote, DealerQuote, MarketSnapshot, Rfq
from app.models._mixins import new_id
from app.pricing.calc import LegSpec, QuoteCalc, QuoteParams, compute_quote
from app.pricing.cover import apply_cover
from app.pricing.desk import DeskRiskRepository
from app.pricing.hit import HitCurve
from app.pricing.inventory import InventoryView
from app.quant.errors import QuantError
from app.staging import fresh, stage

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
    def __init__(
        self,
        feed: MarketDataFeed,
        hit: HitCurve,
        settings: PricingSettings,
        inventory: InventoryView | None = None,
    ) -> None:
        self.feed = feed
        self.hit = hit
        self.settings = settings
        #: the desk inventory kept between quotes (None: read for every quote)
        self.inventory = inventory

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

    async def model_quote(self, session: AsyncSession, rfq: Rfq) -> Priced:
        """The model's quote on a fresh snapshot and the desk's current inventory (not stored)."""
        try:
            snap = await self.feed.snapshot(rfq.underlying)
        except MarketDataError as exc:
            raise Unprocessable(str(exc), field="underlying", code="no_market") from exc
        if rfq.hedge_reference is not None:
            self._check_hedge_reference(float(rfq.hedge_reference), snap.spot)
        inventory = await (
            self.inventory.inventory(session, rfq.underlying)
            if self.inventory is not None
            else DeskRiskRepository(session).inventory(rfq.underlying)
        )
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
        return Priced(snap=snap, calc=calc, inventory=inventory)

    def _check_hedge_reference(self, reference: float, spot: float) -> None:
        """The delta is exchanged at the hedge reference: one far from the market (a typo, a
        stale level) would give away the difference on the whole delta, so it is refused."""
        limit = self.settings.max_hedge_reference_deviation
        deviation = abs(reference / spot - 1.0)
        if deviation > limit:
            raise Unprocessable(
                f"hedge_reference {reference:g} is {deviation:.0%} away from spot {spot:.2f}"
                f" (at most {limit:.0%})",
                field="hedge_reference",
                code="hedge_reference_off_market",
            )

    async def store_quote(
        self,
        session: AsyncSession,
        rfq: Rfq,
        priced: Priced,
        now: datetime,
        *,
        dealer_quotes: Sequence[DealerQuote] = (),
        dealer_settings: DealerSettings | None = None,
    ) -> ClientQuote:
        """Apply the cover policy to the model's prices; stage the quote and its snapshot
        (written when the caller's unit of work ends, see :func:`app.db.stage`)."""
        snap, calc = priced.snap, priced.calc
        stored = fresh(
            MarketSnapshot,
            id=new_id(),
            underlying=snap.underlying,
            taken_at=snap.as_of,
            source=snap.source,
            spot=Decimal(repr(snap.spot)),
            data=snap.to_dict(),
        )
        stage(session, stored)
        quote = _client_quote(
            rfq, calc, stored, now, self.settings.quote_valid_ms, self.hit.version, priced.inventory
        )
        if dealer_settings is not None:
            tick = self.settings.tick_coin.get(rfq.underlying, Decimal("0.0001"))
            cover_notes: dict[str, Any] = {}
            for name, desk_sells in (("ask", True), ("bid", False)):
                model_price = quote.ask_coin if desk_sells else quote.bid_coin
                if model_price is None:
                    continue
                price, covered = cover_price(dealer_quotes, rfq.quantity, desk_buys=desk_sells)
                result = apply_cover(
                    model_price,
                    desk_sells=desk_sells,
                    cover=price,
                    covered_quantity=covered,
                    quantity=rfq.quantity,
                    policy=dealer_settings.cover_policy,
                    margin=dealer_settings.back_to_back_margin_coin,
                    tick=tick,
                )
                cover_notes[name] = result.note | (
                    {"refused": result.refused} if result.refused else {}
                )
                usd = (
                    None
                    if result.price_coin is None
                    else _dec(float(result.price_coin) * snap.spot)
                )
                if desk_sells:
                    quote.ask_coin, quote.ask_usd = result.price_coin, usd
                else:
                    quote.bid_coin, quote.bid_usd = result.price_coin, usd
            quote.explanation = quote.explanation | {"dealer_cover": cover_notes}
            if quote.bid_coin is None and quote.ask_coin is None:
                raise Conflict(
                    "no side can be shown: "
                    + "; ".join(f"{k}: {v.get('refused')}" for k, v in cover_notes.items()),
                    code="no_cover",
                )
        stage(session, quote)  # written when the caller's unit of work ends
        return quote

    async def quote(self, session: AsyncSession, rfq: Rfq, now: datetime) -> ClientQuote:
        """Price and store in one go (no dealers involved)."""
        return await self.store_quote(session, rfq, await self.model_quote(session, rfq), now)


@dataclass(frozen=True)
class Priced:
    snap: Snapshot
    calc: QuoteCalc
    inventory: dict[str, float]


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
    return fresh(
        ClientQuote,
        id=new_id(),  # known at once: the row is written only when the unit of work ends
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
