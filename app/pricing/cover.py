"""How dealer quotes shape the client price (the desk's cover policy). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal


@dataclass(frozen=True)
class Covered:
    price_coin: Decimal | None  # None: this side is not shown
    note: dict[str, Any]
    refused: str | None = None


def _tick(value: Decimal, tick: Decimal, up: bool) -> Decimal:
    return (value / tick).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR) * tick


def apply_cover(
    model_price: Decimal,
    *,
    desk_sells: bool,
    cover: Decimal | None,
    covered_quantity: Decimal,
    quantity: Decimal,
    policy: Literal["principal", "back_to_back"],
    margin: Decimal,
    tick: Decimal,
) -> Covered:
    """The price shown on one side, given the model's price and what dealers would trade.

    ``cover`` is the worst dealer price needed to trade the whole quantity with dealers (the
    desk buys from them at their ask when it sells to the client, and sells at their bid when
    it buys), or None when the dealers do not cover it all.

    * back_to_back: never show a price no dealer covers: ask ≥ cover + margin (bid ≤ cover −
      margin); with no full cover the side is not shown.
    * principal: the model's price, tightened to cover ± margin when dealers make that
      possible; without cover the desk shows its own price and keeps the risk, meaning to.
    """
    note: dict[str, Any] = {
        "policy": policy,
        "model_price_coin": str(model_price),
        "dealer_cover_coin": None if cover is None else str(cover),
        "dealer_covered_quantity": str(covered_quantity),
    }
    if cover is None:
        if policy == "back_to_back":
            return Covered(
                None, note, f"dealers cover {covered_quantity} of {quantity} (back-to-back policy)"
            )
        return Covered(model_price, note | {"source": "model, principal risk"})
    covered = _tick(cover + margin if desk_sells else cover - margin, tick, up=desk_sells)
    if policy == "back_to_back":
        price = max(model_price, covered) if desk_sells else min(model_price, covered)
    else:
        price = min(model_price, covered) if desk_sells else max(model_price, covered)
    source = "model" if price == model_price else "dealer cover ± margin"
    return Covered(price, note | {"source": source})
