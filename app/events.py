"""Side effects that must wait for the commit: events published, dealers notified.

Work registered on a session runs only after that session's transaction commits, so a rolled
back request never announces anything (the outbox pattern, in-process).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache import Cache, CacheUnavailable
from app.metrics import STAGE_LATENCY
from app.staging import write_staged

log = structlog.get_logger(__name__)
AfterCommit = Callable[[], Awaitable[None]]
_background: set[asyncio.Task[None]] = set()
_EVENTS = "events_to_publish"


def after_commit(session: AsyncSession, work: AfterCommit) -> None:
    session.info.setdefault("after_commit", []).append(work)


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` (synchronous, quick) the moment the transaction has committed, before
    this process serves anything else; dropped with the transaction if it rolls back."""
    session.info.setdefault("on_commit", []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    """Start the registered work, in order, in the background (it must not delay the response)."""
    for callback in session.info.pop("on_commit", []):
        callback()
    works = session.info.pop("after_commit", [])
    session.info.pop(_EVENTS, None)  # the next transaction queues its own
    if works:
        task = asyncio.create_task(_in_order(works))
        _background.add(task)
        task.add_done_callback(_background.discard)


async def _in_order(works: list[AfterCommit]) -> None:
    for work in works:
        try:
            await work()
        except Exception:  # a failed side effect is logged, never raised
            log.warning("after_commit_failed", exc_info=True)


async def drain_after_commit(timeout_s: float = 5.0) -> None:
    """Wait (bounded) for after-commit work still running: called on shutdown before the cache
    and the HTTP client close, so that committed events are not dropped."""
    if _background:
        await asyncio.wait(set(_background), timeout=timeout_s)


@asynccontextmanager
async def unit_of_work(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction; rows staged with :func:`app.db.stage` are written at its end, and its
    after-commit work runs once it has committed."""
    async with maker() as session:
        async with session.begin():
            yield session
            committing = time.perf_counter()
            await write_staged(session, last=True)
        STAGE_LATENCY.labels("persist").observe(time.perf_counter() - committing)
        await run_after_commit(session)


def rfq_channel(rfq_id: object) -> str:
    return f"rfq:{rfq_id}"


class EventBus:
    """Publishes RFQ and dealer-request events on the cache's pub/sub (Redis or in-process)."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def publish_after_commit(
        self, session: AsyncSession, channel: str, event: dict[str, Any]
    ) -> None:
        """Queue an event; a unit of work's events go out together, in order, in one round
        trip once it has committed."""
        payload = json.dumps(event, default=str)
        queued: list[tuple[str, str]] | None = session.info.get(_EVENTS)
        if queued is not None:
            queued.append((channel, payload))
            return
        queued = session.info[_EVENTS] = [(channel, payload)]

        async def _publish() -> None:
            try:
                await self.cache.publish_many(queued)
            except CacheUnavailable:
                log.warning("event_publish_failed", channels=sorted({c for c, _ in queued}))

        after_commit(session, _publish)
