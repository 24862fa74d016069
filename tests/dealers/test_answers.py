"""The process's one subscription to dealer answers: delivery, isolation, recovery, shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from app.cache import Cache, CacheUnavailable, MemoryCache, RedisCache
from app.dealers.answers import AnswerWatch, announce


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    c: Cache = (
        MemoryCache()
        if request.param == "memory"
        else RedisCache(request.getfixturevalue("redis_url"))
    )
    yield c
    await c.close()


async def _an_answer_reaches_its_watch(answers: AnswerWatch, cache: Cache) -> None:
    rfq, request = uuid.uuid4(), uuid.uuid4()
    async with answers.watching(rfq) as watch:
        await announce(cache, rfq, request)
        await asyncio.wait_for(watch.changed.wait(), 2.0)
        assert watch.answered == {str(request)}


async def test_an_answer_reaches_the_watch_of_its_rfq_only(cache: Cache) -> None:
    answers = AnswerWatch(cache)
    mine, other, request = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with answers.watching(mine) as watch, answers.watching(other) as theirs:
            await announce(cache, mine, request)
            await asyncio.wait_for(watch.changed.wait(), 2.0)
            assert watch.answered == {str(request)}
            assert theirs.answered == set()
            assert not theirs.changed.is_set()
        assert answers.watched == 0  # nothing kept once the fan-out is done
        await announce(cache, mine, uuid.uuid4())  # nobody waits: dropped
        await asyncio.sleep(0.05)
        assert answers.watched == 0
    finally:
        await answers.close()


async def test_the_first_watch_waits_for_the_subscription(cache: Cache) -> None:
    """An answer announced right after the first watch opens must not be lost."""
    answers = AnswerWatch(cache, ready_wait_s=2.0)
    try:
        await _an_answer_reaches_its_watch(answers, cache)
    finally:
        await answers.close()


class _FlakyCache(MemoryCache):
    """The subscription fails the first ``failures`` times, as a Redis outage would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def subscribe(
        self, channel: str, ready: asyncio.Event | None = None
    ) -> AsyncIterator[str]:
        if self.failures > 0:
            self.failures -= 1
            raise CacheUnavailable("down")
        async for message in super().subscribe(channel, ready):
            yield message


async def test_the_subscription_comes_back_after_an_outage() -> None:
    cache = _FlakyCache(failures=2)
    answers = AnswerWatch(cache, ready_wait_s=0.0)
    try:
        listening = asyncio.create_task(answers.listen(retry_s=0.01, max_retry_s=0.02))
        answers._task = listening  # the watch below uses this listener
        await asyncio.wait_for(answers._ready.wait(), 2.0)  # subscribed, after two failures
        assert cache.failures == 0
        await _an_answer_reaches_its_watch(answers, cache)
    finally:
        await answers.close()
    assert listening.done()


async def test_close_ends_the_subscription(cache: Cache) -> None:
    answers = AnswerWatch(cache)
    async with answers.watching(uuid.uuid4()):
        pass
    task = answers._task
    assert task is not None
    assert not task.done()
    await answers.close()
    assert task.done()


async def test_a_watch_does_not_wait_while_the_subscription_is_lost() -> None:
    """Redis down: RFQs answered in the response body must not pay a wait per RFQ."""
    cache = _FlakyCache(failures=1000)
    answers = AnswerWatch(cache, ready_wait_s=1.0)
    try:
        async with answers.watching(uuid.uuid4()):
            pass  # the first watch waits for the subscription, which fails at once
        started = asyncio.get_running_loop().time()
        async with answers.watching(uuid.uuid4()) as watch:
            assert watch.answered == set()
        assert asyncio.get_running_loop().time() - started < 0.1
    finally:
        await answers.close()


async def test_after_close_a_watch_starts_no_listener(cache: Cache) -> None:
    """A fan-out still running at shutdown must not leave a subscription nobody closes."""
    answers = AnswerWatch(cache, ready_wait_s=1.0)
    async with answers.watching(uuid.uuid4()):
        pass
    await answers.close()
    started = asyncio.get_running_loop().time()
    async with answers.watching(uuid.uuid4()):
        pass
    assert answers._task is None
    assert asyncio.get_running_loop().time() - started < 0.1
