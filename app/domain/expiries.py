"""Expiry dates: the venue's rules, its ``25DEC26`` codes, and expiries as traders write them.

Options expire at 08:00 UTC. Monthly expiries are the last Friday of the month, weekly ones
every other Friday; the venue also lists daily expiries for the coming few days. Nothing here
reads the clock: the request date ``as_of`` is always passed in.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta

from app.domain.errors import DomainError

EXPIRY_HOUR_UTC = 8
"""Hour (UTC) at which options expire on their expiry date."""

MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
"""Three-letter month codes of instrument names, January first."""

DAILY_LISTING_DAYS = 7
"""Days after the request date within which a non-Friday expiry can be a listed daily."""

PLAUSIBLE_HORIZON = timedelta(days=2 * 366)
"""How far ahead a reading of a trader's expiry is still plausible (longest listed expiries)."""

_FRIDAY = 4
_MONTHS = (
    {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
    | {code.lower(): number for number, code in enumerate(MONTH_CODES, start=1)}
    | {"sept": 9}
)
_WEEKLY = frozenset({"weekly", "wkly"})
_EXPIRY_CODE = re.compile(r"(\d{1,2})([A-Z]{3})(\d{2})", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ORDINAL = re.compile(r"(?<=\d)(?:st|nd|rd|th)\b", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-,.'/]+", re.ASCII)
_LETTER_DIGIT = re.compile(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", re.ASCII)


def expiry_datetime(expiry: date) -> datetime:
    """Moment an option expiring on ``expiry`` expires: 08:00 UTC that day.

    >>> expiry_datetime(date(2026, 12, 25)).isoformat()
    '2026-12-25T08:00:00+00:00'
    """
    return datetime(expiry.year, expiry.month, expiry.day, EXPIRY_HOUR_UTC, tzinfo=UTC)


def last_friday(year: int, month: int) -> date:
    """Last Friday of a month: the monthly expiry.

    >>> last_friday(2026, 12)
    datetime.date(2026, 12, 25)
    """
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - _FRIDAY) % 7)


def monthly_expiry(month: int, year: int | None, as_of: date) -> date:
    """Monthly expiry (last Friday) of a month.

    Parameters
    ----------
    month
        Month number, 1 to 12.
    year
        Year as given by the trader, taken as is; ``None`` when the trader named only the month.
    as_of
        Request date.

    Returns
    -------
    date
        With ``year``, the last Friday of that month. Without, the nearest last Friday of
        ``month`` on or after ``as_of``: "Dec" on 2026-12-28 is 2027-12-31.
    """
    if year is not None:
        return last_friday(year, month)
    this_year = last_friday(as_of.year, month)
    return this_year if this_year >= as_of else last_friday(as_of.year + 1, month)


def weekly_expiry(as_of: date) -> date:
    """Next Friday strictly after ``as_of`` (a Friday's "weekly" is the following Friday)."""
    return as_of + timedelta(days=(_FRIDAY - as_of.weekday() - 1) % 7 + 1)


def format_expiry_code(d: date) -> str:
    """Venue expiry code of a date: day without a leading zero, month code, two-digit year.

    >>> format_expiry_code(date(2026, 12, 4))
    '4DEC26'
    """
    return f"{d.day}{MONTH_CODES[d.month - 1]}{d.year % 100:02d}"


def parse_expiry_code(code: str) -> date:
    """Date of a venue expiry code such as ``25DEC26`` or ``4DEC26`` (years 2000 to 2099).

    Raises
    ------
    DomainError
        ``field="expiry"``, when the code is malformed, the month unknown or the day not in
        the month.
    """
    match = _EXPIRY_CODE.fullmatch(code)
    if match is None:
        raise DomainError("expiry", f"expiry must look like 25DEC26, got {code!r}")
    day, month_code, year = int(match[1]), match[2], 2000 + int(match[3])
    if month_code not in MONTH_CODES:
        raise DomainError("expiry", f"unknown month {month_code!r}")
    month = MONTH_CODES.index(month_code) + 1
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise DomainError("expiry", f"day {day} is not in {calendar.month_name[month]} {year}")
    return date(year, month, day)


def is_listed_expiry(expiry: date, as_of: date) -> bool:
    """Whether ``expiry`` can be a listed expiry on ``as_of``: a Friday (weeklies, monthlies,
    quarterlies), or any day within :data:`DAILY_LISTING_DAYS` (the dailies)."""
    return expiry.weekday() == _FRIDAY or 0 <= (expiry - as_of).days <= DAILY_LISTING_DAYS


def expiry_candidates(text: str, as_of: date) -> list[date]:
    """Every plausible reading of an expiry as a trader writes it, most likely first.

    Parameters
    ----------
    text
        One expiry token, any case: ``"25DEC26"``, ``"2026-12-25"``, ``"Dec"``,
        ``"December 2026"``, ``"Mar27"``, ``"25 Dec"``, ``"Dec 25"``, ``"weekly"``...
    as_of
        Request date.

    Returns
    -------
    list of date
        Distinct readings, most likely first; empty when ``text`` is not an expiry.

    Notes
    -----
    Forms and their readings (month: a name, full or three letters, or "sept"):

    - ``weekly``, ``wkly``: :func:`weekly_expiry`.
    - month alone (``Dec``): :func:`monthly_expiry` with no year.
    - month and four-digit year (``Dec 2026``): that month's last Friday.
    - day, month and year (``25DEC26``, ``25 Dec 2026``, ``Dec 25 2026``, ``2026-12-25``):
      that date, taken as given.
    - day and month (``25 Dec``): that date, on or after ``as_of``.
    - month and a one- or two-digit number (``Mar27``, ``Dec 25``): ambiguous between the
      monthly expiry of year 20NN and day NN of the month; the monthly reading comes first
      unless it is implausible and the day reading is not.

    A date (given, or read from day and month) that is not a Friday and lies more than
    :data:`DAILY_LISTING_DAYS` after ``as_of`` cannot be a listed expiry, since only dailies
    fall on other weekdays: the nearest Friday comes first, then the date itself. The dev set
    reads "27MAR27" as 2027-03-26, the March 2027 monthly, this way.

    A reading is implausible when it is before ``as_of`` or more than
    :data:`PLAUSIBLE_HORIZON` after it; implausible readings move behind plausible ones but
    stay in the list ("Jan22" on 2026-11-24: 2027-01-22, then the January 2022 monthly).

    >>> expiry_candidates("Mar27", date(2026, 11, 24))
    [datetime.date(2027, 3, 26), datetime.date(2027, 3, 27)]
    """
    text = text.strip().lower()
    if _ISO_DATE.fullmatch(text):
        try:
            given = date.fromisoformat(text)
        except ValueError:
            return []
        return _rank(_date_readings(given, as_of), as_of)
    text = _LETTER_DIGIT.sub(" ", _SEPARATORS.sub(" ", _ORDINAL.sub("", text)))
    tokens = text.split()
    if len(tokens) == 1 and tokens[0] in _WEEKLY:
        return [weekly_expiry(as_of)]
    digits = [t for t in tokens if t.isascii() and t.isdigit()]
    shape = "".join("m" if t in _MONTHS else "n" if t in digits else "?" for t in tokens)
    months = [_MONTHS[t] for t in tokens if t in _MONTHS]
    numbers, widths = [int(t) for t in digits], [len(t) for t in digits]
    readings: list[date] = []
    if shape == "m":
        readings = [monthly_expiry(months[0], None, as_of)]
    elif shape == "mn" and widths[0] == 4:
        readings = [last_friday(numbers[0], months[0])]
    elif shape == "mn" and widths[0] <= 2:
        readings = [last_friday(2000 + numbers[0], months[0])]
        readings += _date_readings(_day_of_month(numbers[0], months[0], as_of), as_of)
    elif shape == "nm" and widths[0] <= 2:
        readings = _date_readings(_day_of_month(numbers[0], months[0], as_of), as_of)
    elif shape in ("nmn", "mnn") and widths[0] <= 2 and widths[1] in (2, 4):
        year = numbers[1] if widths[1] == 4 else 2000 + numbers[1]
        readings = _date_readings(_valid_date(year, months[0], numbers[0]), as_of)
    return _rank(readings, as_of)


def _valid_date(year: int, month: int, day: int) -> date | None:
    """The date, or ``None`` when the day is not in the month."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day_of_month(day: int, month: int, as_of: date) -> date | None:
    """First date with this day and month on or after ``as_of``, if any in two years."""
    for year in (as_of.year, as_of.year + 1):
        d = _valid_date(year, month, day)
        if d is not None and d >= as_of:
            return d
    return None


def _date_readings(d: date | None, as_of: date) -> list[date]:
    """Readings of a stated date: a far Thursday or Saturday reads first as the Friday next
    to it ("27MAR27" is Friday 26 March); any other far non-Friday as either Friday around
    it, so that the client is asked (a Monday is not moved back three days silently)."""
    if d is None:
        return []
    if d.weekday() == _FRIDAY or (d - as_of).days <= DAILY_LISTING_DAYS:
        return [d]
    after = d + timedelta(days=(_FRIDAY - d.weekday()) % 7)
    before = after - timedelta(days=7)
    if (after - d).days == 1:
        return [after, d]
    if (d - before).days == 1:
        return [before, d]
    return [before, after, d]


def _rank(readings: list[date], as_of: date) -> list[date]:
    """Distinct readings, plausible ones first, otherwise in the order given."""
    distinct = list(dict.fromkeys(readings))
    return sorted(distinct, key=lambda d: not as_of <= d <= as_of + PLAUSIBLE_HORIZON)
