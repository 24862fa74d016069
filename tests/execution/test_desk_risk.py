"""Executing the residual on venues takes its risk back off the desk's inventory (SQLite and PG)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Side
from app.execution.config import ExecutionSettings
from app.execution.service import ExecutionWorker, plan_residual
from app.execution.venues import build_simulated_venues
from app.pricing.desk import DeskRiskRepository
from app.pricing.fills import desk_risk_change
from tests.execution.conftest import LEG_GREEKS, SPOT, make_rfq
from tests.execution.sim import T0, VirtualClock
from tests.execution.test_restart import REFS

SETTINGS = ExecutionSettings(sim_sleep_latency=False, horizon_s=120, n_slices=4)
# the package's factors per 250 units (the quote's greeks), as pricing stores them
FACTORS = {"BTC:delta": 40.0, "BTC:vega:2026-02-04": 9_000.0}


async def test_venue_fills_release_the_residual_risk_once(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rfq, quote = await make_rfq(
        session,
        residual=Decimal(30),
        greeks={"spot": SPOT, "legs": LEG_GREEKS, "factors": FACTORS},
    )
    # what the award does when dealers leave 30 of the client's 250 uncovered
    desk = DeskRiskRepository(session)
    await desk.add(desk_risk_change(quote, rfq, Side.BUY, Decimal(30)))
    await plan_residual(session, rfq, quote, Side.BUY, Decimal(30), T0, settings=SETTINGS)
    await session.commit()
    before = await desk.inventory("BTC")
    assert before["BTC:delta"] == pytest.approx(-40.0 * 30 / 250)

    clock = VirtualClock()
    _, venues = build_simulated_venues(SETTINGS, REFS, clock)
    worker = ExecutionWorker(sessionmaker, venues, SETTINGS, clock)
    await worker.step(clock())
    clock.advance(30)
    partway = await desk.inventory("BTC")
    # one slice done: some, not all, of the short residual bought back
    assert before["BTC:delta"] < partway["BTC:delta"] < 0.0

    for _ in range(6):  # the remaining slices, then steps with nothing left to do
        await worker.step(clock())
        clock.advance(30)
    after = await desk.inventory("BTC")
    assert after["BTC:delta"] == pytest.approx(0.0, abs=1e-9)
    assert after["BTC:vega:2026-02-04"] == pytest.approx(0.0, abs=1e-6)
