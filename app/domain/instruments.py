"""Option instruments, their venue names, and strikes and quantities as traders write them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType

from app.domain.enums import OptionType
from app.domain.errors import DomainError, InvalidInstrument
from app.domain.expiries import expiry_datetime, format_expiry_code, parse_expiry_code

BARE_STRIKE_THOUSANDS_BELOW: Mapping[str, Decimal] = MappingProxyType(
    {"BTC": Decimal(1000), "ETH": Decimal(100)}
)
"""Per underlying, the bound below which a bare strike is in thousands ("70" is 70000 on BTC)."""

_UNDERLYING = re.compile(r"[A-Z][A-Z0-9_]*", re.ASCII)
_STRIKE_IN_NAME = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_OPTION_TYPE_CODES = {"C": OptionType.CALL, "P": OptionType.PUT}
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_STRIKE = re.compile(rf"\$?({_NUMBER})\s*(k?)", re.ASCII)
_QUANTITY = re.compile(rf"x?\s*({_NUMBER})\s*(k?)\s*(?:x|lots?|contracts?)?", re.ASCII)
_THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One listed option, named as on the venue: ``BTC-25DEC26-70000-C``.

    Parameters
    ----------
    underlying
        Coin code in capitals (``BTC``); digits and ``_`` allowed after the first letter.
    expiry
        Expiry date; the option expires at 08:00 UTC that day.
    strike
        Strike price, positive; stored without trailing zeros.
    option_type
        Call or put.

    Raises
    ------
    InvalidInstrument
        ``field="instrument"``, when the underlying is malformed or the strike not positive.
    """

    underlying: str
    expiry: date
    strike: Decimal
    option_type: OptionType

    def __post_init__(self) -> None:
        if not _UNDERLYING.fullmatch(self.underlying):
            raise InvalidInstrument(
                "instrument", f"underlying must be a coin code in capitals, got {self.underlying!r}"
            )
        if not (self.strike.is_finite() and self.strike > 0):
            raise InvalidInstrument("instrument", f"strike must be positive, got {self.strike}")
        # One spelling per strike (70000, not 70000.0 or 7E+4), for names, storage and JSON.
        object.__setattr__(self, "strike", _plain(self.strike))

    @property
    def name(self) -> str:
        """Venue name, e.g. ``BTC-25DEC26-70000-C`` or ``ETH-4DEC26-1.5-P``."""
        expiry, strike = format_expiry_code(self.expiry), format_decimal(self.strike)
        return f"{self.underlying}-{expiry}-{strike}-{self.option_type.upper()[0]}"

    @property
    def expiry_at(self) -> datetime:
        """Moment of expiry: 08:00 UTC on the expiry date."""
        return expiry_datetime(self.expiry)

    @classmethod
    def parse(cls, name: str) -> Instrument:
        """Instrument of a venue name, e.g. ``BTC-25DEC26-70000-C``.

        The name is read case-insensitively; the day may have a leading zero.

        Raises
        ------
        InvalidInstrument
            ``field="instrument"``, with the reason: malformed name, unknown month, day not
            in the month, strike not a positive number, option type other than C or P.
        """
        parts = name.strip().upper().split("-")
        if len(parts) != 4:
            raise InvalidInstrument(
                "instrument", f"expected UNDERLYING-DMMMYY-STRIKE-C|P, got {name!r}"
            )
        underlying, expiry_code, strike_text, type_code = parts
        try:
            if not _STRIKE_IN_NAME.fullmatch(strike_text):
                raise InvalidInstrument(
                    "instrument", f"strike must be a number, got {strike_text!r}"
                )
            if type_code not in _OPTION_TYPE_CODES:
                raise InvalidInstrument(
                    "instrument", f"option type must be C or P, got {type_code!r}"
                )
            expiry = parse_expiry_code(expiry_code)
            return cls(underlying, expiry, Decimal(strike_text), _OPTION_TYPE_CODES[type_code])
        except DomainError as error:
            raise InvalidInstrument("instrument", f"{error.reason} in {name!r}") from None


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: ``70000``, ``1.5``, never ``7E+4``."""
    return f"{value.normalize():f}"


def _plain(value: Decimal) -> Decimal:
    """Same number without trailing zeros or exponent, so that it prints as typed."""
    return Decimal(format_decimal(value))


def _number(text: str) -> Decimal:
    """Decimal of a number matched by ``_NUMBER``, thousands commas allowed (``3,080.5``)."""
    return Decimal(text.replace(",", ""))


def normalise_strike(text: str, underlying: str) -> Decimal:
    """Strike a trader wrote, in the quote currency.

    Parameters
    ----------
    text
        ``"70k"``, ``"3.5K"``, ``"65000"``, ``"3,080"``, ``"$70k"``, or a bare number.
    underlying
        Underlying, e.g. ``"BTC"``; decides how a bare number is read.

    Returns
    -------
    Decimal
        The strike, positive, without trailing zeros.

    Raises
    ------
    DomainError
        ``field="strike"``, when ``text`` is not a strike.

    Notes
    -----
    A ``k`` suffix multiplies by 1000. A bare number below the underlying's bound in
    :data:`BARE_STRIKE_THOUSANDS_BELOW` is in thousands: on BTC "70" is 70000, on ETH "3.5"
    is 3500. Commas separate thousands ("3,080" is 3080).

    >>> normalise_strike("70", "BTC"), normalise_strike("3.5", "ETH")
    (Decimal('70000'), Decimal('3500'))
    """
    match = _STRIKE.fullmatch(text.strip().lower())
    if match is None:
        raise DomainError("strike", f"not a strike: {text!r}")
    value = _number(match[1])
    bound = BARE_STRIKE_THOUSANDS_BELOW.get(underlying.upper())
    if match[2] or (bound is not None and value < bound):
        value *= _THOUSAND
    if value <= 0:
        raise DomainError("strike", f"strike must be positive, got {text!r}")
    return _plain(value)


def normalise_quantity(text: str) -> Decimal:
    """Quantity (structure units) a trader wrote.

    Accepts ``"250"``, ``"250x"``, ``"x250"``, ``"250 lots"``, ``"250 contracts"``,
    ``"1,000"`` and ``"1.5k"`` (1500), in any case.

    Raises
    ------
    DomainError
        ``field="quantity"``, when ``text`` is not a positive quantity.

    >>> normalise_quantity("1.5k")
    Decimal('1500')
    """
    match = _QUANTITY.fullmatch(text.strip().lower())
    if match is None:
        raise DomainError("quantity", f"not a quantity: {text!r}")
    value = _number(match[1]) * (_THOUSAND if match[2] else 1)
    if value <= 0:
        raise DomainError("quantity", f"quantity must be positive, got {text!r}")
    return _plain(value)
