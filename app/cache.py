"""The cache seam: Redis in production, an in-process implementation by default.

Both implement the same small interface (key/value with TTL, set-if-absent, windowed counters,
pub/sub), so that idempotency, rate limits and events run the same code on either.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import redis.asyncio as redis_asyncio
from redis.exceptions import NoScriptError, RedisError


class CacheUnavailable(RuntimeError):
    """The cache could not be reached."""


class Cache(Protocol):
    backend: str

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl_s: float, *, nx: bool = False) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def incr_window(self, key: str, window_s: int) -> tuple[int, float]:
        """Increment a counter that lives ``window_s``; return (count, seconds left)."""
        ...

    async def publish(self, channel: str, message: str) -> None: ...
    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """Publish ``(channel, message)`` pairs in order, in one round trip."""
        ...

    def subscribe(self, channel: str, ready: asyncio.Event | None = None) -> AsyncIterator[str]:
        """Messages published on ``channel`` from now on; ``ready`` is set once subscribed."""
        ...

    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryCache:
    """In-process cache for the embedded default (one process; not shared across workers)."""

    backend = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._subs: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)
        self._lock = asyncio.Lock()

    def _live(self, key: str) -> tuple[bytes, float] | None:
        item = self._data.get(key)
        if item is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    async def get(self, key: str) -> bytes | None:
        item = self._live(key)
        return None if item is None else item[0]

    async def set(self, key: str, value: bytes, ttl_s: float, *, nx: bool = False) -> bool:
        if nx and self._live(key) is not None:
            return False
        self._data[key] = (value, time.monotonic() + ttl_s)
        if len(self._data) > 100_000:
            self._evict()
        return True

    def _evict(self) -> None:
        now = time.monotonic()
        for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
            del self._data[k]

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr_window(self, key: str, window_s: int) -> tuple[int, float]:
        item = self._live(key)
        now = time.monotonic()
        if item is None:
            self._data[key] = (b"1", now + window_s)
            return 1, float(window_s)
        count = int(item[0]) + 1
        self._data[key] = (str(count).encode(), item[1])
        return count, item[1] - now

    async def publish(self, channel: str, message: str) -> None:
        for queue in list(self._subs.get(channel, ())):
            queue.put_nowait(message)

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        for channel, message in messages:
            await self.publish(channel, message)

    async def subscribe(
        self, channel: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._subs[channel].add(queue)
        if ready is not None:
            ready.set()
        try:
            while True:
                yield await queue.get()
        finally:
            self._subs[channel].discard(queue)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


def _raise_if_cancelled(task: asyncio.Task[Any] | None) -> None:
    """Honour a cancellation that redis-py swallowed.

    A subscription cancelled while redis-py reads its confirmation (measured: within about
    0.5-2 ms of starting, redis 8.2 on Python 3.11) loses the CancelledError inside the client,
    and the loop below would then read the channel for ever. The dealer fan-out's per-RFQ
    listener hung RFQ requests so (since replaced by ``app.dealers.answers``); the event streams
    and the listeners cancelled at shutdown still rely on this. The task still counts the
    request (``Task.cancelling``), so it is raised again here."""
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_INCR_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""


class RedisCache:
    """Redis through redis.asyncio; every failure surfaces as :class:`CacheUnavailable`."""

    backend = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.5) -> None:
        self._redis = redis_asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=10,
            max_connections=64,
        )
        self._timeout_s = timeout_s
        # one command instead of MULTI/INCR/EXPIRE/PTTL/EXEC; atomic like the transaction
        self._incr_window = self._redis.register_script(_INCR_WINDOW)
        self._pipeline = _AutoPipeline(self._redis)

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def get(self, key: str) -> bytes | None:
        async with self._guard():
            value = await self._redis.get(key)
            return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_s: float, *, nx: bool = False) -> bool:
        async with self._guard():
            done = await self._redis.set(key, value, px=max(1, int(ttl_s * 1000)), nx=nx)
            return bool(done)

    async def delete(self, key: str) -> None:
        async with self._guard():
            await self._redis.delete(key)

    async def incr_window(self, key: str, window_s: int) -> tuple[int, float]:
        command = ("EVALSHA", self._incr_window.sha, 1, key, window_s * 1000)
        async with self._guard():
            try:
                (result,) = await self._pipeline.send([command])
            except NoScriptError:  # Redis restarted (or flushed its scripts): load it again
                await self._redis.script_load(_INCR_WINDOW)
                (result,) = await self._pipeline.send([command])
            count, pttl = result
            return int(count), max(int(pttl), 0) / 1000.0

    async def publish(self, channel: str, message: str) -> None:
        async with self._guard():
            await self._redis.publish(channel, message)

    async def publish_many(self, messages: Sequence[tuple[str, str]]) -> None:
        async with self._guard():
            await self._pipeline.send(
                [("PUBLISH", channel, message) for channel, message in messages]
            )

    async def subscribe(
        self, channel: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[str]:
        pubsub = self._redis.pubsub()
        task = asyncio.current_task()
        try:
            async with self._guard():
                await pubsub.subscribe(channel)
                # subscribed once Redis confirms (its first reply on this connection): only
                # messages published after that are delivered, so ``ready`` waits for it
                confirmed = await pubsub.get_message(timeout=self._timeout_s * 10)
            _raise_if_cancelled(task)
            if confirmed is None or confirmed.get("type") != "subscribe":
                raise CacheUnavailable(f"Redis did not confirm the subscription to {channel!r}")
            if ready is not None:
                ready.set()
            while True:
                async with self._guard():
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                _raise_if_cancelled(task)
                if msg is not None:
                    data = msg["data"]
                    yield data.decode() if isinstance(data, bytes) else str(data)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


_Command = tuple[str | int | bytes, ...]


class _AutoPipeline:
    """Commands sent while a pipeline is in flight go out together in the next one.

    The hot path's commands (the rate limit's counter, the events of a committed unit of
    work) come from many requests at once under load; each used to cost its own round trip
    and its own pass through the client's connection pool. Here the first command starts a
    pipeline at once (no timer: idle, nothing waits), and those that arrive meanwhile share the
    next one. Each caller gets its own commands' replies, or the error that its own commands,
    or the pipeline as a whole, met. Not transactional: like separate commands, each is atomic
    on its own (the rate limit's script included)."""

    def __init__(self, redis: redis_asyncio.Redis) -> None:
        self._redis = redis
        self._queue: list[tuple[list[_Command], asyncio.Future[list[Any]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def send(self, commands: list[_Command]) -> list[Any]:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            self._task, self._queue = None, []  # a previous event loop's (tests, restarts)
        replies: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append((commands, replies))
        if self._task is None:
            # its own context: the first caller's context variables must not follow the rest
            self._task = loop.create_task(self._drain(), context=contextvars.Context())
            self._task.add_done_callback(self._ended)
        return await replies

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A drain cancelled before it started (its body never ran) leaves nobody waiting."""
        if task is self._task and task.cancelled():
            for _, replies in self._queue:
                replies.cancel()
            self._task, self._queue = None, []

    async def _drain(self) -> None:
        batch: list[tuple[list[_Command], asyncio.Future[list[Any]]]] = []
        try:
            while self._queue:
                batch, self._queue = [q for q in self._queue if not q[1].done()], []
                try:
                    pipe = self._redis.pipeline(transaction=False)
                    for commands, _ in batch:
                        for command in commands:
                            pipe.execute_command(*command)
                    results = await pipe.execute(raise_on_error=False)
                except Exception as exc:
                    for _, replies in batch:
                        if not replies.done():  # each caller its own copy of the error
                            replies.set_exception(_copied(exc))
                    continue
                at = 0
                for commands, replies in batch:
                    own = results[at : at + len(commands)]
                    at += len(commands)
                    if replies.done():  # its caller was cancelled
                        continue
                    error = next((r for r in own if isinstance(r, Exception)), None)
                    if error is not None:
                        replies.set_exception(error)
                    else:
                        replies.set_result(own)
                batch = []
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            for _, replies in (*batch, *self._queue):
                replies.cancel()
            self._queue = []
            raise
        finally:
            self._task = None


def _copied(exc: Exception) -> Exception:
    try:
        mine = copy.copy(exc)
    except Exception:  # pragma: no cover - an exception that cannot be copied
        return exc
    mine.__cause__ = exc
    return mine


def create_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()
