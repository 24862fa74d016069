"""Checks of a whole RFQ package against the desk's limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from app.domain.errors import DomainError
from app.domain.expiries import DAILY_LISTING_DAYS, is_listed_expiry
from app.domain.instruments import format_decimal
from app.domain.structures import Leg


def _default_min_block() -> Mapping[str, Decimal]:
    return MappingProxyType({"BTC": Decimal(25), "ETH": Decimal(250)})


@dataclass(frozen=True)
class RfqLimits:
    """Limits an RFQ must respect.

    Parameters
    ----------
    underlyings
        Underlyings the desk quotes.
    min_block
        Minimum size, in contracts, of the largest leg, per underlying; an underlying
        missing here has no minimum.
    max_legs
        Most legs in one package.
    quantity_step
        The quantity must be a multiple of this.
    """

    underlyings: frozenset[str] = frozenset({"BTC", "ETH"})
    min_block: Mapping[str, Decimal] = field(default_factory=_default_min_block)
    max_legs: int = 20
    quantity_step: Decimal = Decimal("0.1")


def validate_package(
    underlying: str,
    legs: Sequence[Leg],
    quantity: Decimal,
    as_of: datetime,
    limits: RfqLimits,
) -> None:
    """Check an RFQ package; raise on the first rule it breaks.

    Parameters
    ----------
    underlying
        Underlying of the RFQ.
    legs
        Its legs, as the buyer of the structure holds them.
    quantity
        Structure units; leg ``i`` trades ``quantity * legs[i].ratio`` contracts.
    as_of
        Time of the request, timezone-aware.
    limits
        The desk's limits.

    Raises
    ------
    DomainError
        With the offending field: ``"underlying"`` (unknown), ``"legs"`` (none, or more than
        ``limits.max_legs``), ``"legs[i].instrument"`` (another underlying, expired at or
        before ``as_of``, or a duplicate of an earlier leg), ``"legs[i].ratio"`` (not an
        integer >= 1), ``"quantity"`` (not positive, not a multiple of the step, or largest
        leg below the minimum block).
    ValueError
        When ``as_of`` is naive (a programming error, not a bad request).
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if underlying not in limits.underlyings:
        known = ", ".join(sorted(limits.underlyings))
        raise DomainError("underlying", f"unknown underlying {underlying!r}; known: {known}")
    if not 1 <= len(legs) <= limits.max_legs:
        raise DomainError("legs", f"a package has 1 to {limits.max_legs} legs, got {len(legs)}")
    first_leg_of: dict[str, int] = {}
    for i, leg in enumerate(legs):
        instrument = leg.instrument
        if instrument.underlying != underlying:
            raise DomainError(
                f"legs[{i}].instrument",
                f"{instrument.name} is on {instrument.underlying}, not on the RFQ's {underlying}",
            )
        if isinstance(leg.ratio, bool) or not isinstance(leg.ratio, int) or leg.ratio < 1:
            raise DomainError(
                f"legs[{i}].ratio", f"ratio must be an integer >= 1, got {leg.ratio!r}"
            )
        if instrument.expiry_at <= as_of:
            raise DomainError(
                f"legs[{i}].instrument",
                f"{instrument.name} expired at {instrument.expiry_at.isoformat()}",
            )
        if not is_listed_expiry(instrument.expiry, as_of.date()):
            raise DomainError(
                f"legs[{i}].instrument",
                f"{instrument.name}: {instrument.expiry:%a %d %b %Y} is not a listed expiry"
                f" (Fridays, and dailies up to {DAILY_LISTING_DAYS} days ahead)",
            )
        if instrument.name in first_leg_of:
            raise DomainError(
                f"legs[{i}].instrument",
                f"{instrument.name} is already legs[{first_leg_of[instrument.name]}]",
            )
        first_leg_of[instrument.name] = i
    if not (quantity.is_finite() and quantity > 0):
        raise DomainError("quantity", f"quantity must be positive, got {quantity}")
    if quantity % limits.quantity_step:
        raise DomainError(
            "quantity",
            f"quantity must be a multiple of {limits.quantity_step},"
            f" got {format_decimal(quantity)}",
        )
    min_block = limits.min_block.get(underlying)
    largest = quantity * max(leg.ratio for leg in legs)
    if min_block is not None and largest < min_block:
        raise DomainError(
            "quantity",
            f"largest leg of {format_decimal(largest)} contracts is below the minimum block"
            f" size of {format_decimal(min_block)} {underlying} contracts",
        )
