"""Executing the residual on venues takes its risk back off the desk's inventory (SQLite and PG)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Side
from app.execution.config import ExecutionSettings
from app.execution.service import ExecutionWorker, get_plan, plan_residual
from app.execution.venues import build_simulated_venues
from app.pricing.desk import DeskRiskRepository
from app.pricing.fills import desk_risk_change
from tests.execution.conftest import LEG_GREEKS, SPOT, make_rfq
from tests.execution.sim import T0, VirtualClock
from tests.execution.test_restart import REFS

SETTINGS = ExecutionSettings(sim_sleep_latency=False, horizon_s=120, n_slices=4)
# the package's factors per 250 units (the quote's greeks), as pricing stores them
FACTORS = {"BTC:delta": 40.0, "BTC:vega:2026-02-04": 9_000.0}


async def _residual_on_the_desk(
    session: AsyncSession, residual: Decimal, **greeks: object
) -> tuple[DeskRiskRepository, uuid.UUID]:
    """What the award does when dealers leave ``residual`` of the client's 250 uncovered: the
    residual's risk onto the inventory, and its plan (committed). The desk and the plan's id."""
    rfq, quote = await make_rfq(
        session,
        residual=residual,
        greeks={"spot": SPOT, "legs": LEG_GREEKS, "factors": FACTORS} | greeks,
    )
    desk = DeskRiskRepository(session)
    await desk.add(desk_risk_change(quote, rfq, Side.BUY, residual))
    plan = await plan_residual(session, rfq, quote, Side.BUY, residual, T0, settings=SETTINGS)
    assert plan is not None
    await session.commit()
    return desk, plan.id


async def _work(worker: ExecutionWorker, clock: VirtualClock, steps: int) -> None:
    for _ in range(steps):
        await worker.step(clock())
        clock.advance(30)


async def test_venue_fills_release_the_residual_risk_once(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    desk, _ = await _residual_on_the_desk(session, Decimal(30))
    before = await desk.inventory("BTC")
    assert before["BTC:delta"] == pytest.approx(-40.0 * 30 / 250)

    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    worker = ExecutionWorker(sessionmaker, venues, SETTINGS, clock)
    await _work(worker, clock, 1)
    partway = await desk.inventory("BTC")
    # one slice done: some, not all, of the short residual bought back
    assert before["BTC:delta"] < partway["BTC:delta"] < 0.0

    await _work(worker, clock, 6)  # the remaining slices, then steps with nothing left to do
    after = await desk.inventory("BTC")
    assert after["BTC:delta"] == pytest.approx(0.0, abs=1e-9)
    assert after["BTC:vega:2026-02-04"] == pytest.approx(0.0, abs=1e-6)


async def test_a_hedged_residual_executed_leaves_the_clients_hedge_coins_on_the_desk(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """ "vs H": the client bought the call spread and sold the desk its delta in coins, so the
    fill moves no delta; venues sell the desk the options alone, whose delta then shows."""
    desk, _ = await _residual_on_the_desk(
        session,
        Decimal(30),
        factors={"BTC:delta": 0.0, "BTC:vega:2026-02-04": 9_000.0},
        hedge_delta_coins=-40.0,  # the buyer's 250 units are long 40 coins of delta
    )
    assert (await desk.inventory("BTC")).get("BTC:delta", 0.0) == 0.0

    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    await _work(ExecutionWorker(sessionmaker, venues, SETTINGS, clock), clock, 7)
    after = await desk.inventory("BTC")
    assert after["BTC:delta"] == pytest.approx(40.0 * 30 / 250)  # the hedge coins bought
    assert after["BTC:vega:2026-02-04"] == pytest.approx(0.0, abs=1e-6)


async def test_a_residual_of_part_lots_completes_and_the_part_lot_stays_on_the_desk(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    desk, plan_id = await _residual_on_the_desk(session, Decimal("30.05"))  # 0.1 lots
    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    await _work(ExecutionWorker(sessionmaker, venues, SETTINGS, clock), clock, 7)
    async with sessionmaker() as s:
        done = await get_plan(s, plan_id)
    assert done.state == "completed"
    assert done.filled() == [Decimal("30.0"), Decimal("30.0")]
    after = await desk.inventory("BTC")
    assert after["BTC:delta"] == pytest.approx(-40.0 * 0.05 / 250)  # the 0.05 kept


class _InFlight:
    """A venue as one worker sees it: its first ``place`` of each order stays in flight until
    ``gate`` opens (latency); everything else goes straight through."""

    def __init__(self, inner: Any, gate: asyncio.Event, sending: asyncio.Event) -> None:
        self.inner, self.gate, self.sending = inner, gate, sending
        self.seen: set[str] = set()

    @property
    def info(self) -> Any:
        return self.inner.info

    async def place(self, order: Any) -> Any:
        if order.client_order_id not in self.seen:
            self.seen.add(order.client_order_id)
            self.sending.set()
            await self.gate.wait()
        return await self.inner.place(order)

    def __getattr__(self, name: str) -> Any:  # cancel, book, order, fills
        return getattr(self.inner, name)


async def test_two_workers_on_one_plan_release_each_unit_once(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Each replica runs a worker: one that saves an older copy of the plan after the other
    released units must not write the released count back (the units would go twice)."""
    desk, _ = await _residual_on_the_desk(session, Decimal(30))
    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    gate, sending = asyncio.Event(), asyncio.Event()
    slow = ExecutionWorker(
        sessionmaker, [_InFlight(v, gate, sending) for v in venues], SETTINGS, clock
    )
    other = ExecutionWorker(sessionmaker, venues, SETTINGS, clock)
    first = asyncio.create_task(slow.step(clock()))  # stores slice 1's orders, sends them
    await sending.wait()
    await other.step(clock())  # recovers them, accounts slice 1, releases it, saves
    gate.set()
    await first  # its save, from the copy it loaded before, comes last
    clock.advance(30)
    await _work(other, clock, 8)  # the rest of the plan
    after = await desk.inventory("BTC")
    assert after["BTC:delta"] == pytest.approx(0.0, abs=1e-9)
    assert after["BTC:vega:2026-02-04"] == pytest.approx(0.0, abs=1e-6)
