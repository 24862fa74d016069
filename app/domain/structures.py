"""Structures: the legs of each template, and the template a set of legs forms.

Legs are written for the buyer of the structure (K1 < K2 < K3 < K4, T1 < T2):

=================================  ==============================================
structure                          legs for the buyer
=================================  ==============================================
call / put                         +1 C(K) / +1 P(K)
call_spread                        +1 C(K1), -1 C(K2)
put_spread                         +1 P(K2), -1 P(K1)
straddle                           +1 C(K), +1 P(K)
strangle                           +1 P(K1), +1 C(K2)
risk_reversal                      +1 C(K2), -1 P(K1)
call_butterfly / put_butterfly     +1 K1, -2 K2, +1 K3
call_condor                        +1 C(K1), -1 C(K2), -1 C(K3), +1 C(K4)
call_calendar / put_calendar       -1 at T1, +1 at T2, same strike
call_ratio (1xN)                   +1 C(K1), -N C(K2)
put_ratio (1xN)                    +1 P(K2), -N P(K1)
custom                             legs as stated
=================================  ==============================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise

from app.domain.enums import Direction, OptionType, Structure
from app.domain.errors import DomainError
from app.domain.instruments import Instrument, format_decimal

DEFAULT_RATIO = 2
"""N of a 1xN ratio spread when none is given."""

_C, _P = OptionType.CALL, OptionType.PUT
_BUY, _SELL = Direction.BUY, Direction.SELL
_N = 0
"""Placeholder for the ratio N in a leg template."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a package: ``ratio`` units of ``instrument`` per structure unit.

    ``Leg`` does not check itself: :func:`app.domain.validation.validate_package` does, so
    that its errors name the leg (``legs[2].ratio``).

    Parameters
    ----------
    instrument
        The option.
    ratio
        Units of the option per unit of the structure, an integer >= 1.
    direction
        Whether the buyer of the structure buys or sells this leg.
    """

    instrument: Instrument
    ratio: int
    direction: Direction

    def flipped(self) -> Leg:
        """The same leg in the other direction (the seller's view)."""
        return Leg(self.instrument, self.ratio, self.direction.opposite)


@dataclass(frozen=True, slots=True)
class _LegTemplate:
    strike: int
    """Index into the structure's strikes."""
    expiry: int
    """Index into the structure's expiries."""
    option_type: OptionType
    ratio: int
    """Ratio, or ``_N`` for the ratio of a 1xN spread."""
    direction: Direction


@dataclass(frozen=True, slots=True)
class StructureShape:
    """How many strikes and expiries a structure takes, and whether it takes a ratio N."""

    strikes: int
    expiries: int
    has_ratio: bool


def _legs(*specs: tuple[int, int, OptionType, int, Direction]) -> tuple[_LegTemplate, ...]:
    return tuple(_LegTemplate(*spec) for spec in specs)


_TEMPLATES: dict[Structure, tuple[_LegTemplate, ...]] = {
    Structure.CALL: _legs((0, 0, _C, 1, _BUY)),
    Structure.PUT: _legs((0, 0, _P, 1, _BUY)),
    Structure.CALL_SPREAD: _legs((0, 0, _C, 1, _BUY), (1, 0, _C, 1, _SELL)),
    Structure.PUT_SPREAD: _legs((1, 0, _P, 1, _BUY), (0, 0, _P, 1, _SELL)),
    Structure.STRADDLE: _legs((0, 0, _C, 1, _BUY), (0, 0, _P, 1, _BUY)),
    Structure.STRANGLE: _legs((0, 0, _P, 1, _BUY), (1, 0, _C, 1, _BUY)),
    Structure.RISK_REVERSAL: _legs((1, 0, _C, 1, _BUY), (0, 0, _P, 1, _SELL)),
    Structure.CALL_BUTTERFLY: _legs((0, 0, _C, 1, _BUY), (1, 0, _C, 2, _SELL), (2, 0, _C, 1, _BUY)),
    Structure.PUT_BUTTERFLY: _legs((0, 0, _P, 1, _BUY), (1, 0, _P, 2, _SELL), (2, 0, _P, 1, _BUY)),
    Structure.CALL_CONDOR: _legs(
        (0, 0, _C, 1, _BUY), (1, 0, _C, 1, _SELL), (2, 0, _C, 1, _SELL), (3, 0, _C, 1, _BUY)
    ),
    Structure.CALL_CALENDAR: _legs((0, 0, _C, 1, _SELL), (0, 1, _C, 1, _BUY)),
    Structure.PUT_CALENDAR: _legs((0, 0, _P, 1, _SELL), (0, 1, _P, 1, _BUY)),
    Structure.CALL_RATIO: _legs((0, 0, _C, 1, _BUY), (1, 0, _C, _N, _SELL)),
    Structure.PUT_RATIO: _legs((1, 0, _P, 1, _BUY), (0, 0, _P, _N, _SELL)),
}


def structure_shape(structure: Structure) -> StructureShape:
    """Number of strikes and expiries ``structure`` takes, and whether it takes a ratio.

    Raises
    ------
    DomainError
        ``field="structure"`` for ``custom``, which has no template.
    """
    template = _template(structure)
    return StructureShape(
        strikes=1 + max(leg.strike for leg in template),
        expiries=1 + max(leg.expiry for leg in template),
        has_ratio=any(leg.ratio == _N for leg in template),
    )


def build_legs(
    underlying: str,
    structure: Structure,
    strikes: Sequence[Decimal],
    expiries: Sequence[date],
    ratio: int | None = None,
) -> tuple[Leg, ...]:
    """Legs of a structure, written for its buyer, in the order of the module's table.

    Parameters
    ----------
    underlying
        Underlying of every leg, e.g. ``"BTC"``.
    structure
        Any structure but ``custom``.
    strikes
        Strikes K1 < K2 < ... (one for call, put, straddle and calendars).
    expiries
        One expiry for all legs; two, T1 < T2, for calendars.
    ratio
        N of a 1xN ``call_ratio`` or ``put_ratio``, >= 2 (default 2); ``None`` otherwise.

    Returns
    -------
    tuple of Leg

    Raises
    ------
    DomainError
        ``field="structure"`` for ``custom``; ``"strikes"`` or ``"expiries"`` for a wrong
        count or an order that is not strictly increasing; ``"ratio"`` for a ratio below 2 or
        one given to a structure that takes none.
    InvalidInstrument
        When a leg is not a valid instrument (e.g. a strike not positive).
    """
    shape = structure_shape(structure)
    _check_terms(
        "strikes",
        "strike",
        structure,
        shape.strikes,
        [format_decimal(k) for k in strikes],
        all(a < b for a, b in pairwise(strikes)),
    )
    _check_terms(
        "expiries",
        "expiry",
        structure,
        shape.expiries,
        [t.isoformat() for t in expiries],
        all(a < b for a, b in pairwise(expiries)),
    )
    n = DEFAULT_RATIO if ratio is None else ratio
    if shape.has_ratio and n < 2:
        raise DomainError("ratio", f"the ratio N of a 1xN {structure} must be at least 2, got {n}")
    if not shape.has_ratio and ratio is not None:
        raise DomainError("ratio", f"a {structure} takes no ratio, got {ratio}")
    return tuple(
        Leg(
            Instrument(underlying, expiries[leg.expiry], strikes[leg.strike], leg.option_type),
            n if leg.ratio == _N else leg.ratio,
            leg.direction,
        )
        for leg in _TEMPLATES[structure]
    )


@dataclass(frozen=True)
class Recognised:
    """The template a set of legs forms.

    Parameters
    ----------
    structure
        The structure, ``custom`` when the legs form no template.
    orientation
        ``BUY`` when the legs are the buyer's, ``SELL`` when every leg is flipped
        (always ``BUY`` for ``custom``).
    strikes
        Distinct strikes, increasing.
    expiries
        Distinct expiries, increasing.
    ratio
        N of a ratio spread, else ``None``.
    """

    structure: Structure
    orientation: Direction
    strikes: tuple[Decimal, ...]
    expiries: tuple[date, ...]
    ratio: int | None


def recognise(legs: Sequence[Leg]) -> Recognised:
    """The structure a package of legs forms, whatever the order of the legs.

    Ratios must be exactly the template's: size is carried by the quantity, so legs that are
    a multiple of a template (+2 C(K1), -2 C(K2)) are ``custom``.

    >>> from datetime import date
    >>> legs = build_legs("BTC", Structure.CALL_SPREAD, [Decimal(70000), Decimal(80000)],
    ...                   [date(2026, 12, 25)])
    >>> recognise([leg.flipped() for leg in legs]).orientation
    <Direction.SELL: 'sell'>
    """
    strikes = tuple(sorted({leg.instrument.strike for leg in legs}))
    expiries = tuple(sorted({leg.instrument.expiry for leg in legs}))
    given = Counter(legs)
    flipped = Counter(leg.flipped() for leg in legs)
    underlyings = {leg.instrument.underlying for leg in legs}
    if len(underlyings) == 1:
        (underlying,) = underlyings
        ratio = max(leg.ratio for leg in legs)
        for structure in _TEMPLATES:
            shape = structure_shape(structure)
            if (shape.strikes, shape.expiries) != (len(strikes), len(expiries)):
                continue
            template_ratio = ratio if shape.has_ratio else None
            try:
                built = Counter(
                    build_legs(underlying, structure, strikes, expiries, template_ratio)
                )
            except DomainError:
                continue
            for orientation, candidate in ((_BUY, given), (_SELL, flipped)):
                if built == candidate:
                    return Recognised(structure, orientation, strikes, expiries, template_ratio)
    return Recognised(Structure.CUSTOM, _BUY, strikes, expiries, None)


def _template(structure: Structure) -> tuple[_LegTemplate, ...]:
    if structure is Structure.CUSTOM:
        raise DomainError("structure", "a custom structure has no template: state its legs")
    return _TEMPLATES[structure]


def _check_terms(
    field: str, noun: str, structure: Structure, expected: int, shown: list[str], increasing: bool
) -> None:
    """Check the count and order of a structure's strikes or expiries."""
    if len(shown) != expected:
        nouns = noun if expected == 1 else field
        raise DomainError(
            field, f"a {structure} needs {expected} {nouns}, got {len(shown)}: {', '.join(shown)}"
        )
    if not increasing:
        raise DomainError(
            field, f"{field} must be strictly increasing for a {structure}, got {', '.join(shown)}"
        )
