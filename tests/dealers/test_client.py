"""The dealer client's circuit breaker blames a dealer for its own failures only: not for a
timeout when the desk, late itself, left it too little time, and it does not ask a dealer at
all once the deadline has passed at the desk."""

from __future__ import annotations

import uuid

import httpx
import pytest

from app.dealers.client import FAIR_TIMEOUT_S, CircuitBreakers, DealerClient

DEALER = uuid.uuid4()
MESSAGE = {"type": "quote_request", "request_id": str(uuid.uuid4())}


def _client(transport: httpx.MockTransport) -> DealerClient:
    return DealerClient(httpx.AsyncClient(transport=transport), CircuitBreakers(1, 30.0))


def _times_out(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ReadTimeout("no answer", request=request)

    return httpx.MockTransport(handle)


async def test_a_timeout_with_a_fair_time_to_answer_opens_the_breaker() -> None:
    seen: list[httpx.Request] = []
    client = _client(_times_out(seen))
    result = await client.send(DEALER, "http://dealer/q", "s" * 32, MESSAGE, FAIR_TIMEOUT_S)
    assert result.status == "timeout"
    assert len(seen) == 1
    assert client.breakers.is_open(DEALER)


@pytest.mark.parametrize("left_s", [FAIR_TIMEOUT_S / 2, 0.02])
async def test_a_timeout_the_desks_lateness_caused_does_not_count(left_s: float) -> None:
    seen: list[httpx.Request] = []
    client = _client(_times_out(seen))
    result = await client.send(DEALER, "http://dealer/q", "s" * 32, MESSAGE, left_s)
    assert result.status == "timeout"
    assert len(seen) == 1
    assert not client.breakers.is_open(DEALER)


@pytest.mark.parametrize("left_s", [0.0, 0.005])
async def test_no_time_left_means_no_request_and_no_blame(left_s: float) -> None:
    seen: list[httpx.Request] = []
    client = _client(_times_out(seen))
    result = await client.send(DEALER, "http://dealer/q", "s" * 32, MESSAGE, left_s)
    assert result.status == "not_sent"
    assert seen == []
    assert not client.breakers.is_open(DEALER)
