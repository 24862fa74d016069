"""Dealers answering fast, on PostgreSQL and Redis: every RFQ comes back quoted, quickly.

The fan-out used to cancel a per-RFQ Redis listener as soon as every dealer had answered;
redis-py lost a cancellation that landed while the subscription was being confirmed, and the
RFQ's request never returned (found by the load bench with dealers answering at once,
2026-12-06). Answers posted back are now announced on one subscription per process
(``app.dealers.answers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest

from app.config import DealerSettings, MlSettings, Settings
from app.dealers.simulated import Mode, create_dealers_app, make_dealers
from app.main import create_app
from tests.e2e.test_dealer_flow import _setup
from tests.factories import call_spread
from tests.servers import free_port, serve

pytestmark = [pytest.mark.db, pytest.mark.redis]


@contextlib.contextmanager
def _desk(
    database_url: str,
    redis_url: str,
    *,
    mode: Mode,
    count: int,
    latency_ms: float,
    deadline_ms: int,
) -> Iterator[tuple[str, str]]:
    """The service and ``count`` simulated dealers answering in ``mode`` after ``latency_ms``,
    all asked for every RFQ; yields the desk's URL and a sales key."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        log_level="CRITICAL",
        dealers=DealerSettings(deadline_ms=deadline_ms, breaker_failures=1000),
        ml=MlSettings(min_dealers=count),
    )
    dealers = make_dealers(count, seed=7, modes=[mode] * count)
    for d in dealers:
        d.p_answer, d.latency_ms, d.max_size = 1.0, latency_ms, 1000.0
    dealer_port, desk_port = free_port(), free_port()
    key = asyncio.run(_setup(settings, dealers, f"http://127.0.0.1:{dealer_port}"))
    desk = f"http://127.0.0.1:{desk_port}"
    with (
        serve(create_dealers_app(dealers, desk), dealer_port),
        serve(create_app(settings), desk_port),
    ):
        yield desk, key


async def _burst(desk: str, key: str, n: int) -> list[tuple[float, httpx.Response]]:
    """``n`` two-way RFQs at once: (seconds each took, its answer)."""

    async def one(client: httpx.AsyncClient) -> tuple[float, httpx.Response]:
        started = time.monotonic()
        resp = await client.post("/v1/rfqs", json=call_spread(side="two_way"))
        return time.monotonic() - started, resp

    async with httpx.AsyncClient(
        base_url=desk, headers={"Authorization": f"Bearer {key}"}, timeout=15
    ) as client:
        return await asyncio.gather(*(one(client) for _ in range(n)))


def _quoted_by_every_dealer_asked(resp: httpx.Response) -> None:
    assert resp.status_code == 201, resp.text
    rfq = resp.json()
    assert rfq["state"] == "quoted"
    asked = [r for r in rfq["dealer_requests"] if r["outcome"] != "skipped"]
    assert asked
    assert all(r["outcome"] == "quoted" for r in asked)
    assert len([q for q in rfq["dealer_quotes"] if q["status"] == "live"]) == len(asked)


def test_concurrent_rfqs_with_instant_dealers_all_come_back_quoted(
    own_postgres_url: str, redis_url: str
) -> None:
    with _desk(
        own_postgres_url, redis_url, mode="body", count=4, latency_ms=0.0, deadline_ms=2000
    ) as (desk, key):
        for _ in range(3):
            answers = asyncio.run(_burst(desk, key, 16))
            for elapsed, resp in answers:
                assert elapsed < 12  # a hung request would take the 15 s timeout
                _quoted_by_every_dealer_asked(resp)


def test_answers_posted_back_end_the_wait_long_before_the_deadline(
    own_postgres_url: str, redis_url: str
) -> None:
    """Dealers that answer 202 and post their quote 20 ms later: the announcement of each quote
    ends the fan-out's wait as soon as every dealer asked has answered, not at the 3 s
    deadline; the same quote from one dealer to several RFQs in one second is no replay."""
    with _desk(
        own_postgres_url, redis_url, mode="callback", count=3, latency_ms=20.0, deadline_ms=3000
    ) as (desk, key):
        for _, resp in asyncio.run(_burst(desk, key, 1)):  # the first RFQ loads what it needs
            _quoted_by_every_dealer_asked(resp)
        for _ in range(2):
            for elapsed, resp in asyncio.run(_burst(desk, key, 8)):
                _quoted_by_every_dealer_asked(resp)
                assert elapsed < 2.0
