"""The analytics job: store the markouts of fills once they are final, and roll the reports up
by day to the watermark of complete days. Run every ``INTERVAL_S`` by the service (with its
background tasks) and on demand by ``rfqdesk analytics refresh``.

Each batch of fills and each (rollup, cube, run of days) is one transaction; on PostgreSQL
each takes an advisory lock first, so that of several processes one does the work and the
others skip it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import anyio
import numpy as np
import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analytics import rollup as ru
from app.analytics.markouts import MARKOUT_HORIZONS_S, MarkoutFill, price_markouts
from app.analytics.repository import SLACK, AnalyticsRepository
from app.models import AnalyticsHistogram, AnalyticsRollup, AnalyticsRollupState

log = structlog.get_logger(__name__)

INTERVAL_S = 300.0
FIRST_AFTER_S = 60.0
#: a fill's markouts are final once its last interval [t + h, t + 2h) has closed
FINAL_AFTER = timedelta(seconds=2 * max(MARKOUT_HORIZONS_S))
MARKOUT_BATCH = 20_000
#: the job looks for fills without markouts from this long before the markouts' rollups'
#: watermark (all fills before it have them)
MARKOUT_LOOKBACK = timedelta(days=2)
ROLLUP_CHUNK_DAYS = 31
#: a job's statements may take this long (it works in batches; a report's limit is 9 s)
JOB_TIMEOUT_S = 600.0
LOCK_MARKOUTS = 0x72667101
LOCK_ROLLUPS = 0x72667102


@dataclass
class RefreshResult:
    markouts_stored: int = 0
    markouts_s: float = 0.0
    rollup_rows: int = 0
    rollup_s: float = 0.0
    through: dict[str, date] = field(default_factory=dict)


async def price_fills(repo: AnalyticsRepository, fills: list[MarkoutFill]) -> np.ndarray:
    """Per-unit markouts of the fills (one row per fill, one column per horizon; NaN:
    unpriced), priced on their later snapshots."""
    later = await repo.later_snapshots(f.fill_id for f in fills)
    legs = await repo.legs(f.rfq_id for f in fills)
    docs = await repo.snapshot_data(s for ids in later.values() for s in ids if s)
    # decoding snapshots and pricing are CPU work: off the event loop
    out: np.ndarray = await anyio.to_thread.run_sync(price_markouts, fills, later, legs, docs)
    return out


async def _markouts_since(session: AsyncSession) -> datetime | None:
    through = await ru.markouts_watermark(session)
    return None if through is None else through - MARKOUT_LOOKBACK


async def store_markouts(
    maker: async_sessionmaker[AsyncSession], now: datetime | None = None, batch: int = MARKOUT_BATCH
) -> int:
    """Store the markouts of every client and dealer fill final by ``now``; returns how many."""
    now = now or datetime.now(UTC)
    total = 0
    while True:
        async with maker() as session, session.begin():
            repo = AnalyticsRepository(session)
            await repo.prepare(JOB_TIMEOUT_S)
            if not await repo.try_lock(LOCK_MARKOUTS):
                return total
            since = await _markouts_since(session)
            fills = await repo.unmarked_fills(now - FINAL_AFTER, batch, since)
            if fills:
                await repo.store_markouts(fills, await price_fills(repo, fills), now)
        total += len(fills)
        if len(fills) < batch:
            return total


async def refresh_rollups(
    maker: async_sessionmaker[AsyncSession],
    now: datetime | None = None,
    *,
    rebuild: bool = False,
    chunk_days: int = ROLLUP_CHUNK_DAYS,
) -> tuple[int, dict[str, date]]:
    """Roll every report up to the first incomplete day, from its watermark on. ``rebuild``
    (after RFQs were written with past creation times): from the log's first day again, each
    run of days replaced in one transaction as usual, so that reports stay consistent
    meanwhile; rollups no longer defined and days before the log's first are dropped.
    Returns the rows written and each rollup's watermark."""
    now = now or datetime.now(UTC)
    async with maker() as session, session.begin():
        repo = AnalyticsRepository(session)
        if not await repo.try_lock(LOCK_ROLLUPS):
            return 0, {}
        first = await ru.first_day(session)
        if rebuild:
            await _drop_stale(session, first)
        limits = await ru.complete_before(
            repo, now, None if rebuild else await _markouts_since(session)
        )
    complete = ru.floor_day(now - SLACK)
    if first is not None and limits[0] < complete - timedelta(days=1):
        # correct (those days are read from the raw rows) but slower: say why
        log.warning(
            "analytics_rollups_held_back",
            until=limits[0].isoformat(),
            reason="an RFQ still open or a quote request still pending since that day",
        )
    written = 0
    through: dict[str, date] = {}
    for rollup in ru.ROLLUPS.values():
        for cube in rollup.cubes:
            key = f"{rollup.name}:{ru.cube_name(cube)}"
            again = rebuild
            while True:
                async with maker() as session, session.begin():
                    repo = AnalyticsRepository(session)
                    await repo.prepare(JOB_TIMEOUT_S)
                    if not await repo.try_lock(LOCK_ROLLUPS):
                        return written, through
                    start = (None if again else await ru.watermark(session, rollup.name, cube)) or (
                        first or limits[0]
                    )
                    again = False
                    limit = limits[1] if rollup.markouts else limits[0]
                    end = min(start + timedelta(days=chunk_days), limit)
                    if end <= start:
                        through[key] = start
                        break
                    written += await ru.roll_up(repo, rollup, cube, start, end)
                    through[key] = end
    return written, through


async def _drop_stale(session: AsyncSession, first: date | None) -> None:
    defined = {(r.name, ru.cube_name(c)) for r in ru.ROLLUPS.values() for c in r.cubes}
    st = AnalyticsRollupState
    pairs = {(r, c) for r, c in (await session.execute(select(st.report, st.cube))).all()}
    for t in (AnalyticsRollup, AnalyticsHistogram):
        pairs |= {(r, c) for r, c in (await session.execute(select(t.report, t.cube).distinct()))}
    for report, cube in pairs - defined:
        for t in (AnalyticsRollup, AnalyticsHistogram):
            await session.execute(delete(t).where(t.report == report, t.cube == cube))
        await session.execute(delete(st).where(st.report == report, st.cube == cube))
    for t in (AnalyticsRollup, AnalyticsHistogram):
        if first is None:
            await session.execute(delete(t))
        else:
            await session.execute(delete(t).where(t.day < first))
    if first is None:
        await session.execute(delete(st))


async def refresh(
    maker: async_sessionmaker[AsyncSession], now: datetime | None = None, *, rebuild: bool = False
) -> RefreshResult:
    out = RefreshResult()
    started = time.perf_counter()
    out.markouts_stored = await store_markouts(maker, now)
    out.markouts_s = time.perf_counter() - started
    started = time.perf_counter()
    out.rollup_rows, out.through = await refresh_rollups(maker, now, rebuild=rebuild)
    out.rollup_s = time.perf_counter() - started
    return out


async def schedule(
    maker: async_sessionmaker[AsyncSession],
    interval_s: float = INTERVAL_S,
    first_after_s: float = FIRST_AFTER_S,
) -> None:
    """The service's loop: wait ``first_after_s`` (start-up is left alone), then refresh every
    ``interval_s``; a failure is logged and retried at the next turn."""
    await asyncio.sleep(first_after_s)
    while True:
        try:
            result = await refresh(maker)
            if result.markouts_stored or result.rollup_rows:
                log.info(
                    "analytics_refreshed",
                    markouts=result.markouts_stored,
                    rollup_rows=result.rollup_rows,
                )
        except Exception:
            log.warning("analytics_refresh_failed", exc_info=True)
        await asyncio.sleep(interval_s)
