"""Dealers that answer at once, on PostgreSQL and Redis: every RFQ comes back quoted.

The fan-out cancels its Redis listener as soon as every dealer has answered. redis-py lost a
cancellation that landed while the subscription was being confirmed, and the RFQ's request
then never returned (found by the load bench with dealers answering at once, 2026-12-06).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.config import DealerSettings, MlSettings, Settings
from app.dealers.simulated import create_dealers_app, make_dealers
from app.main import create_app
from tests.e2e.test_dealer_flow import _setup
from tests.factories import call_spread
from tests.servers import free_port, serve

pytestmark = [pytest.mark.db, pytest.mark.redis]


def test_concurrent_rfqs_with_instant_dealers_all_come_back_quoted(
    own_postgres_url: str, redis_url: str
) -> None:
    settings = Settings(
        database_url=own_postgres_url,
        redis_url=redis_url,
        log_level="CRITICAL",
        dealers=DealerSettings(deadline_ms=2000, breaker_failures=1000),
        ml=MlSettings(min_dealers=4),
    )
    dealers = make_dealers(4, seed=7, modes=["body"] * 4)
    for d in dealers:
        d.p_answer, d.latency_ms, d.max_size = 1.0, 0.0, 1000.0
    dealer_port, desk_port = free_port(), free_port()
    key = asyncio.run(_setup(settings, dealers, f"http://127.0.0.1:{dealer_port}"))
    desk = f"http://127.0.0.1:{desk_port}"

    async def burst(n: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=desk, headers={"Authorization": f"Bearer {key}"}, timeout=15
        ) as client:
            return await asyncio.gather(
                *(client.post("/v1/rfqs", json=call_spread(side="two_way")) for _ in range(n))
            )

    with (
        serve(create_dealers_app(dealers, desk), dealer_port),
        serve(create_app(settings), desk_port),
    ):
        for _ in range(3):
            started = time.monotonic()
            answers = asyncio.run(burst(16))
            assert time.monotonic() - started < 12  # a hung request would take the 15 s timeout
            for resp in answers:
                assert resp.status_code == 201, resp.text
                rfq = resp.json()
                assert rfq["state"] == "quoted"
                asked = [r for r in rfq["dealer_requests"] if r["outcome"] != "skipped"]
                assert asked
                assert all(r["outcome"] == "quoted" for r in asked)
                assert len(rfq["dealer_quotes"]) == len(asked)


def test_answers_posted_back_end_the_wait_long_before_the_deadline(
    own_postgres_url: str, redis_url: str
) -> None:
    """Dealers that answer 202 and post their quote 20 ms later: the announcement of each quote
    (one Redis subscription per process, ``app.dealers.answers``) ends the fan-out's wait as
    soon as every dealer asked has answered, not at the 3 s deadline."""
    settings = Settings(
        database_url=own_postgres_url,
        redis_url=redis_url,
        log_level="CRITICAL",
        dealers=DealerSettings(deadline_ms=3000, breaker_failures=1000),
        ml=MlSettings(min_dealers=3),
    )
    dealers = make_dealers(3, seed=8, modes=["callback"] * 3)
    for d in dealers:
        d.p_answer, d.latency_ms, d.max_size = 1.0, 20.0, 1000.0
    dealer_port, desk_port = free_port(), free_port()
    key = asyncio.run(_setup(settings, dealers, f"http://127.0.0.1:{dealer_port}"))
    desk = f"http://127.0.0.1:{desk_port}"

    async def one(client: httpx.AsyncClient) -> tuple[float, httpx.Response]:
        started = time.monotonic()
        resp = await client.post("/v1/rfqs", json=call_spread(side="two_way"))
        return time.monotonic() - started, resp

    async def burst(n: int) -> list[tuple[float, httpx.Response]]:
        async with httpx.AsyncClient(
            base_url=desk, headers={"Authorization": f"Bearer {key}"}, timeout=15
        ) as client:
            return await asyncio.gather(*(one(client) for _ in range(n)))

    with (
        serve(create_dealers_app(dealers, desk), dealer_port),
        serve(create_app(settings), desk_port),
    ):
        for elapsed, resp in asyncio.run(burst(8)) + asyncio.run(burst(8)):
            assert resp.status_code == 201, resp.text
            rfq = resp.json()
            asked = [r for r in rfq["dealer_requests"] if r["outcome"] != "skipped"]
            assert asked
            assert all(r["outcome"] == "quoted" for r in asked)
            assert elapsed < 2.0  # the deadline is 3 s
