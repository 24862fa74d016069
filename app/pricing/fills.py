"""How a fill moves the desk's risk."""

from __future__ import annotations

from decimal import Decimal

from app.domain.enums import Side
from app.models import ClientQuote, Rfq
from app.pricing.risk import delta_factor


def desk_risk_change(
    quote: ClientQuote, rfq: Rfq, client_side: Side, quantity: Decimal
) -> dict[str, float]:
    """The desk's new exposures: the package's (buyer's) factors, scaled to the filled size,
    with the desk's sign (it buys when the client sells)."""
    factors: dict[str, float] = quote.greeks.get("factors", {})
    scale = _desk_scale(rfq, client_side, quantity)
    return {k: v * scale for k, v in factors.items()}


def options_risk_change(
    quote: ClientQuote, rfq: Rfq, client_side: Side, quantity: Decimal
) -> dict[str, float]:
    """As :func:`desk_risk_change`, for the package's options alone: what a venue trade of
    the package moves. A package traded "vs H" came with its delta hedge (the client's coins,
    its factors carry no delta), but venues trade the options without it, so their delta
    (−``hedge_delta_coins``, the buyer's) moves the inventory too."""
    change = desk_risk_change(quote, rfq, client_side, quantity)
    hedge = float(quote.greeks.get("hedge_delta_coins") or 0.0)
    if hedge:
        key = delta_factor(rfq.underlying)
        change[key] = change.get(key, 0.0) - hedge * _desk_scale(rfq, client_side, quantity)
    return change


def _desk_scale(rfq: Rfq, client_side: Side, quantity: Decimal) -> float:
    """The filled fraction of the package, signed for the desk (+ when the client sells)."""
    return float(quantity / rfq.quantity) * (1.0 if client_side is Side.SELL else -1.0)
