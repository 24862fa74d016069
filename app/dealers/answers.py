"""Dealer answers posted back while a fan-out waits: one subscription per process.

A dealer that answers a quote request with 202 posts its quote later to the desk's inbound
endpoint, possibly in another worker process. That endpoint announces the answer on one shared
channel (:func:`announce`); every process keeps one subscription to it (:class:`AnswerWatch`)
and wakes the fan-out waiting on that RFQ, which then stops waiting before the deadline once
every dealer it asked has answered.

One subscription for the process rather than one per RFQ: no Redis connection, subscribe and
unsubscribe per RFQ (1.1 ms of CPU each, measured), no pool connection held per RFQ in flight
(64 RFQs in flight would have used up the Redis pool), and no subscription to cancel as the
fan-out ends (a cancellation redis-py lost there once hung the RFQ's request,
``app.cache._raise_if_cancelled``). While the subscription is down, a fan-out still ends at its
deadline, and the answers are in the database either way: the announcement only ends the wait
early.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from app.cache import Cache, CacheUnavailable

log = structlog.get_logger(__name__)

CHANNEL = "rfqdesk:dealer-answers"


async def announce(cache: Cache, rfq_id: uuid.UUID, request_id: uuid.UUID) -> None:
    """Tell every process that the dealer request ``request_id`` of ``rfq_id`` has an answer."""
    await cache.publish(CHANNEL, f"{rfq_id} {request_id}")


@dataclass
class Watch:
    """The answers announced so far for one RFQ (request ids), and a flag set on each."""

    answered: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class AnswerWatch:
    """The process's subscription to the answers channel and the RFQs being waited on.

    The subscription starts with the first watch (on the running event loop) and is kept,
    reconnecting with a backoff, until :meth:`close`."""

    def __init__(self, cache: Cache, *, ready_wait_s: float = 0.2) -> None:
        self.cache = cache
        self.ready_wait_s = ready_wait_s
        self._watches: dict[str, Watch] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lost = False  # the subscription failed and has not come back yet
        self._closed = False
        self._wait_s = 0.0  # the listener's current backoff

    @contextlib.asynccontextmanager
    async def watching(self, rfq_id: uuid.UUID) -> AsyncIterator[Watch]:
        """Collect the answers announced for ``rfq_id`` while the block runs.

        When the subscription is being made (the first RFQ), waits up to ``ready_wait_s`` for
        it, so that an answer posted back at once is not missed. Not while it is lost (Redis
        down): the fan-out then relies on its deadline, and RFQs answered in the response body
        pay nothing for the outage."""
        self._listen_on_this_loop()
        if not self._ready.is_set() and not self._lost and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self.ready_wait_s)
        key = str(rfq_id)
        watch = self._watches[key] = Watch()
        try:
            yield watch
        finally:
            if self._watches.get(key) is watch:
                del self._watches[key]

    def _listen_on_this_loop(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if self._closed or (task is not None and not task.done() and task.get_loop() is loop):
            return  # closed (shutting down: the deadline bounds the wait), or listening
        if task is not None and task.get_loop() is not loop:
            self._ready = asyncio.Event()  # a previous event loop's (tests, restarts)
        # a context of its own: not the first request's (its log fields, its request id)
        self._task = loop.create_task(
            self.listen(), name="dealer-answer-listener", context=contextvars.Context()
        )

    async def listen(self, retry_s: float = 0.5, max_retry_s: float = 5.0) -> None:
        """Keep the subscription; deliver each announcement to its RFQ's watch."""
        self._wait_s = retry_s
        while True:
            subscribed = asyncio.Event()
            going_live = asyncio.create_task(self._live_when(subscribed, retry_s))
            try:
                async for message in self.cache.subscribe(CHANNEL, subscribed):
                    self._deliver(message)
            except CacheUnavailable as exc:
                log.warning("dealer_answer_subscription_lost", error=str(exc))
            except Exception:  # never end for good: fan-outs fall back on their deadline
                log.exception("dealer_answer_listener_failed")
            finally:
                going_live.cancel()
                self._ready.clear()
            self._lost = True
            await asyncio.sleep(self._wait_s)
            self._wait_s = min(self._wait_s * 2, max_retry_s)

    async def _live_when(self, subscribed: asyncio.Event, retry_s: float) -> None:
        """Once Redis confirms the subscription: ready, and the backoff starts over."""
        await subscribed.wait()
        self._lost, self._wait_s = False, retry_s
        self._ready.set()

    def _deliver(self, message: str) -> None:
        rfq_id, _, request_id = message.partition(" ")
        watch = self._watches.get(rfq_id)
        if watch is not None and request_id:
            watch.answered.add(request_id)
            watch.changed.set()

    @property
    def watched(self) -> int:
        """RFQs being waited on now."""
        return len(self._watches)

    async def close(self) -> None:
        """End the subscription (at shutdown); fan-outs after this wait for their deadline."""
        self._closed = True
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=2.0)
