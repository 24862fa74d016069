"""A worker killed mid-plan, and a new one on the same database and venues, finish the plan
with no child order sent twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Side
from app.events import unit_of_work
from app.execution.config import ExecutionSettings
from app.execution.planning import PlanState
from app.execution.repository import ExecutionRepository
from app.execution.service import ExecutionWorker, plan_residual
from app.execution.venues import (
    InstrumentReference,
    OrderRequest,
    SimulatedVenue,
    StaticReference,
    VenueOrder,
    build_simulated_venues,
)
from tests.execution.conftest import LEG_GREEKS, SPOT, make_rfq
from tests.execution.sim import CALL, CALL_HIGH, T0, VirtualClock, Wrapped

RESIDUAL = Decimal(60)
SETTINGS = ExecutionSettings(
    sim_sleep_latency=False, horizon_s=300, n_slices=6, delta_band_coins={"BTC": 50.0}
)
REFS = StaticReference(
    {
        CALL: InstrumentReference(LEG_GREEKS[0]["price_usd"] / SPOT, 2e-5),
        CALL_HIGH: InstrumentReference(LEG_GREEKS[1]["price_usd"] / SPOT, 1e-5),
    }
)


class Killer(Wrapped):
    """Wraps a venue; at its ``at``-th order the worker is killed ``when`` ("before" the venue
    gets the order, or "after" it traded but before the worker hears back)."""

    def __init__(self, inner: SimulatedVenue, when: str, at: int) -> None:
        super().__init__(inner)
        self.when, self.at = when, at
        self.calls = 0
        self.reached = asyncio.Event()

    async def place(self, order: OrderRequest) -> VenueOrder:
        self.calls += 1
        if self.calls == self.at:
            if self.when == "after":
                await self.inner.place(order)
            self.reached.set()
            await asyncio.Event().wait()  # the process dies here
        return await self.inner.place(order)


async def new_plan(maker: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    async with unit_of_work(maker) as session:
        rfq, quote = await make_rfq(session, residual=RESIDUAL)
        plan = await plan_residual(session, rfq, quote, Side.BUY, RESIDUAL, T0, settings=SETTINGS)
        return plan.id


async def load(maker: async_sessionmaker[AsyncSession], plan_id: uuid.UUID) -> PlanState:
    async with unit_of_work(maker) as session:
        state = await ExecutionRepository(session).state(plan_id)
    assert state is not None
    return state


async def run_until_killed(worker: ExecutionWorker, killer: Killer, clock: VirtualClock) -> None:
    for _ in range(20):
        task = asyncio.create_task(worker.step(clock()))
        reached = asyncio.create_task(killer.reached.wait())
        await asyncio.wait({task, reached}, return_when=asyncio.FIRST_COMPLETED)
        reached.cancel()
        if killer.reached.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        await task
        clock.advance(SETTINGS.horizon_s / SETTINGS.n_slices)
    raise AssertionError("the kill point was never reached")


@pytest.mark.parametrize(
    ("when", "at", "downtime_s"),
    [("after", 3, 0.0), ("before", 3, 0.0), ("before", 2, 120.0), ("after", 1, 400.0)],
)
async def test_killed_mid_plan_and_restarted(
    sessionmaker: async_sessionmaker[AsyncSession], when: str, at: int, downtime_s: float
) -> None:
    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    plan_id = await new_plan(sessionmaker)
    killer = Killer(venues[0], when, at)
    first = ExecutionWorker(sessionmaker, [killer, *venues[1:]], SETTINGS, clock)
    await run_until_killed(first, killer, clock)
    del first  # its memory is gone; the database and the venues remain

    clock.advance(downtime_s)
    second = ExecutionWorker(sessionmaker, venues, SETTINGS, clock)
    for _ in range(40):
        await second.step(clock())
        state = await load(sessionmaker, plan_id)
        if state.state != "working":
            break
        clock.advance(SETTINGS.horizon_s / SETTINGS.n_slices)
    assert state.state == "completed"

    traded: dict[str, Decimal] = defaultdict(Decimal)
    for venue in venues:
        for cid, order in venue.orders.items():
            assert venue.executions[cid] <= 1
            assert venue.place_calls[cid] == 1  # recovery asks before it resends
            traded[order.instrument] += order.filled_quantity
    assert traded == {CALL: RESIDUAL, CALL_HIGH: RESIDUAL}
    stored = {c.client_order_id: c for c in state.children}
    at_venues = {cid: o for v in venues for cid, o in v.orders.items()}
    assert set(at_venues) <= set(stored)
    for cid, child in stored.items():
        assert cid.startswith(f"{plan_id}:")
        _, slice_no, _, venue_name = cid.split(":")
        assert (int(slice_no), venue_name) == (child.slice_index, child.venue)
        assert child.state in ("filled", "partially_filled", "cancelled", "rejected")
        sent = at_venues.get(cid)
        assert child.filled_quantity == (sent.filled_quantity if sent else 0)
    assert state.filled() == [RESIDUAL, RESIDUAL]
