"""The market-data interface the pricing service codes against.

Two implementations ship: :class:`app.marketdata.simulated.SimulatedFeed` (the embedded
default) and :class:`app.marketdata.deribit.DeribitFeed` (the venue's public REST API).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from app.marketdata.snapshot import MarketSnapshot

__all__ = ["MarketDataFeed"]


@runtime_checkable
class MarketDataFeed(Protocol):
    """Source of :class:`MarketSnapshot` objects, one underlying at a time.

    Attributes
    ----------
    underlyings
        Coin codes the feed serves (e.g. ``frozenset({"BTC", "ETH"})``).
    """

    underlyings: frozenset[str]

    async def snapshot(self, underlying: str) -> MarketSnapshot:
        """Current spot, forward curve and vol surface of ``underlying``.

        Raises
        ------
        app.marketdata.errors.UnknownUnderlying
            ``underlying`` is not in :attr:`underlyings`.
        app.marketdata.errors.MarketDataError
            The feed has no usable data (venue feeds: also ``VenueUnavailable``).
        """
        ...
