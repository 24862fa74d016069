"""Time bounds given as query parameters: a value without a zone is UTC, and only a window
the log can hold is accepted (answered 422 naming the parameter otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.errors import Unprocessable

# nothing is logged outside these bounds, and windows derived from a bound (a default window,
# markout horizons) must not step off the calendar (year 1 or 9999)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def utc_bound(value: datetime | None, field: str) -> datetime | None:
    """``value`` in UTC (a naive one taken as UTC), or 422 naming ``field``."""
    if value is None:
        return None
    try:
        at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise Unprocessable(f"{field} is out of range", field=field) from None
    if not EARLIEST <= at <= LATEST:
        raise Unprocessable(
            f"{field} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", field=field
        )
    return at
