"""Principal fills: the desk trades with the client at its quote and takes the risk."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Side
from app.models import ClientQuote, Fill, Rfq
from app.pricing.desk import DeskRiskRepository


def desk_risk_change(
    quote: ClientQuote, rfq: Rfq, client_side: Side, quantity: Decimal
) -> dict[str, float]:
    """The desk's new exposures: the package's (buyer's) factors, scaled to the filled size,
    with the desk's sign (it buys when the client sells)."""
    factors: dict[str, float] = quote.greeks.get("factors", {})
    scale = float(quantity / rfq.quantity) * (1.0 if client_side is Side.SELL else -1.0)
    return {k: v * scale for k, v in factors.items()}


class PrincipalFiller:
    async def fill(
        self,
        session: AsyncSession,
        rfq: Rfq,
        quote: ClientQuote,
        side: Side,
        quantity: Decimal,
        now: datetime,
    ) -> Decimal:
        price_coin = quote.ask_coin if side is Side.BUY else quote.bid_coin
        price_usd = quote.ask_usd if side is Side.BUY else quote.bid_usd
        if price_coin is None or price_usd is None:
            raise ValueError("no price on that side")
        session.add(
            Fill(
                rfq_id=rfq.id,
                filled_at=now,
                counterparty="client",
                side="sell" if side is Side.BUY else "buy",
                quantity=quantity,
                price_coin=price_coin,
                price_usd=price_usd,
            )
        )
        await DeskRiskRepository(session).add(desk_risk_change(quote, rfq, side, quantity))
        await session.flush()
        return quantity
