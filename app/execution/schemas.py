"""Response bodies of the executions API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.execution.planning import PlanState, implementation_shortfall
from app.schemas import Num, ReadModel


class ExecutionLeg(ReadModel):
    index: int
    instrument: str
    ratio: int
    side: str = Field(description="The desk's side on the venues")
    target: Num = Field(description="Contracts to trade (ratio × plan quantity)")
    filled: Num
    avg_price_coin: float | None
    arrival_price_coin: float | None
    shortfall_coin: float | None = Field(description="side × Σ q(price − arrival), fees excluded")


class ExecutionSlice(ReadModel):
    slice: int
    due_at: datetime
    state: str = Field(description="pending, sending, done or missed")
    planned_units: float = Field(description="Units this slice trades (current schedule)")
    target_units: float = Field(description="Cumulative units due by the end of this slice")
    done_units: float | None = Field(description="Complete units done when it was accounted")
    notes: list[dict[str, Any]] = Field(description="What the venues could not absorb")


class ChildOrderRead(ReadModel):
    client_order_id: str
    slice_index: int
    leg: int
    venue: str
    instrument: str
    side: str
    quantity: Num
    limit_price: Num | None
    state: str
    filled_quantity: Num
    avg_price: Num | None
    sent_at: datetime | None


class ExecutionFill(ReadModel):
    trade_id: str
    client_order_id: str
    slice: int
    leg: int
    venue: str
    quantity: Num
    price: Num
    fee: Num
    at: datetime


class ShortfallRead(ReadModel):
    """Implementation shortfall against the arrival prices, in coin (positive: a cost)."""

    units_done: float
    units_left: float
    cost_coin: float | None = Field(description="Σ legs' shortfall + fees")
    fees_coin: float
    cost_per_unit_coin: float | None
    cost_usd: float | None = Field(description="cost_coin at the quote's spot")
    predicted_coin: float | None = Field(description="The schedule's expected cost (model)")
    predicted_std_coin: float | None


class ExecutionRead(ReadModel):
    """A residual plan: its schedule, child orders, fills and implementation shortfall."""

    id: uuid.UUID
    rfq_id: uuid.UUID
    state: str = Field(description="working, completed or incomplete")
    side: str = Field(description="The desk's side of the package on the venues")
    quantity: Num = Field(description="Package units to trade (the residual)")
    arrival_price_coin: Num | None = Field(description="Package price per unit at arrival")
    created_at: datetime | None
    horizon_s: float
    slice_s: float
    risk_aversion_per_coin: float
    delta_band_coins: float
    resolves: int = Field(description="Times the schedule was re-solved after a shortfall")
    model: dict[str, float] = Field(description="Almgren–Chriss parameters per package unit")
    legs: list[ExecutionLeg]
    schedule: list[ExecutionSlice]
    child_orders: list[ChildOrderRead]
    fills: list[ExecutionFill]
    shortfall: ShortfallRead

    @classmethod
    def of(cls, plan: PlanState) -> ExecutionRead:
        s = implementation_shortfall(plan)
        p = plan.params
        spot = p.get("spot_usd")
        return cls(
            id=plan.id,
            rfq_id=plan.rfq_id,
            state=plan.state,
            side=plan.side,
            quantity=plan.quantity,
            arrival_price_coin=plan.arrival_price_coin,
            created_at=plan.created_at,
            horizon_s=float(p["model"]["horizon_s"]),
            slice_s=plan.slice_s,
            risk_aversion_per_coin=float(p["risk_aversion_per_coin"]),
            delta_band_coins=float(p["delta_band_coins"]),
            resolves=int(p.get("resolves", 0)),
            model={k: float(v) for k, v in p["model"].items()},
            legs=[
                ExecutionLeg(
                    index=i,
                    instrument=leg.instrument,
                    ratio=spec.ratio,
                    side=leg.side,
                    target=leg.target,
                    filled=leg.filled,
                    avg_price_coin=leg.avg_price_coin,
                    arrival_price_coin=leg.arrival_price_coin,
                    shortfall_coin=leg.shortfall_coin,
                )
                for i, (leg, spec) in enumerate(zip(s.legs, plan.legs, strict=True))
            ],
            schedule=[ExecutionSlice.model_validate(e) for e in plan.schedule],
            child_orders=[
                ChildOrderRead(
                    client_order_id=c.client_order_id,
                    slice_index=c.slice_index,
                    leg=c.leg,
                    venue=c.venue,
                    instrument=c.instrument,
                    side=c.side,
                    quantity=c.quantity,
                    limit_price=c.limit_price,
                    state=c.state,
                    filled_quantity=c.filled_quantity,
                    avg_price=c.avg_price,
                    sent_at=c.sent_at,
                )
                for c in plan.children
            ],
            fills=[ExecutionFill.model_validate(f) for f in plan.fills()],
            shortfall=ShortfallRead(
                units_done=s.units_done,
                units_left=s.units_left,
                cost_coin=s.cost_coin,
                fees_coin=s.fees_coin,
                cost_per_unit_coin=s.cost_per_unit_coin,
                cost_usd=s.cost_coin * spot if s.cost_coin is not None and spot else None,
                predicted_coin=s.predicted_coin,
                predicted_std_coin=s.predicted_std_coin,
            ),
        )
