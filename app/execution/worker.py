"""The background worker that works every plan: slices due → split → child orders → fills.

Restart safety comes from three rules, not from memory (the worker keeps none between steps):

1. a child order is stored (state ``new``, its slice ``sending``) in its own transaction
   *before* it is sent, under the deterministic id ``f"{plan_id}:{slice}:{leg}:{venue}"``
   (unique in the table, so a slice is never sent twice);
2. venues place an id at most once (a repeat returns the existing order);
3. at every step, orders not yet final are first asked of their venue: known there, their fills
   are recorded; unknown and recent, they are sent (the first attempt died before reaching the
   venue); unknown and stale, they are cancelled and the schedule re-solved.

So a worker killed at any await (before, during or after a send) and a new one started on the
same database and venues finish the plan, and no order trades twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.execution.config import ExecutionSettings
from app.execution.planning import OPEN_STATES, Child, PlanState
from app.execution.split import VenueLiquidity, liquidity_from_levels, split_slice
from app.execution.store import DbPlanStore, PlanStore
from app.execution.venues import OrderRequest, Venue, VenueOrder, venue_map

log = structlog.get_logger(__name__)
_PRICE_Q = Decimal("1e-8")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def request_of(child: Child) -> OrderRequest:
    """The venue order of a stored child order (the same request on every resend)."""
    return OrderRequest(
        client_order_id=child.client_order_id,
        instrument=child.instrument,
        side=child.side,
        quantity=child.quantity,
        limit_price=child.limit_price,
    )


class ExecutionWorker:
    """Works every plan in state ``working``; see the module docstring.

    Parameters
    ----------
    sessionmaker
        Where plans live (unused when ``store`` is given).
    venues
        The lit venues (names unique).
    settings
        Execution settings (polling, limits, resends).
    clock
        The time of a step when none is given.
    store
        Overrides the database store (e.g. :class:`~app.execution.store.MemoryPlanStore`).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession] | None,
        venues: Sequence[Venue],
        settings: ExecutionSettings,
        clock: Callable[[], datetime] = _utcnow,
        *,
        store: PlanStore | None = None,
    ) -> None:
        if store is None:
            if sessionmaker is None:
                raise ValueError("give a sessionmaker or a store")
            store = DbPlanStore(sessionmaker)
        self.store = store
        self.venues: dict[str, Venue] = venue_map(venues)
        self.settings = settings
        self.clock = clock

    async def run(self) -> None:
        """Step forever, every ``poll_interval_s`` (cancel the task to stop)."""
        while True:
            try:
                await self.step()
            except Exception:  # a failed step (database down...) is retried at the next poll
                log.warning("execution_step_failed", exc_info=True)
            await asyncio.sleep(self.settings.poll_interval_s)

    async def step(self, now: datetime | None = None) -> int:
        """Work every working plan once; returns the number of child orders sent."""
        if not self.settings.enabled:
            return 0
        now = now or self.clock()
        sent = 0
        for plan_id in await self.store.working_plan_ids():
            try:
                sent += await self.work(plan_id, now)
            except Exception:
                log.warning("execution_plan_failed", plan_id=str(plan_id), exc_info=True)
        return sent

    async def work(self, plan_id: uuid.UUID, now: datetime) -> int:
        """One step of one plan: recover open orders, account a sent slice, work a due one."""
        plan = await self.store.load(plan_id)
        if plan is None or plan.state != "working":
            return 0
        changed = await self._recover(plan, now)
        if any(c.state in OPEN_STATES for c in plan.children):
            if changed:
                await self.store.save(plan, changed)
            return 0
        sending = plan.sending_index()
        if sending is not None:
            plan.finish_slice(sending)
            log.info("execution_slice_recovered", plan_id=str(plan.id), slice=sending + 1)
        if plan.state != "working":
            await self.store.save(plan, changed)
            self._log_end(plan)
            return 0
        index = plan.due_index(now)
        if index is None:
            if changed or sending is not None:
                await self.store.save(plan, changed)
            return 0
        orders = await self._route(plan, index, now)
        plan.schedule[index]["state"] = "sending"
        if orders and not await self.store.insert_children(plan, index, orders):
            return 0
        plan.children.extend(orders)
        await self._send(plan, orders, now)
        if not any(c.state in OPEN_STATES for c in plan.children):
            plan.finish_slice(index)
        await self.store.save(plan, [*changed, *orders])
        if plan.state != "working":
            self._log_end(plan)
        return len(orders)

    # ------------------------------------------------------------------------ internals
    async def _route(self, plan: PlanState, index: int, now: datetime) -> list[Child]:
        """Child orders of slice ``index``: each leg's release split across the venues."""
        entry = plan.schedule[index]
        lot = plan.lot
        known = {c.client_order_id for c in plan.children}
        out: list[Child] = []
        for leg_index, (leg, quantity) in enumerate(
            zip(plan.legs, plan.releases(index), strict=True)
        ):
            if quantity <= 0:
                continue
            liquidity = await self._liquidity(leg.instrument, leg.side)
            split = split_slice(float(quantity), liquidity, lot=float(lot))
            if split.shortfall > 0:
                entry["notes"].append(
                    {"leg": leg_index, "shortfall": split.shortfall, "reason": split.reason}
                )
            for alloc in split.allocations:
                qty = Decimal(round(alloc.quantity / float(lot))) * lot
                cid = f"{plan.id}:{entry['slice']}:{leg_index}:{alloc.venue}"
                if qty <= 0 or cid in known:
                    continue
                fee = self.venues[alloc.venue].info.fee_coin_per_contract
                price = leg.sign * (alloc.last_marginal_cost - fee)  # the walk's last price
                limit = price + leg.sign * self.settings.limit_slack_coin
                out.append(
                    Child(
                        client_order_id=cid,
                        slice_index=int(entry["slice"]),
                        venue=alloc.venue,
                        instrument=leg.instrument,
                        side=leg.side,
                        quantity=min(qty, quantity),
                        limit_price=_dec(limit) if limit > 0 else None,
                        created_at=now,
                    )
                )
        return out

    async def _liquidity(self, instrument: str, side: str) -> list[VenueLiquidity]:
        names = list(self.venues)
        books = await asyncio.gather(
            *(self.venues[n].book(instrument) for n in names), return_exceptions=True
        )
        out = []
        for name, book in zip(names, books, strict=True):
            if isinstance(book, BaseException):
                if not isinstance(book, Exception):
                    raise book
                log.warning("venue_book_failed", venue=name, error=type(book).__name__)
                continue
            info = self.venues[name].info
            out.append(
                liquidity_from_levels(
                    name,
                    side,
                    book.side_levels(side),
                    fee=info.fee_coin_per_contract,
                    min_size=float(info.min_size),
                )
            )
        return out

    async def _send(self, plan: PlanState, orders: Sequence[Child], now: datetime) -> None:
        results = await asyncio.gather(
            *(self.venues[c.venue].place(request_of(c)) for c in orders), return_exceptions=True
        )
        for child, result in zip(orders, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                # stays "new": the next step asks the venue, and resends if it never got it
                log.warning("child_order_send_failed", cid=child.client_order_id, exc_info=result)
                continue
            self._apply(plan, child, result, now)

    async def _recover(self, plan: PlanState, now: datetime) -> list[Child]:
        changed = []
        for child in plan.children:
            if child.state not in OPEN_STATES:
                continue
            venue = self.venues.get(child.venue)
            if venue is None:
                continue  # a venue no longer configured: left open for an operator
            try:
                order = await venue.order(child.client_order_id)
                if order is None:
                    age = (now - child.created_at).total_seconds()
                    if child.state == "sent" or age > self.settings.resend_within_s:
                        child.state = "cancelled"  # never reached the venue; too late now
                        changed.append(child)
                        continue
                    order = await venue.place(request_of(child))
                elif (
                    order.state == "open"
                    and child.sent_at is not None
                    and (now - child.sent_at).total_seconds() > plan.slice_s
                ):
                    order = await venue.cancel(child.client_order_id) or order
            except Exception:
                log.warning("child_order_recovery_failed", cid=child.client_order_id, exc_info=True)
                continue
            self._apply(plan, child, order, now)
            changed.append(child)
        return changed

    @staticmethod
    def _apply(plan: PlanState, child: Child, order: VenueOrder, now: datetime) -> None:
        child.state = "sent" if order.state == "open" else order.state
        child.filled_quantity = order.filled_quantity
        child.avg_price = order.avg_price
        child.sent_at = child.sent_at or now
        fills: list[dict[str, Any]] = [
            {
                "trade_id": f.trade_id,
                "client_order_id": f.client_order_id,
                "quantity": str(f.quantity),
                "price": str(f.price),
                "fee": str(f.fee),
                "at": f.at.isoformat(),
            }
            for f in order.fills
        ]
        plan.add_fills(plan.slice_position(child.slice_index), child.venue, child.leg, fills)

    @staticmethod
    def _log_end(plan: PlanState) -> None:
        log.info(
            "execution_plan_ended",
            plan_id=str(plan.id),
            state=plan.state,
            units_done=plan.units_done(),
            quantity=str(plan.quantity),
        )


def _dec(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(_PRICE_Q, rounding=ROUND_DOWN)
