"""The cache interface behaves the same in-process and on Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from app.cache import Cache, CacheUnavailable, MemoryCache, RedisCache


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        c: Cache = MemoryCache()
    else:
        c = RedisCache(request.getfixturevalue("redis_url"))
    yield c
    await c.close()


def k() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_set_get_and_ttl(cache: Cache) -> None:
    key = k()
    assert await cache.get(key) is None
    assert await cache.set(key, b"v", 0.2)
    assert await cache.get(key) == b"v"
    await asyncio.sleep(0.3)
    assert await cache.get(key) is None


async def test_set_if_absent(cache: Cache) -> None:
    key = k()
    assert await cache.set(key, b"1", 5, nx=True)
    assert not await cache.set(key, b"2", 5, nx=True)
    assert await cache.get(key) == b"1"
    await cache.delete(key)
    assert await cache.set(key, b"3", 5, nx=True)


async def test_window_counter_counts_and_resets(cache: Cache) -> None:
    key = k()
    counts = [(await cache.incr_window(key, 1))[0] for _ in range(3)]
    assert counts == [1, 2, 3]
    _, left = await cache.incr_window(key, 1)
    assert 0 < left <= 1
    await asyncio.sleep(1.1)
    assert (await cache.incr_window(key, 1))[0] == 1


async def test_pubsub_delivers_in_order(cache: Cache) -> None:
    channel = k()
    received: list[str] = []

    async def listen() -> None:
        async for message in cache.subscribe(channel):
            received.append(message)
            if len(received) == 3:
                return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.2)
    for m in ("a", "b", "c"):
        await cache.publish(channel, m)
    await asyncio.wait_for(task, 5)
    assert received == ["a", "b", "c"]


async def test_unreachable_redis_raises_cache_unavailable() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", timeout_s=0.2)
    with pytest.raises(CacheUnavailable):
        await cache.get("x")
    assert not await cache.ping()
    await cache.close()
