"""Server-sent events of one RFQ: its state now, then every change until it is final."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

from app.cache import Cache, CacheUnavailable
from app.events import rfq_channel
from app.rfq.lifecycle import FINAL, RfqState

HEARTBEAT_S = 15.0
FINAL_GRACE_S = 0.5
MAX_STREAM_S = 600.0


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


async def rfq_event_stream(
    cache: Cache, rfq_id: uuid.UUID, initial: dict[str, object]
) -> AsyncIterator[str]:
    """Yield SSE frames: ``snapshot`` first, then ``state``/``created`` events as published."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    ready = asyncio.Event()

    async def pump() -> None:
        with contextlib.suppress(CacheUnavailable):
            async for message in cache.subscribe(rfq_channel(rfq_id), ready):
                queue.put_nowait(message)

    task = asyncio.create_task(pump())
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 2.0)
        yield sse("snapshot", json.dumps(initial, default=str))
        if RfqState(str(initial["state"])) in FINAL:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + MAX_STREAM_S
        final = {s.value for s in FINAL}
        while loop.time() < end:
            try:
                message = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            event = json.loads(message)
            yield sse(str(event.get("type", "state")), message)
            if event.get("type") == "state" and event.get("state") in final:
                # forward what follows the final state (dealer outcomes) for a moment, then end
                end = min(end, loop.time() + FINAL_GRACE_S)
                with contextlib.suppress(TimeoutError):
                    while loop.time() < end:
                        message = await asyncio.wait_for(queue.get(), end - loop.time())
                        event = json.loads(message)
                        yield sse(str(event.get("type", "state")), message)
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
