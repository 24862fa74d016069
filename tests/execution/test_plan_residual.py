"""plan_residual on the accept flow's session (SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.enums import Side
from app.errors import Unprocessable
from app.execution.config import ExecutionSettings
from app.execution.service import plan_residual
from app.models import ExecutionPlan
from tests.execution.conftest import LEG_GREEKS, SPOT, make_rfq
from tests.execution.sim import CALL, CALL_HIGH, T0

SETTINGS = ExecutionSettings(sim_sleep_latency=False)


async def test_a_plan_is_stored_with_its_schedule(session: AsyncSession) -> None:
    rfq, quote = await make_rfq(session, side="buy", residual=Decimal(60))
    plan = await plan_residual(session, rfq, quote, Side.BUY, Decimal(60), T0, settings=SETTINGS)
    stored = (await session.scalars(select(ExecutionPlan))).one()
    assert stored.id == plan.id
    assert (plan.state, plan.side, plan.quantity) == ("working", "buy", Decimal(60))
    # the desk sold the spread to the client: it buys it back, long leg bought, short leg sold
    legs = plan.params["legs"]
    assert [(leg["instrument"], leg["side"]) for leg in legs] == [
        (CALL, "buy"),
        (CALL_HIGH, "sell"),
    ]
    arrival = (LEG_GREEKS[0]["price_usd"] - LEG_GREEKS[1]["price_usd"]) / SPOT
    assert float(plan.arrival_price_coin or 0) == pytest.approx(arrival, abs=1e-9)
    assert legs[0]["arrival_price_coin"] == pytest.approx(2600 / SPOT)
    schedule = plan.schedule
    assert len(schedule) == SETTINGS.n_slices
    assert schedule[0]["due_at"] == T0.isoformat()
    assert schedule[-1]["target_units"] == 60.0
    assert sum(e["planned_units"] for e in schedule) == pytest.approx(60.0)
    targets = [e["target_units"] for e in schedule]
    assert targets == sorted(targets)
    assert plan.params["predicted"]["expected_cost_coin"] > 0
    assert plan.params["model"]["sigma"] > 0


async def test_the_client_sold_so_the_desk_sells(session: AsyncSession) -> None:
    rfq, quote = await make_rfq(session, side="sell")
    plan = await plan_residual(session, rfq, quote, "sell", Decimal(40), T0, settings=SETTINGS)
    assert plan.side == "sell"
    assert [leg["side"] for leg in plan.params["legs"]] == ["sell", "buy"]


async def test_accepting_twice_makes_one_plan(session: AsyncSession) -> None:
    rfq, quote = await make_rfq(session)
    a = await plan_residual(session, rfq, quote, Side.BUY, Decimal(60), T0, settings=SETTINGS)
    b = await plan_residual(session, rfq, quote, Side.BUY, Decimal(60), T0, settings=SETTINGS)
    assert a.id == b.id
    assert len((await session.scalars(select(ExecutionPlan))).all()) == 1


async def test_a_quote_without_leg_greeks_still_plans(session: AsyncSession) -> None:
    rfq, quote = await make_rfq(session, greeks={})
    plan = await plan_residual(session, rfq, quote, Side.BUY, Decimal(10), T0, settings=SETTINGS)
    assert plan.arrival_price_coin is None
    assert plan.params["model"]["sigma"] == SETTINGS.min_price_vol_coin_per_sqrt_s


@pytest.mark.parametrize(("side", "qty"), [(Side.TWO_WAY, Decimal(1)), (Side.BUY, Decimal(0))])
async def test_refuses_two_way_and_nothing(session: AsyncSession, side: Side, qty: Decimal) -> None:
    rfq, quote = await make_rfq(session)
    with pytest.raises(Unprocessable):
        await plan_residual(session, rfq, quote, side, qty, T0, settings=SETTINGS)


async def test_the_plan_works_whole_lots_and_leaves_the_rest_to_the_desk(
    session: AsyncSession,
) -> None:
    rfq, quote = await make_rfq(session, residual=Decimal("30.05"))
    plan = await plan_residual(
        session, rfq, quote, Side.BUY, Decimal("30.05"), T0, settings=SETTINGS
    )
    assert plan is not None
    assert plan.quantity == Decimal("30.0")
    assert Decimal(plan.params["unexecuted_units"]) == Decimal("0.05")
    assert plan.schedule[-1]["target_units"] == 30.0


async def test_a_residual_under_one_lot_gets_no_plan(session: AsyncSession) -> None:
    rfq, quote = await make_rfq(session, residual=Decimal("0.05"))
    assert await plan_residual(session, rfq, quote, Side.BUY, Decimal("0.05"), T0) is None
    assert (await session.scalars(select(ExecutionPlan))).all() == []
