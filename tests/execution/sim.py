"""Helpers of the execution tests: a virtual clock, plans in memory, a whole plan worked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.execution.config import ExecutionSettings
from app.execution.planning import LegSpec, PlanState, implementation_shortfall, new_plan
from app.execution.store import MemoryPlanStore
from app.execution.venues import (
    BookSnapshot,
    InstrumentReference,
    OrderRequest,
    SimulatedMarket,
    SimulatedVenue,
    StaticReference,
    VenueFill,
    VenueInfo,
    VenueOrder,
    build_simulated_venues,
)
from app.execution.worker import ExecutionWorker

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CALL = "BTC-25DEC26-70000-C"
CALL_HIGH = "BTC-25DEC26-80000-C"


@dataclass
class VirtualClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def study_settings(**over: object) -> ExecutionSettings:
    """Venues and model of the shortfall study (no latency sleeping, a virtual clock)."""
    base: dict[str, object] = {
        "horizon_s": 300.0,
        "n_slices": 10,
        "risk_aversion_per_coin": 5.0,
        "expected_drift_coin_per_s": 2e-6,
        "permanent_impact_coin_per_contract": 2e-6,
        "sim_sleep_latency": False,
        "sim_seed": 1,
    }
    base.update(over)
    return ExecutionSettings.model_validate(base)


@dataclass
class Study:
    """One plan worked on fresh simulated venues, in memory."""

    settings: ExecutionSettings
    legs: list[LegSpec]
    quantity: Decimal
    seed: int
    drift: dict[str, float] = field(default_factory=dict)
    references: dict[str, InstrumentReference] = field(default_factory=dict)
    clock: VirtualClock = field(default_factory=VirtualClock)

    def __post_init__(self) -> None:
        self.market, self.venues = build_simulated_venues(
            self.settings,
            StaticReference(self.references),
            self.clock,
            drift=self.drift,
            seed=self.seed,
        )
        self.store = MemoryPlanStore()

    def plan(self, schedule_override: list[float] | None = None) -> PlanState:
        params, schedule = new_plan(
            self.legs, self.quantity, self.clock(), self.settings, underlying="BTC"
        )
        if schedule_override is not None:  # cumulative targets, e.g. TWAP's
            for e, target in zip(schedule, schedule_override, strict=True):
                e["target_units"] = target
            params["risk_aversion_per_coin"] = 0.0
        plan = PlanState(
            id=uuid.uuid4(),
            rfq_id=uuid.uuid4(),
            state="working",
            side="buy",
            quantity=self.quantity,
            arrival_price_coin=None,
            params=params,
            schedule=schedule,
            created_at=self.clock(),
        )
        self.store.add(plan)
        return plan

    async def run(self, plan: PlanState, max_steps: int = 200) -> PlanState:
        worker = ExecutionWorker(None, self.venues, self.settings, self.clock, store=self.store)
        for _ in range(max_steps):
            await worker.step(self.clock())
            state = self.store.plans[plan.id]
            if state.state != "working":
                return state
            self.clock.advance(plan.slice_s)
        raise AssertionError("plan did not finish")


class Wrapped:
    """A venue passing everything to a simulated one; tests override ``place``."""

    def __init__(self, inner: SimulatedVenue) -> None:
        self.inner = inner

    @property
    def info(self) -> VenueInfo:
        return self.inner.info

    async def place(self, order: OrderRequest) -> VenueOrder:
        return await self.inner.place(order)

    async def cancel(self, client_order_id: str) -> VenueOrder | None:
        return await self.inner.cancel(client_order_id)

    async def book(self, instrument: str) -> BookSnapshot:
        return await self.inner.book(instrument)

    async def order(self, client_order_id: str) -> VenueOrder | None:
        return await self.inner.order(client_order_id)

    async def fills(self, client_order_id: str) -> tuple[VenueFill, ...]:
        return await self.inner.fills(client_order_id)


def shortfall_of(state: PlanState) -> float:
    cost = implementation_shortfall(state).cost_coin
    assert cost is not None
    return cost


__all__ = [
    "CALL",
    "CALL_HIGH",
    "T0",
    "SimulatedMarket",
    "SimulatedVenue",
    "Study",
    "VirtualClock",
    "Wrapped",
    "shortfall_of",
    "study_settings",
]
