"""The fan-out never waits on its answers' listener past a short grace."""

from __future__ import annotations

import asyncio
import time

from app.dealers import fanout


async def test_a_listener_that_ignores_its_cancel_does_not_hold_the_rfq() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        # swallows its cancellation, as redis-py once did while a subscription started
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await fanout._stop(task, grace_s=0.2)
    assert 0.15 < time.perf_counter() - started < 1.0
    assert task in fanout._STRAGGLERS  # still referenced, not garbage
    release.set()
    await asyncio.wait_for(task, 1.0)
    await asyncio.sleep(0)
    assert task not in fanout._STRAGGLERS


async def test_a_listener_that_ends_on_cancel_is_awaited() -> None:
    async def listener() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(listener())
    await asyncio.sleep(0)
    started = time.perf_counter()
    await fanout._stop(task)
    assert task.cancelled()
    assert time.perf_counter() - started < 0.1
