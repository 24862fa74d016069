"""The desk's inventory held in memory between quotes and dropped as soon as fills move it.

Every quote needs the desk's inventory of the RFQ's underlying (its skew and its risk limits).
Reading it costs a round trip and a statement per RFQ, while it only changes when a fill
commits. So each process keeps the last read per underlying, and:

- the transaction that moves the inventory (:meth:`DeskRiskRepository.add`) drops this
  process's entry the moment it commits and publishes the underlyings on :data:`CHANNEL`;
  every process listening drops its own on receipt;
- an entry read while a drop happened is not kept (a generation count), so a read that raced
  a fill never outlives it;
- the memory is used only while the subscription is live: from the moment the listener is
  subscribed until any error on it, when everything is dropped and every quote reads the
  database again until it has resubscribed (Redis down: nothing is served from memory);
- no entry is older than ``max_age_s`` in any case (the bound should an announcement be lost:
  Redis pub/sub delivers at most once).

Another process therefore prices off the inventory as it was up to one pub/sub delivery
(about a millisecond on loopback) after a fill, the same staleness as a quote whose read
started a moment earlier; this process never does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import Cache, CacheUnavailable
from app.events import after_commit, on_commit
from app.pricing.desk import DeskRiskRepository

log = structlog.get_logger(__name__)

#: pub/sub channel of the underlyings whose inventory a committed fill moved
CHANNEL = "desk_risk_moved"
_MOVING = "moves_desk_inventory"


class InventoryView:
    """Per-process memory of :meth:`DeskRiskRepository.inventory`, kept true by fill events."""

    def __init__(self, cache: Cache, *, max_age_s: float = 1.0, shared: bool = True) -> None:
        self.cache = cache
        # an in-process cache's pub/sub reaches this process only: with several workers the
        # others' fills would not be announced, so memory is used only with one worker then
        self.max_age_s = max_age_s if shared else 0.0
        self._entries: dict[str, tuple[float, dict[str, float]]] = {}
        self._generation = 0
        self._live = False
        self.hits = 0
        self.reads = 0

    @property
    def live(self) -> bool:
        """Whether entries are served (the listener is subscribed)."""
        return self._live and self.max_age_s > 0

    async def inventory(self, session: AsyncSession, underlying: str) -> dict[str, float]:
        """The underlying's factors, from memory when it is live and fresh, else read."""
        now = time.monotonic()
        entry = self._entries.get(underlying)
        if entry is not None and self.live and now - entry[0] < self.max_age_s:
            self.hits += 1
            return dict(entry[1])
        generation = self._generation
        read = await DeskRiskRepository(session).inventory(underlying)
        self.reads += 1
        # not kept if a drop happened meanwhile, nor if this transaction moved the inventory
        # itself (the read shows its uncommitted rows)
        if self.live and generation == self._generation and not session.info.get(_MOVING):
            self._entries[underlying] = (now, dict(read))
        return read

    def drop(self, underlyings: Iterable[str] | None = None) -> None:
        """Forget ``underlyings`` (all when ``None``); reads in flight are not kept."""
        self._generation += 1
        if underlyings is None:
            self._entries.clear()
        else:
            for underlying in underlyings:
                self._entries.pop(underlying, None)

    def moved(self, session: AsyncSession, underlyings: Iterable[str]) -> None:
        """``session``'s transaction moves these underlyings' inventory: drop them here when
        it commits, then tell the other processes."""
        names = sorted(set(underlyings))
        if not names:
            return
        session.info[_MOVING] = True
        on_commit(session, lambda: self.drop(names))

        async def announce() -> None:
            try:
                await self.cache.publish(CHANNEL, json.dumps(names))
            except CacheUnavailable:
                # the others stop serving from memory when their subscription breaks too;
                # otherwise their entries age out within max_age_s
                log.warning("inventory_announce_failed", underlyings=names)

        after_commit(session, announce)

    async def listen(self, retry_s: float = 0.5, max_retry_s: float = 5.0) -> None:
        """Keep the subscription (a background task for the life of the process)."""
        if self.max_age_s <= 0:
            return  # memory is off: nothing to keep true
        wait = retry_s
        while True:
            ready = asyncio.Event()
            going_live = asyncio.create_task(self._live_when(ready))
            try:
                async for message in self.cache.subscribe(CHANNEL, ready):
                    wait = retry_s
                    self.drop(_underlyings(message))
            except CacheUnavailable as exc:
                log.warning("inventory_subscription_lost", error=str(exc))
            except Exception:  # never end for good: quotes read the database meanwhile
                log.exception("inventory_listener_failed")
            finally:
                going_live.cancel()
                self._live = False
                self.drop()
            await asyncio.sleep(wait)
            wait = min(wait * 2, max_retry_s)

    async def _live_when(self, subscribed: asyncio.Event) -> None:
        await subscribed.wait()
        self.drop()  # nothing read before the subscription is trusted
        self._live = True


def _underlyings(message: str) -> list[str] | None:
    """The underlyings a message names; ``None`` (drop all) when it cannot be read."""
    try:
        names = json.loads(message)
    except ValueError:
        return None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    return None
