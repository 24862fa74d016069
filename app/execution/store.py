"""Where the worker keeps plans between steps: the database, or memory (simulation studies).

Every method is one transaction: the worker holds no session across venue calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Side
from app.events import unit_of_work
from app.execution.planning import Child, PlanState, copy_json
from app.execution.repository import ExecutionRepository, to_row
from app.models import ClientQuote, ExecutionPlan, Rfq
from app.pricing.desk import DeskRiskRepository
from app.pricing.fills import options_risk_change


class PlanStore(Protocol):
    async def working_plan_ids(self) -> list[uuid.UUID]: ...

    async def load(self, plan_id: uuid.UUID) -> PlanState | None: ...

    async def insert_children(self, plan: PlanState, index: int, children: Sequence[Child]) -> bool:
        """Store the new child orders with the slice marked ``sending``, before any is sent.
        False when another worker took the slice first (nothing is stored)."""
        ...

    async def save(self, plan: PlanState, children: Sequence[Child]) -> None:
        """Store the plan (state, schedule, params) and the given child orders' progress."""
        ...


class DbPlanStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def working_plan_ids(self) -> list[uuid.UUID]:
        async with unit_of_work(self.sessionmaker) as session:
            return await ExecutionRepository(session).working_plan_ids()

    async def load(self, plan_id: uuid.UUID) -> PlanState | None:
        async with unit_of_work(self.sessionmaker) as session:
            return await ExecutionRepository(session).state(plan_id)

    async def insert_children(self, plan: PlanState, index: int, children: Sequence[Child]) -> bool:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                # lock the plan (PostgreSQL) so that two workers never take the same slice
                row = await session.scalar(
                    select(ExecutionPlan).where(ExecutionPlan.id == plan.id).with_for_update()
                )
                if row is None or row.state != "working":
                    return False
                if row.schedule[index]["state"] not in ("pending", "missed"):
                    return False
                row.schedule = copy_json(plan.schedule)
                row.params = _params(row, plan)
                session.add_all([to_row(plan.id, c) for c in children])
                await session.flush()
        except IntegrityError:  # a client_order_id already stored: someone else sent it
            return False
        return True

    async def save(self, plan: PlanState, children: Sequence[Child]) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            repo = ExecutionRepository(session)
            # locked (PostgreSQL): the desk-risk release below must not run twice at once
            row = await session.scalar(
                select(ExecutionPlan).where(ExecutionPlan.id == plan.id).with_for_update()
            )
            if row is None:
                return
            await _release_desk_risk(session, row, plan)
            row.state = plan.state
            row.schedule = copy_json(plan.schedule)
            row.params = _params(row, plan)
            rows = await repo.children_by_id([c.client_order_id for c in children])
            for c in children:
                stored = rows.get(c.client_order_id)
                if stored is None:
                    continue
                stored.state = c.state
                stored.filled_quantity = c.filled_quantity
                stored.avg_price = c.avg_price
                stored.sent_at = c.sent_at


RELEASED = "desk_risk_released_units"


def _params(row: ExecutionPlan, plan: PlanState) -> dict[str, object]:
    """The plan's params to store over the row's, except the units released, which never go
    back: another worker (each replica runs one) may have released more since this copy of
    the plan was loaded, and writing the older count back would release those units again."""
    params: dict[str, object] = copy_json(plan.params)
    stored = Decimal(str(row.params.get(RELEASED, "0")))
    if stored > Decimal(str(params.get(RELEASED, "0"))):
        params[RELEASED] = str(stored)
    return params


async def _release_desk_risk(session: AsyncSession, row: ExecutionPlan, plan: PlanState) -> None:
    """Take the package units the venues completed since the last save off the desk's
    inventory, in the transaction that records their fills.

    The residual's risk went onto the inventory when the client traded (app.dealers.award); the
    desk executes it on venues the way the client traded, so each complete unit executed moves
    the inventory back by the package's factors for one unit (its options': the delta hedge of
    a "vs H" package stays on the desk). The units already released are
    kept in the plan's params, so no unit is released twice (the plan row is locked)."""
    done = Decimal(repr(plan.units_done()))
    released = Decimal(str(row.params.get(RELEASED, "0")))
    if done <= released:
        return
    plan.params[RELEASED] = str(done)  # the plan's params overwrite the row's just after
    rfq = await session.get(Rfq, row.rfq_id)
    quote = await session.scalar(
        select(ClientQuote)
        .where(ClientQuote.rfq_id == row.rfq_id, ClientQuote.status == "accepted")
        .order_by(ClientQuote.created_at.desc())
        .limit(1)
    )
    if rfq is None or quote is None:  # pragma: no cover - a plan is made for an accepted quote
        return
    # a venue buy is the desk buying: the same change as a client selling it to the desk,
    # without the hedge of a "vs H" package (the client's coins stay with the desk)
    as_client = Side.SELL if row.side == "buy" else Side.BUY
    change = options_risk_change(quote, rfq, as_client, done - released)
    await DeskRiskRepository(session).add(change)


class MemoryPlanStore:
    """Plans in memory, copied in and out like rows (simulation studies, benchmarks)."""

    def __init__(self) -> None:
        self.plans: dict[uuid.UUID, PlanState] = {}

    def add(self, plan: PlanState) -> None:
        self.plans[plan.id] = plan.copy()

    async def working_plan_ids(self) -> list[uuid.UUID]:
        return [p.id for p in self.plans.values() if p.state == "working"]

    async def load(self, plan_id: uuid.UUID) -> PlanState | None:
        found = self.plans.get(plan_id)
        return found.copy() if found else None

    async def insert_children(self, plan: PlanState, index: int, children: Sequence[Child]) -> bool:
        stored = self.plans[plan.id]
        known = {c.client_order_id for c in stored.children}
        if stored.schedule[index]["state"] not in ("pending", "missed") or any(
            c.client_order_id in known for c in children
        ):
            return False
        stored.schedule = copy_json(plan.schedule)
        stored.params = copy_json(plan.params)
        stored.children.extend(replace(c) for c in children)
        return True

    async def save(self, plan: PlanState, children: Sequence[Child]) -> None:
        stored = self.plans[plan.id]
        stored.state = plan.state
        stored.schedule = copy_json(plan.schedule)
        stored.params = copy_json(plan.params)
        by_id = {c.client_order_id: c for c in children}
        stored.children = [replace(by_id.get(c.client_order_id, c)) for c in stored.children]
