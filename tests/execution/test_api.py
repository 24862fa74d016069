"""GET /v1/executions: plan, child orders, fills and shortfall (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Role
from app.domain.enums import Side
from app.execution.config import ExecutionSettings
from app.execution.endpoints import router
from app.execution.service import ExecutionWorker, plan_residual
from app.execution.venues import build_simulated_venues
from tests.conftest import KeyMaker
from tests.execution.conftest import make_rfq
from tests.execution.sim import T0, VirtualClock
from tests.execution.test_restart import REFS

SETTINGS = ExecutionSettings(sim_sleep_latency=False, horizon_s=120, n_slices=4)


@pytest.fixture
def mounted(app: FastAPI) -> FastAPI:
    """The router, until app.main mounts it."""
    if not any(getattr(r, "original_router", None) is router for r in app.routes):
        app.include_router(router)
    return app


async def worked_plan(
    session: AsyncSession, maker: async_sessionmaker[AsyncSession], slices: int
) -> tuple[uuid.UUID, uuid.UUID]:
    rfq, quote = await make_rfq(session, residual=Decimal(30))
    plan = await plan_residual(session, rfq, quote, Side.BUY, Decimal(30), T0, settings=SETTINGS)
    await session.commit()
    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    worker = ExecutionWorker(maker, venues, SETTINGS, clock)
    for _ in range(slices):
        await worker.step(clock())
        clock.advance(30)
    return plan.id, rfq.id


async def test_a_completed_plan(
    mounted: FastAPI,
    client: httpx.AsyncClient,
    auth: KeyMaker,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    plan_id, rfq_id = await worked_plan(session, sessionmaker, slices=4)
    res = await client.get(f"/v1/executions/{plan_id}", headers=await auth(Role.ANALYST))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["state"] == "completed"
    assert body["side"] == "buy"
    assert [leg["filled"] for leg in body["legs"]] == [30, 30]
    assert {c["state"] for c in body["child_orders"]} <= {"filled", "partially_filled"}
    assert sum(f["quantity"] for f in body["fills"] if f["leg"] == 0) == pytest.approx(30)
    assert all(c["client_order_id"].startswith(f"{plan_id}:") for c in body["child_orders"])
    assert [s["state"] for s in body["schedule"]] == ["done"] * 4
    shortfall = body["shortfall"]
    assert shortfall["units_done"] == pytest.approx(30)
    assert shortfall["units_left"] == pytest.approx(0)
    assert shortfall["fees_coin"] > 0
    assert shortfall["cost_coin"] is not None
    assert shortfall["cost_coin"] > 0
    assert shortfall["cost_usd"] == pytest.approx(shortfall["cost_coin"] * 65_000)
    assert shortfall["predicted_coin"] > 0
    listed = await client.get(
        "/v1/executions", params={"rfq_id": str(rfq_id)}, headers=await auth(Role.SALES)
    )
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [str(plan_id)]


async def test_a_plan_in_progress(
    mounted: FastAPI,
    client: httpx.AsyncClient,
    auth: KeyMaker,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    plan_id, _ = await worked_plan(session, sessionmaker, slices=1)
    body = (await client.get(f"/v1/executions/{plan_id}", headers=await auth(Role.SALES))).json()
    assert body["state"] == "working"
    assert body["schedule"][0]["state"] == "done"
    assert body["schedule"][1]["state"] == "pending"
    assert 0 < body["shortfall"]["units_done"] < 30


async def test_unknown_plan_and_roles(
    mounted: FastAPI, client: httpx.AsyncClient, auth: KeyMaker
) -> None:
    missing = await client.get(f"/v1/executions/{uuid.uuid4()}", headers=await auth(Role.SALES))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert (await client.get(f"/v1/executions/{uuid.uuid4()}")).status_code == 401
    bot = await client.get(f"/v1/executions/{uuid.uuid4()}", headers=await auth(Role.BOT))
    assert bot.status_code == 403
    empty = await client.get(
        "/v1/executions", params={"rfq_id": str(uuid.uuid4())}, headers=await auth(Role.SALES)
    )
    assert empty.json() == []
    bad = await client.get("/v1/executions", headers=await auth(Role.SALES))
    assert bad.status_code == 422
