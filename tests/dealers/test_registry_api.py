"""The dealer registry over HTTP: a dealer is registered only for what the desk trades."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.models import Dealer
from tests.conftest import KeyMaker


def dealer(**over: object) -> dict:
    return {
        "name": "d-reg",
        "endpoint_url": "http://127.0.0.1:1/q",
        "underlyings": ["BTC"],
        "webhook_secret": "s" * 32,
    } | over


async def test_an_underlying_the_desk_does_not_trade_is_refused(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    headers = await auth(Role.ADMIN)
    before = await session.scalar(select(func.count()).select_from(Dealer))
    resp = await client.post(
        "/v1/dealers", json=dealer(underlyings=["BTC", "DOGE"]), headers=headers
    )
    assert resp.status_code == 422
    assert resp.json()["field"] == "underlyings"
    assert "DOGE" in resp.json()["detail"]
    assert await session.scalar(select(func.count()).select_from(Dealer)) == before
    made = await client.post("/v1/dealers", json=dealer(underlyings=["eth"]), headers=headers)
    assert made.status_code == 201, made.text
    patch = await client.patch(
        f"/v1/dealers/{made.json()['id']}", json={"underlyings": ["SOL"]}, headers=headers
    )
    assert patch.status_code == 422
    assert patch.json()["field"] == "underlyings"
