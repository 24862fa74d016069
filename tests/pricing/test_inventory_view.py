"""The desk inventory kept in memory between quotes: never staler than a fill's announcement."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache import MemoryCache, RedisCache
from app.events import unit_of_work
from app.pricing.desk import SESSION_KEY, DeskRiskRepository
from app.pricing.inventory import InventoryView


@contextlib.asynccontextmanager
async def listening(view: InventoryView) -> AsyncIterator[InventoryView]:
    task = asyncio.create_task(view.listen(retry_s=0.05))
    try:
        for _ in range(200):
            if view.live:
                break
            await asyncio.sleep(0.01)
        yield view
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _move(maker: async_sessionmaker[AsyncSession], changes: dict[str, float]) -> None:
    async with unit_of_work(maker) as session:
        await DeskRiskRepository(session).add(changes)


async def _read(maker: async_sessionmaker[AsyncSession], view: InventoryView) -> dict[str, float]:
    async with maker() as session:
        return await view.inventory(session, "BTC")


@pytest.fixture
def view(sessionmaker: async_sessionmaker[AsyncSession]) -> InventoryView:
    view = InventoryView(MemoryCache(), max_age_s=30.0)
    sessionmaker.configure(info={SESSION_KEY: view})
    return view


async def test_served_from_memory_until_a_fill_moves_it(sessionmaker, view):
    await _move(sessionmaker, {"BTC:delta": 5.0, "ETH:delta": 1.0})
    async with listening(view):
        assert view.live
        first = await _read(sessionmaker, view)
        assert first == {"BTC:delta": 5.0}
        assert await _read(sessionmaker, view) == first
        assert (view.reads, view.hits) == (1, 1)
        # the moving transaction's commit drops the entry before anything else runs
        await _move(sessionmaker, {"BTC:delta": -2.0})
        assert await _read(sessionmaker, view) == {"BTC:delta": 3.0}
        assert view.reads == 2
        # a fill on another underlying leaves it in memory
        await _move(sessionmaker, {"ETH:delta": 4.0})
        assert await _read(sessionmaker, view) == {"BTC:delta": 3.0}
        assert view.reads == 2


async def test_a_rolled_back_move_keeps_the_entry(sessionmaker, view):
    async with listening(view):
        await _read(sessionmaker, view)

        async def failing_fill() -> None:
            async with unit_of_work(sessionmaker) as session:
                await DeskRiskRepository(session).add({"BTC:delta": 9.0})
                raise RuntimeError("the fill failed")

        with pytest.raises(RuntimeError):
            await failing_fill()
        assert await _read(sessionmaker, view) == {}
        assert (view.reads, view.hits) == (1, 1)


async def test_a_read_that_raced_a_drop_is_not_kept(sessionmaker, view):
    async with listening(view):
        async with sessionmaker() as session:
            read = asyncio.create_task(view.inventory(session, "BTC"))
            await asyncio.sleep(0)  # the read has started
            view.drop(["BTC"])
            await read
        await _read(sessionmaker, view)
        assert view.reads == 2  # the raced read was not served again


async def test_entries_age_out(sessionmaker):
    view = InventoryView(MemoryCache(), max_age_s=0.05)
    sessionmaker.configure(info={SESSION_KEY: view})
    async with listening(view):
        await _read(sessionmaker, view)
        await asyncio.sleep(0.08)
        await _read(sessionmaker, view)
        assert view.reads == 2


async def test_not_served_from_memory_without_a_listener_or_when_disabled(sessionmaker):
    idle = InventoryView(MemoryCache(), max_age_s=30.0)
    for _ in range(3):
        await _read(sessionmaker, idle)
    assert (idle.reads, idle.hits) == (3, 0)
    off = InventoryView(MemoryCache(), max_age_s=0.0)
    async with listening(off):
        for _ in range(3):
            await _read(sessionmaker, off)
    assert (off.reads, off.hits) == (3, 0)


@pytest.mark.db
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_another_process_drops_its_entry_when_the_fill_is_announced(sessionmaker, redis_url):
    """Two workers (two views on their own Redis connections) over one database: worker A's
    fill reaches worker B through Redis pub/sub."""
    a = InventoryView(RedisCache(redis_url), max_age_s=30.0)
    b = InventoryView(RedisCache(redis_url), max_age_s=30.0)
    try:
        async with listening(a), listening(b):
            assert a.live
            assert b.live
            assert await _read(sessionmaker, b) == {}
            sessionmaker.configure(info={SESSION_KEY: a})
            await _move(sessionmaker, {"BTC:delta": 7.0})
            for _ in range(200):  # delivered within milliseconds
                if "BTC" not in b._entries:
                    break
                await asyncio.sleep(0.005)
            assert await _read(sessionmaker, b) == {"BTC:delta": 7.0}
    finally:
        await a.cache.close()
        await b.cache.close()


async def test_redis_unreachable_means_every_quote_reads_the_database(sessionmaker):
    view = InventoryView(RedisCache("redis://127.0.0.1:1/0", timeout_s=0.05), max_age_s=30.0)
    task = asyncio.create_task(view.listen(retry_s=0.05))
    try:
        await asyncio.sleep(0.2)
        assert not view.live
        for _ in range(3):
            await _read(sessionmaker, view)
        assert (view.reads, view.hits) == (3, 0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await view.cache.close()


async def test_a_read_inside_a_moving_transaction_that_rolls_back_is_not_kept(sessionmaker, view):
    async with listening(view):

        async def read_then_fail() -> None:
            async with unit_of_work(sessionmaker) as session:
                await DeskRiskRepository(session).add({"BTC:delta": 4.0})
                assert await view.inventory(session, "BTC") == {"BTC:delta": 4.0}
                raise RuntimeError("the fill failed after reading its own rows")

        with pytest.raises(RuntimeError):
            await read_then_fail()
        # the uncommitted 4.0 was never kept: the next quote reads what is stored
        assert await _read(sessionmaker, view) == {}
        assert (view.reads, view.hits) == (2, 0)


@pytest.mark.parametrize(("workers", "kept"), [(1, True), (2, False)])
async def test_the_app_keeps_inventory_only_when_every_worker_hears_fills(settings, workers, kept):
    """In-process pub/sub reaches one worker only: several workers without Redis read the
    inventory for every quote."""
    from app.main import create_app

    application = create_app(settings.model_copy(update={"serve_workers": workers}))
    async with application.router.lifespan_context(application):
        view = application.state.rfqdesk.services["inventory"]
        assert (view.max_age_s > 0) is kept
