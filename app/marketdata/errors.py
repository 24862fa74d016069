"""Errors of the market-data package.

Every error is a :class:`MarketDataError`, itself a :class:`ValueError`, so a caller that does not
care about the detail can catch ``ValueError``. ``code`` is a machine-readable reason the service
can map to an HTTP error::

    MarketDataError(ValueError)   "market_data"        bad query or bad snapshot data
    ├── UnknownUnderlying         "unknown_underlying" the feed does not serve it
    ├── ExpiredExpiry             "expiry_in_past"     expiry at or before the snapshot time
    └── VenueError                "venue"              a venue payload (entry) is unusable
        └── VenueUnavailable      "venue_unavailable"  transport, HTTP or JSON-RPC error
"""

from __future__ import annotations

__all__ = [
    "ExpiredExpiry",
    "MarketDataError",
    "UnknownUnderlying",
    "VenueError",
    "VenueUnavailable",
]


class MarketDataError(ValueError):
    """Market data that cannot answer the question asked (base class of the package's errors).

    Parameters
    ----------
    message
        What is wrong, in words.
    code
        Machine-readable reason; subclasses set their own.
    """

    code: str = "market_data"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UnknownUnderlying(MarketDataError):
    """The feed has no data for this underlying."""

    code = "unknown_underlying"


class ExpiredExpiry(MarketDataError):
    """The expiry is at or before the snapshot time (no time value left to price)."""

    code = "expiry_in_past"


class VenueError(MarketDataError):
    """A venue payload (or one entry of it) cannot be turned into market data."""

    code = "venue"


class VenueUnavailable(VenueError):
    """The venue could not be reached, or answered with an HTTP or JSON-RPC error."""

    code = "venue_unavailable"
