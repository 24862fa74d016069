"""Market data: snapshots (spot, forwards, SVI vol surface), the feed interface, the simulated
default feed and the venue (Deribit-format) adapter.

Pure except :class:`DeribitFeed`, which performs HTTP through a caller-supplied
``httpx.AsyncClient`` (httpx is imported only when it makes a request). Nothing here imports
web-framework, database or settings libraries.
"""

from app.marketdata.deribit import (
    DeribitFeed,
    ParsedPayload,
    SkippedEntry,
    VenueOptionQuote,
    fit_svi,
    parse_book_summary,
    parse_payload,
    parse_quote,
    parse_ticker,
    snapshot_from_quotes,
)
from app.marketdata.errors import (
    ExpiredExpiry,
    MarketDataError,
    UnknownUnderlying,
    VenueError,
    VenueUnavailable,
)
from app.marketdata.feed import MarketDataFeed
from app.marketdata.simulated import SimulatedFeed, UnderlyingModel, listed_expiries
from app.marketdata.snapshot import ExpirySlice, MarketSnapshot, SviParams, year_fraction

__all__ = [
    "DeribitFeed",
    "ExpiredExpiry",
    "ExpirySlice",
    "MarketDataError",
    "MarketDataFeed",
    "MarketSnapshot",
    "ParsedPayload",
    "SimulatedFeed",
    "SkippedEntry",
    "SviParams",
    "UnderlyingModel",
    "UnknownUnderlying",
    "VenueError",
    "VenueOptionQuote",
    "VenueUnavailable",
    "fit_svi",
    "listed_expiries",
    "parse_book_summary",
    "parse_payload",
    "parse_quote",
    "parse_ticker",
    "snapshot_from_quotes",
    "year_fraction",
]
