"""The worker on simulated venues, in memory: packages worked in units within the delta band,
shortfalls re-solved and carried, missed slices, failed sends, extra slices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.execution.config import VenueSettings
from app.execution.planning import LegSpec, PlanState
from app.execution.venues import InstrumentReference, OrderRequest, Venue, VenueOrder
from app.execution.worker import ExecutionWorker
from app.quant.scheduling import legging_delta, legging_headroom
from tests.execution.sim import CALL, CALL_HIGH, Study, Wrapped, study_settings

REFS = {CALL: InstrumentReference(0.04, 2e-5), CALL_HIGH: InstrumentReference(0.012, 1e-5)}
SPREAD = [
    LegSpec(CALL, 1, "buy", 0.04, 0.36, 2e-5),
    LegSpec(CALL_HIGH, 1, "sell", 0.012, 0.14, 1e-5),
]


def legging(state: PlanState) -> float:
    legs = state.legs
    return legging_delta(
        [float(f) for f in state.filled()],
        [leg.ratio for leg in legs],
        [leg.sign * leg.delta for leg in legs],
    )


async def run_checking_band(study: Study, plan: PlanState, band: float) -> PlanState:
    worker = ExecutionWorker(None, study.venues, study.settings, study.clock, store=study.store)
    for _ in range(100):
        await worker.step(study.clock())
        state = study.store.plans[plan.id]
        assert abs(legging(state)) <= band + 1e-9
        if state.state != "working":
            return state
        study.clock.advance(plan.slice_s)
    raise AssertionError("plan did not end")


class TestPackages:
    async def test_a_spread_is_worked_in_units(self) -> None:
        settings = study_settings(delta_band_coins={"BTC": 2.0})
        study = Study(settings, SPREAD, Decimal(60), seed=1, references=REFS)
        state = await run_checking_band(study, study.plan(), 2.0)
        assert state.state == "completed"
        assert state.filled() == [Decimal(60), Decimal(60)]
        by_leg = {0: Decimal(0), 1: Decimal(0)}
        for c in state.children:
            by_leg[c.leg] += c.filled_quantity
            assert c.side == ("buy" if c.leg == 0 else "sell")
        assert by_leg == {0: Decimal(60), 1: Decimal(60)}

    async def test_a_leg_no_venue_fills_holds_the_other_within_the_band(self) -> None:
        band = 2.0
        settings = study_settings(delta_band_coins={"BTC": band}, max_extra_slices=2)
        refs = {CALL: REFS[CALL]}  # the short leg is listed nowhere
        study = Study(settings, SPREAD, Decimal(60), seed=1, references=refs)
        state = await run_checking_band(study, study.plan(), band)
        assert state.state == "incomplete"
        head = legging_headroom([0.36, -0.14], band)
        assert float(state.filled()[0]) <= head + 1e-9
        assert state.filled()[1] == 0
        assert len(state.schedule) == 12  # two extra slices tried
        assert any(n["leg"] == 1 for e in state.schedule for n in e["notes"])


class TestShortfalls:
    async def test_thin_books_carry_the_rest_and_re_solve(self) -> None:
        thin = [VenueSettings(name="thin", depth_contracts=8.0, book_width_coin=0.002)]
        settings = study_settings(venues=thin, max_extra_slices=30)
        study = Study(settings, SPREAD[:1], Decimal(100), seed=2, references=REFS)
        state = await study.run(study.plan())
        assert state.state == "completed"
        assert state.filled() == [Decimal(100)]
        assert state.params["resolves"] > 0
        assert any(n["reason"] == "depth" for e in state.schedule for n in e["notes"])
        assert len(state.schedule) > 10  # needed slices after the horizon

    async def test_slices_missed_while_away_are_re_solved_over_the_rest(self) -> None:
        study = Study(study_settings(), SPREAD[:1], Decimal(100), seed=3, references=REFS)
        plan = study.plan()
        worker = ExecutionWorker(None, study.venues, study.settings, study.clock, store=study.store)
        await worker.step(study.clock())
        study.clock.advance(plan.slice_s * 4)  # slices 2..5 due at once
        await worker.step(study.clock())
        state = study.store.plans[plan.id]
        assert [e["state"] for e in state.schedule[:5]] == [
            "done",
            "missed",
            "missed",
            "missed",
            "done",
        ]
        assert state.params["resolves"] == 1
        done = await study.run(state)
        assert done.filled() == [Decimal(100)]

    async def test_a_send_that_fails_is_sent_again_and_trades_once(self) -> None:
        study = Study(study_settings(), SPREAD[:1], Decimal(20), seed=4, references=REFS)
        flaky = Flaky(study.venues[0])
        venues: list[Venue] = [flaky, *study.venues[1:]]
        plan = study.plan()
        worker = ExecutionWorker(None, venues, study.settings, study.clock, store=study.store)
        await worker.step(study.clock())
        state = study.store.plans[plan.id]
        assert [c.state for c in state.children if c.venue == flaky.info.name] == ["new"]
        study.clock.advance(1.0)
        await worker.step(study.clock())  # asks the venue, which never saw it, and resends
        state = study.store.plans[plan.id]
        cid = next(c.client_order_id for c in state.children if c.venue == flaky.info.name)
        assert study.venues[0].place_calls[cid] == 1
        assert study.venues[0].executions[cid] == 1

    async def test_disabled_sends_nothing(self) -> None:
        study = Study(study_settings(enabled=False), SPREAD, Decimal(10), seed=1, references=REFS)
        plan = study.plan()
        worker = ExecutionWorker(None, study.venues, study.settings, study.clock, store=study.store)
        assert await worker.step(study.clock()) == 0
        assert study.store.plans[plan.id].children == []


class Flaky(Wrapped):
    """A venue whose first place() fails before reaching it (a network error)."""

    failed = False

    async def place(self, order: OrderRequest) -> VenueOrder:
        if not self.failed:
            self.failed = True
            raise ConnectionError("venue unreachable")
        return await self.inner.place(order)


def test_worker_needs_a_store() -> None:
    with pytest.raises(ValueError, match="store"):
        ExecutionWorker(None, [], study_settings())
