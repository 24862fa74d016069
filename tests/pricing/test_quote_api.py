"""POST /v1/rfqs answers with a firm quote; accepting fills it and moves the desk's risk."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.models import ClientQuote, Fill, MarketSnapshot
from tests.conftest import KeyMaker
from tests.factories import call_spread, expiry


def straddle(**over):
    body = {
        "underlying": "BTC",
        "structure": "straddle",
        "strikes": [65000],
        "expiries": [expiry().isoformat()],
        "side": "two_way",
        "quantity": 100,
    }
    return body | over


async def test_rfq_is_quoted_with_its_snapshot(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    resp = await client.post(
        "/v1/rfqs", json=call_spread(side="two_way"), headers=await auth(Role.SALES)
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["state"] == "quoted"
    assert [e["to_state"] for e in body["events"]] == ["new", "quoting", "quoted"]
    (q,) = body["quotes"]
    assert q["bid_coin"] < q["theo_coin"] < q["ask_coin"]
    assert q["valid_until"] <= body["expires_at"]
    assert q["explanation"]["ask"]["markup_usd"] > 0
    snap = await session.get(MarketSnapshot, uuid.UUID(q["snapshot_id"]))
    assert snap is not None
    assert snap.underlying == "BTC"
    assert snap.data["slices"]


async def test_accept_fills_at_the_offer_and_moves_desk_risk(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    headers = await auth(Role.SALES)
    before = (await client.get("/v1/desk/risk", headers=headers)).json()
    rfq = (await client.post("/v1/rfqs", json=straddle(side="buy"), headers=headers)).json()
    ask = rfq["quotes"][0]["ask_coin"]
    resp = await client.post(f"/v1/rfqs/{rfq['id']}/accept", json={"side": "buy"}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "filled"
    assert resp.json()["filled_quantity"] == 100
    fills = (await session.scalars(select(Fill).where(Fill.rfq_id == uuid.UUID(rfq["id"])))).all()
    assert [(f.side, float(f.quantity), float(f.price_coin)) for f in fills] == [
        ("sell", 100.0, ask)
    ]
    after = (await client.get("/v1/desk/risk", headers=headers)).json()
    # the desk sold a straddle: it is shorter vega than before
    assert (
        after["underlyings"]["BTC"]["vega_usd_per_vol_point"]
        < before["underlyings"]["BTC"]["vega_usd_per_vol_point"]
    )


async def test_accept_on_the_wrong_side_is_refused(
    client: httpx.AsyncClient, auth: KeyMaker
) -> None:
    headers = await auth(Role.SALES)
    rfq = (await client.post("/v1/rfqs", json=straddle(side="buy"), headers=headers)).json()
    resp = await client.post(f"/v1/rfqs/{rfq['id']}/accept", json={"side": "sell"}, headers=headers)
    assert resp.status_code == 409
    assert resp.json()["field"] == "side"


async def test_pass_closes_the_quote(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    headers = await auth(Role.SALES)
    rfq = (await client.post("/v1/rfqs", json=straddle(), headers=headers)).json()
    resp = await client.post(f"/v1/rfqs/{rfq['id']}/pass", headers=headers)
    assert resp.json()["state"] == "passed"
    status = await session.scalar(
        select(ClientQuote.status).where(ClientQuote.rfq_id == uuid.UUID(rfq["id"]))
    )
    assert status == "passed"


async def test_risk_limit_breach_is_a_409_and_stores_nothing(
    app, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    app.state.rfqdesk.settings.pricing.max_abs_vega_usd["BTC"] = 1.0
    try:
        before = await session.scalar(select(func.count()).select_from(ClientQuote))
        resp = await client.post(
            "/v1/rfqs", json=straddle(side="sell"), headers=await auth(Role.SALES)
        )
        assert resp.status_code == 409
        assert resp.json()["error"] == "risk_limit"
        assert "vega" in resp.json()["detail"]
        assert await session.scalar(select(func.count()).select_from(ClientQuote)) == before
    finally:
        app.state.rfqdesk.settings.pricing.max_abs_vega_usd["BTC"] = 2_000_000.0


async def test_a_partial_accept_says_what_was_left(
    client: httpx.AsyncClient, auth: KeyMaker
) -> None:
    headers = await auth(Role.SALES)
    rfq = (await client.post("/v1/rfqs", json=straddle(side="buy"), headers=headers)).json()
    resp = await client.post(
        f"/v1/rfqs/{rfq['id']}/accept", json={"side": "buy", "quantity": 40}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert (done["state"], done["filled_quantity"]) == ("filled", 40)
    assert done["events"][-1]["reason"] == "filled 40 of 40 accepted (the RFQ was for 100)"


async def test_accepting_a_final_rfq_names_its_state(
    client: httpx.AsyncClient, auth: KeyMaker
) -> None:
    headers = await auth(Role.SALES)
    rfq = (await client.post("/v1/rfqs", json=straddle(side="buy"), headers=headers)).json()
    assert (await client.post(f"/v1/rfqs/{rfq['id']}/pass", headers=headers)).status_code == 200
    again = await client.post(f"/v1/rfqs/{rfq['id']}/accept", json={"side": "buy"}, headers=headers)
    assert again.status_code == 409
    assert (again.json()["error"], again.json()["field"]) == ("illegal_transition", "state")
