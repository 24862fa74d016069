"""All SQL of residual execution: plans, child orders, the RFQ legs a plan is made from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.execution.planning import Child, PlanState, copy_json
from app.models import ChildOrder, ExecutionPlan, RfqLeg


class ExecutionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_plan(self, plan: ExecutionPlan) -> ExecutionPlan:
        self.session.add(plan)
        await self.session.flush()
        return plan

    async def get_plan(self, plan_id: uuid.UUID) -> ExecutionPlan | None:
        return await self.session.get(ExecutionPlan, plan_id)

    async def plans_for_rfq(self, rfq_id: uuid.UUID) -> Sequence[ExecutionPlan]:
        rows = await self.session.scalars(
            select(ExecutionPlan)
            .where(ExecutionPlan.rfq_id == rfq_id)
            .order_by(ExecutionPlan.created_at, ExecutionPlan.id)
        )
        return rows.all()

    async def working_plan_ids(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(ExecutionPlan.id)
            .where(ExecutionPlan.state == "working")
            .order_by(ExecutionPlan.created_at, ExecutionPlan.id)
        )
        return list(rows.all())

    async def children(self, plan_id: uuid.UUID) -> Sequence[ChildOrder]:
        rows = await self.session.scalars(
            select(ChildOrder)
            .where(ChildOrder.plan_id == plan_id)
            .order_by(ChildOrder.slice_index, ChildOrder.client_order_id)
        )
        return rows.all()

    async def children_by_id(self, client_order_ids: Sequence[str]) -> dict[str, ChildOrder]:
        if not client_order_ids:
            return {}
        rows = await self.session.scalars(
            select(ChildOrder).where(ChildOrder.client_order_id.in_(list(client_order_ids)))
        )
        return {c.client_order_id: c for c in rows.all()}

    async def legs(self, rfq_id: uuid.UUID) -> Sequence[RfqLeg]:
        rows = await self.session.scalars(
            select(RfqLeg).where(RfqLeg.rfq_id == rfq_id).order_by(RfqLeg.leg_index)
        )
        return rows.all()

    async def state(self, plan_id: uuid.UUID) -> PlanState | None:
        """A plain copy of the plan and its child orders."""
        plan = await self.get_plan(plan_id)
        if plan is None:
            return None
        return to_state(plan, await self.children(plan_id))


def to_state(plan: ExecutionPlan, children: Sequence[ChildOrder]) -> PlanState:
    return PlanState(
        id=plan.id,
        rfq_id=plan.rfq_id,
        state=plan.state,
        side=plan.side,
        quantity=plan.quantity,
        arrival_price_coin=plan.arrival_price_coin,
        params=copy_json(plan.params),
        schedule=copy_json(plan.schedule),
        children=[to_child(c) for c in children],
        created_at=plan.created_at,
    )


def to_child(row: ChildOrder) -> Child:
    return Child(
        client_order_id=row.client_order_id,
        slice_index=row.slice_index,
        venue=row.venue,
        instrument=row.instrument,
        side=row.side,
        quantity=row.quantity,
        limit_price=row.limit_price,
        created_at=row.created_at,
        state=row.state,
        filled_quantity=row.filled_quantity,
        avg_price=row.avg_price,
        sent_at=row.sent_at,
    )


def to_row(plan_id: uuid.UUID, child: Child) -> ChildOrder:
    return ChildOrder(
        plan_id=plan_id,
        client_order_id=child.client_order_id,
        slice_index=child.slice_index,
        venue=child.venue,
        instrument=child.instrument,
        side=child.side,
        quantity=child.quantity,
        limit_price=child.limit_price,
        state=child.state,
        filled_quantity=child.filled_quantity,
        avg_price=child.avg_price,
        sent_at=child.sent_at,
        created_at=child.created_at,
    )
