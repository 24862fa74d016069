"""Execution test fixtures: an accepted RFQ with a residual, as the accept flow leaves it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ClientQuote, Rfq, RfqLeg
from tests.execution.sim import CALL, CALL_HIGH, T0

SPOT = 65_000.0
#: per leg (long one contract): forward, t, vol, price_usd, delta — a call spread 70k/80k
LEG_GREEKS = [
    {"forward": 65_400.0, "t_years": 0.08, "vol": 0.5, "price_usd": 2_600.0, "delta": 0.36},
    {"forward": 65_400.0, "t_years": 0.08, "vol": 0.52, "price_usd": 780.0, "delta": 0.14},
]


async def make_rfq(
    session: AsyncSession,
    *,
    side: str = "buy",
    quantity: Decimal = Decimal(250),
    residual: Decimal = Decimal(60),
    legs: list[tuple[str, int, str]] | None = None,
    greeks: dict[str, Any] | None = None,
) -> tuple[Rfq, ClientQuote]:
    """A call spread the client bought (by default), accepted, dealers short by ``residual``."""
    legs = legs or [(CALL, 1, "buy"), (CALL_HIGH, 1, "sell")]
    rfq = Rfq(
        created_at=T0,
        expires_at=T0 + timedelta(minutes=5),
        state="partially_filled",
        underlying="BTC",
        structure="call_spread",
        side=side,
        quantity=quantity,
        accepted_side=side,
        filled_quantity=quantity,
        residual_quantity=residual,
    )
    session.add(rfq)
    await session.flush()
    for i, (instrument, ratio, direction) in enumerate(legs):
        strike = Decimal(instrument.split("-")[2])
        session.add(
            RfqLeg(
                rfq_id=rfq.id,
                leg_index=i,
                instrument=instrument,
                expiry=T0.date() + timedelta(days=30),
                strike=strike,
                option_type="call",
                ratio=ratio,
                direction=direction,
            )
        )
    quote = ClientQuote(
        rfq_id=rfq.id,
        created_at=T0,
        valid_until=T0 + timedelta(seconds=5),
        theo_usd=Decimal("1820"),
        theo_coin=Decimal("0.028"),
        ask_coin=Decimal("0.029"),
        bid_coin=Decimal("0.027"),
        status="accepted",
        greeks=greeks if greeks is not None else {"spot": SPOT, "legs": LEG_GREEKS},
    )
    session.add(quote)
    await session.flush()
    return rfq, quote
