"""Hostile input: deep and oversized JSON, unicode, SQL-looking strings, arbitrary text fed to the
domain parsers. Never a 5xx, never a schema violation, nothing stored from a refused request."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.domain.errors import DomainError
from app.domain.instruments import Instrument, normalise_quantity, normalise_strike
from app.models import Dealer, Rfq, RfqLeg
from tests.conftest import KeyMaker
from tests.factories import call_spread

SQLISH = [
    "'; DROP TABLE rfq; --",
    "1 OR 1=1",
    '" OR ""="',
    "rfq; DELETE FROM rfq_leg",
    "%' --",
    "\\x00",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
]


async def _counts(session: AsyncSession) -> tuple[int, int]:
    rfqs = await session.scalar(select(func.count()).select_from(Rfq))
    legs = await session.scalar(select(func.count()).select_from(RfqLeg))
    return int(rfqs or 0), int(legs or 0)


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        json.dumps(call_spread(legs=[[[[[[[[[[]]]]]]]]]])).encode(),
        b"\xff\xfe\x00garbage",
        b'{"underlying": "BTC", "quantity": 1e999}',
        b'{"underlying": "BTC", "quantity": NaN}',
    ],
)
async def test_malformed_bodies_are_4xx_and_store_nothing(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession, payload: bytes
) -> None:
    before = await _counts(session)
    headers = await auth(Role.SALES) | {"content-type": "application/json"}
    resp = await client.post("/v1/rfqs", content=payload, headers=headers)
    assert 400 <= resp.status_code < 500, resp.text
    assert set(resp.json()) == {"error", "detail", "field"}
    assert await _counts(session) == before


async def test_oversized_body_is_413(client: httpx.AsyncClient, auth: KeyMaker) -> None:
    headers = await auth(Role.SALES) | {"content-type": "application/json"}
    resp = await client.post("/v1/rfqs", content=b" " * 70_000 + b"{}", headers=headers)
    assert resp.status_code == 413


@pytest.mark.parametrize("text", SQLISH)
async def test_sql_looking_strings_are_data(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession, text: str
) -> None:
    headers = await auth(Role.SALES)
    resp = await client.post("/v1/rfqs", json=call_spread(client=text), headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["client"] == text
    listed = await client.get(
        "/v1/rfqs", params={"client": text, "underlying": "BTC"}, headers=headers
    )
    assert listed.status_code == 200
    assert [i["client"] for i in listed.json()["items"]] == [text]
    nul = await client.get("/v1/rfqs", params={"client": "a\x00b"}, headers=headers)
    assert nul.status_code in (200, 422), nul.text
    for param in ({"cursor": text}, {"state": text}, {"since": text}):
        assert (await client.get("/v1/rfqs", params=param, headers=headers)).status_code == 422
    assert (await session.scalar(select(func.count()).select_from(Rfq))) >= 1


@pytest.mark.parametrize("name", ["Ünïcødé Capital 株式会社", "🚀 desk", "a\u202eb", "x\u0000y"])
async def test_unicode_round_trips_or_is_refused_cleanly(
    client: httpx.AsyncClient, auth: KeyMaker, name: str
) -> None:
    resp = await client.post(
        "/v1/rfqs", json=call_spread(client=name), headers=await auth(Role.SALES)
    )
    if "\u0000" in name:
        assert resp.status_code == 422, resp.text  # NUL: refused at the edge on every database
        assert resp.json()["field"] == "client"
    else:
        assert resp.status_code == 201, resp.text
        assert resp.json()["client"] == name


async def test_dealer_secret_never_reaches_the_logs(
    client: httpx.AsyncClient,
    auth: KeyMaker,
    capsys: pytest.CaptureFixture[str],
    session: AsyncSession,
) -> None:
    secret = "super-secret-webhook-value-123456"
    headers = await auth(Role.ADMIN)
    resp = await client.post(
        "/v1/dealers",
        json={
            "name": "leaky",
            "endpoint_url": "http://127.0.0.1:1/q",
            "underlyings": ["BTC"],
            "webhook_secret": secret,
        },
        headers=headers,
    )
    assert resp.status_code == 201
    assert secret not in resp.text
    await client.get("/v1/dealers", headers=headers)
    await client.post("/v1/rfqs", json=call_spread(), headers=await auth(Role.SALES))
    out = capsys.readouterr()
    key = headers["Authorization"].split()[1]
    assert secret not in out.out + out.err
    assert key not in out.out + out.err
    assert (
        await session.scalar(select(Dealer.webhook_secret).where(Dealer.name == "leaky"))
    ) == secret


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_instrument_parser_accepts_or_refuses_cleanly(text: str) -> None:
    try:
        inst = Instrument.parse(text)
    except DomainError as exc:
        field = exc.field
    else:
        field = "instrument"
        assert Instrument.parse(inst.name) == inst
    assert field == "instrument"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.sampled_from(["BTC", "ETH"]))
def test_number_normalisers_accept_or_refuse_cleanly(text: str, underlying: str) -> None:
    for fn in (lambda t: normalise_strike(t, underlying), normalise_quantity):
        try:
            value = fn(text)
        except DomainError:
            continue
        assert value.is_finite()
