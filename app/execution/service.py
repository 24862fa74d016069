"""Residual execution use cases: make a plan on accept, read plans; the worker works them.

``plan_residual`` only adds and flushes (the caller's transaction commits). The background
:class:`~app.execution.worker.ExecutionWorker` (re-exported here) opens its own short
transactions and resumes plans from the database after a restart.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Side
from app.errors import NotFound, Unprocessable
from app.execution.config import ExecutionSettings
from app.execution.planning import PlanState, leg_specs, new_plan
from app.execution.repository import ExecutionRepository, to_state
from app.execution.worker import ExecutionWorker
from app.models import ClientQuote, ExecutionPlan, Rfq
from app.quant.errors import QuantError

__all__ = ["ExecutionWorker", "get_plan", "list_plans", "plan_residual"]

log = structlog.get_logger(__name__)


async def plan_residual(
    session: AsyncSession,
    rfq: Rfq,
    quote: ClientQuote,
    side: Side | str,
    quantity: Decimal,
    now: datetime,
    *,
    settings: ExecutionSettings | None = None,
) -> ExecutionPlan | None:
    """Make and store (flush only) the plan that works an accepted RFQ's residual.

    Venues trade whole lots (``settings.lot_size`` contracts; a leg trades units × ratio), so
    the plan works the residual rounded down to whole lots; what is left under a lot stays on
    the desk's inventory (``params["unexecuted_units"]``), and a residual under one lot gets
    no plan at all.

    Parameters
    ----------
    session
        The accept flow's session (not committed here).
    rfq
        The accepted RFQ (its legs are read from the database).
    quote
        The accepted client quote: its greeks give the arrival prices, deltas and volatility.
    side
        The *client's* side, as given to ``DealerFiller.fill``: ``buy`` when the client bought
        the structure. The desk covers what dealers did not by trading the same way on the
        venues, so the plan's side equals it (the desk sold the structure to the client, so it
        buys the residual back).
    quantity
        The residual, in package units (> 0).
    now
        Start of the plan: its first slice is due at once.
    settings
        Execution settings (``Settings.execution``); the defaults when None.

    Returns
    -------
    ExecutionPlan or None
        The new plan in state ``working`` (or the RFQ's existing plan: accepting twice never
        makes two); None when the residual is less than one lot.
    """
    settings = settings or ExecutionSettings()
    desk_side = side.value if isinstance(side, Side) else str(side)
    if desk_side not in ("buy", "sell"):
        raise Unprocessable("a residual is bought or sold, not two-way", field="side")
    if quantity <= 0:
        raise Unprocessable("the residual must be positive", field="quantity")
    repo = ExecutionRepository(session)
    existing = await repo.plans_for_rfq(rfq.id)
    if existing:
        return existing[0]
    legs = await repo.legs(rfq.id)
    if not legs:
        raise Unprocessable("the RFQ has no legs to trade", field="legs")
    lot = settings.lot_size
    executable = (quantity / lot).to_integral_value(ROUND_DOWN) * lot
    if executable <= 0:
        log.warning("residual_under_a_lot", rfq_id=str(rfq.id), quantity=str(quantity))
        return None
    specs = leg_specs(
        [(leg.instrument, leg.ratio, leg.direction) for leg in legs], quote.greeks or {}, desk_side
    )
    try:
        params, schedule = new_plan(specs, executable, now, settings, underlying=rfq.underlying)
    except (QuantError, ValueError) as exc:
        raise Unprocessable(f"cannot plan the residual: {exc}", field="execution") from exc
    spot = (quote.greeks or {}).get("spot")
    params["spot_usd"] = float(spot) if spot else None
    params["unexecuted_units"] = str(quantity - executable)  # under a lot: kept by the desk
    arrival = None
    if all(s.arrival_price_coin is not None for s in specs):
        per_unit = sum(
            (1 if leg.direction == "buy" else -1) * leg.ratio * (s.arrival_price_coin or 0.0)
            for leg, s in zip(legs, specs, strict=True)
        )
        arrival = Decimal(f"{per_unit:.10f}")
    plan = await repo.add_plan(
        ExecutionPlan(
            rfq_id=rfq.id,
            created_at=now,
            state="working",
            side=desk_side,
            quantity=executable,
            arrival_price_coin=arrival,
            params=params,
            schedule=schedule,
        )
    )
    log.info(
        "execution_planned",
        plan_id=str(plan.id),
        rfq_id=str(rfq.id),
        side=desk_side,
        quantity=str(executable),
        unexecuted=str(quantity - executable),
        expected_cost_coin=params["predicted"]["expected_cost_coin"],
    )
    return plan


async def get_plan(session: AsyncSession, plan_id: uuid.UUID) -> PlanState:
    """A plan with its child orders; ``NotFound`` if there is none."""
    state = await ExecutionRepository(session).state(plan_id)
    if state is None:
        raise NotFound(f"no execution plan {plan_id}", field="execution_id")
    return state


async def list_plans(session: AsyncSession, rfq_id: uuid.UUID) -> list[PlanState]:
    """The plans of one RFQ (at most one today), with their child orders."""
    repo = ExecutionRepository(session)
    return [to_state(p, await repo.children(p.id)) for p in await repo.plans_for_rfq(rfq_id)]
