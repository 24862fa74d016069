"""How a fill moves the desk's risk."""

from __future__ import annotations

from decimal import Decimal

from app.domain.enums import Side
from app.models import ClientQuote, Rfq


def desk_risk_change(
    quote: ClientQuote, rfq: Rfq, client_side: Side, quantity: Decimal
) -> dict[str, float]:
    """The desk's new exposures: the package's (buyer's) factors, scaled to the filled size,
    with the desk's sign (it buys when the client sells)."""
    factors: dict[str, float] = quote.greeks.get("factors", {})
    scale = float(quantity / rfq.quantity) * (1.0 if client_side is Side.SELL else -1.0)
    return {k: v * scale for k, v in factors.items()}
