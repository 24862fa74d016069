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


async def test_concurrent_counts_are_exact(cache: Cache) -> None:
    key = k()
    counts = await asyncio.gather(*(cache.incr_window(key, 60) for _ in range(25)))
    assert sorted(c for c, _ in counts) == list(range(1, 26))
    assert all(0 < left <= 60 for _, left in counts)


async def test_concurrent_publishes_keep_each_units_order(cache: Cache) -> None:
    channel = k()
    received: list[str] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async for message in cache.subscribe(channel, ready):
            received.append(message)
            if len(received) == 30:
                return

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    await asyncio.sleep(0.1)
    await asyncio.gather(
        *(cache.publish_many([(channel, f"{u}:{i}") for i in range(3)]) for u in range(10))
    )
    await asyncio.wait_for(task, 5)
    assert sorted(received) == sorted(f"{u}:{i}" for u in range(10) for i in range(3))
    for u in range(10):
        assert [m for m in received if m.startswith(f"{u}:")] == [f"{u}:{i}" for i in range(3)]


@pytest.mark.redis
class TestAutoPipeline:
    """Redis commands of concurrent requests share round trips; errors stay with their own
    caller."""

    @pytest.fixture
    async def redis_cache(self, redis_url: str) -> AsyncIterator[RedisCache]:
        cache = RedisCache(redis_url)
        yield cache
        await cache.close()

    async def test_concurrent_commands_share_a_pipeline(
        self, redis_cache: RedisCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        made = 0
        pipeline = redis_cache._redis.pipeline

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal made
            made += 1
            return pipeline(*args, **kwargs)

        monkeypatch.setattr(redis_cache._redis, "pipeline", counted)
        key = k()
        await asyncio.gather(
            *(redis_cache.incr_window(key, 60) for _ in range(20)),
            *(redis_cache.publish_many([(k(), "m")]) for _ in range(20)),
        )
        assert made == 1  # every command was queued before the first pipeline went out
        assert (await redis_cache.incr_window(key, 60))[0] == 21

    async def test_a_flushed_script_is_loaded_again(self, redis_cache: RedisCache) -> None:
        key = k()
        assert (await redis_cache.incr_window(key, 60))[0] == 1
        await redis_cache._redis.script_flush()
        assert (await redis_cache.incr_window(key, 60))[0] == 2

    async def test_an_error_reaches_only_its_own_caller(self, redis_cache: RedisCache) -> None:
        key, wrong = k(), k()
        await redis_cache._redis.set(wrong, "not a counter")
        results = await asyncio.gather(
            redis_cache.incr_window(key, 60),
            redis_cache.incr_window(wrong, 60),
            redis_cache.incr_window(key, 60),
            return_exceptions=True,
        )
        assert isinstance(results[1], CacheUnavailable)
        assert "not an integer" in str(results[1])
        assert sorted(r[0] for i, r in enumerate(results) if i != 1) == [1, 2]  # type: ignore[index]


@pytest.mark.redis
async def test_ready_waits_for_redis_to_confirm_the_subscription(redis_url: str) -> None:
    """A proxy holds the subscriber's commands back for 0.3 s: ``ready`` must not be set
    before Redis has the subscription, or a message published then would be lost."""
    from urllib.parse import urlsplit

    target = urlsplit(redis_url)

    async def relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
        while data := await src.read(65536):
            await asyncio.sleep(delay)
            dst.write(data)
            await dst.drain()
        dst.close()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(relay(reader, up_writer, 0.3), relay(up_reader, writer, 0.0))

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    slow = RedisCache(f"redis://127.0.0.1:{port}{target.path or '/0'}", timeout_s=2.0)
    direct = RedisCache(redis_url)
    try:
        channel, ready = k(), asyncio.Event()
        stream = slow.subscribe(channel, ready)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(ready.wait(), 10)
        await direct.publish(channel, "now")
        assert await asyncio.wait_for(first, 5) == "now"
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        await slow.close()
        await direct.close()
        server.close()


@pytest.mark.redis
async def test_a_pipeline_cancelled_before_it_ran_leaves_nobody_waiting(redis_url: str) -> None:
    cache = RedisCache(redis_url)
    try:
        key = k()
        calls = [asyncio.create_task(cache.incr_window(key, 60)) for _ in range(3)]
        await asyncio.sleep(0)  # queued; the pipeline's task has not run yet
        task = cache._pipeline._task
        assert task is not None
        task.cancel()
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert (await cache.incr_window(key, 60))[0] == 1  # nothing was sent; later ones are
    finally:
        await cache.close()


@pytest.mark.redis
async def test_a_subscription_cancelled_while_it_starts_ends(redis_url: str) -> None:
    """Cancelled within the first milliseconds (while redis-py reads the confirmation), a
    subscription lost the CancelledError inside the client and read its channel for ever (an
    event stream whose client left, a listener at shutdown). Every one must end."""
    cache = RedisCache(redis_url)

    async def listen(channel: str) -> None:
        async for _ in cache.subscribe(channel):
            pass

    try:
        stuck = 0
        for delay in [0.0, 0.0002, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005] * 5:
            task = asyncio.create_task(listen(k()))
            await asyncio.sleep(delay)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2.0)
            if not done:
                stuck += 1
                await asyncio.wait({task}, timeout=2.0)  # ends on its own now, at worst
            else:
                assert task.cancelled()
        assert stuck == 0
    finally:
        await cache.close()
