"""RFQ use cases: create (validate, store, quote), read, list, accept, pass, cancel, expire."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.service import Principal
from app.config import DealerSettings, RfqSettings
from app.dealers.fanout import DealerFanout, PlannedRequest
from app.dealers.selection import Selection, selection_summary
from app.domain.enums import Direction, Side, Structure
from app.domain.instruments import Instrument, format_decimal
from app.domain.structures import Leg, build_legs, recognise
from app.domain.validation import RfqLimits, validate_package
from app.errors import AppError, Conflict, NotFound, Unprocessable
from app.events import EventBus, rfq_channel, unit_of_work
from app.execution.config import ExecutionSettings
from app.execution.service import plan_residual
from app.metrics import RFQ_CREATED, RFQ_TRANSITIONS
from app.models import ClientQuote, DealerQuote, DealerRequest, Rfq, RfqEvent, RfqLeg
from app.models._mixins import new_id
from app.pricing.service import Priced, PricingService
from app.rfq.lifecycle import EXPIRABLE, IllegalTransition, RfqState, check_transition
from app.rfq.repository import RfqFilter, RfqRepository
from app.rfq.schemas import AcceptBody, RfqCreate
from app.staging import fresh, stage

log = structlog.get_logger(__name__)


class Filler(Protocol):
    """Fills an accepted RFQ and closes unfilled ones (the dealers' award fills this seam)."""

    async def fill(
        self,
        session: AsyncSession,
        rfq: Rfq,
        quote: ClientQuote,
        side: Side,
        quantity: Decimal,
        now: datetime,
    ) -> Decimal: ...

    async def close(
        self,
        session: AsyncSession,
        rfq: Rfq,
        result: str = "lost",
        quote: ClientQuote | None = None,
    ) -> None: ...

    async def tell_lost(self, session: AsyncSession, request_ids: list[uuid.UUID]) -> None: ...


def limits_from(settings: RfqSettings) -> RfqLimits:
    return RfqLimits(
        underlyings=frozenset(settings.underlyings),
        min_block=dict(settings.min_block),
        max_legs=settings.max_legs,
        quantity_step=settings.quantity_step,
    )


_OPPOSITE = {Side.BUY: Side.SELL, Side.SELL: Side.BUY, Side.TWO_WAY: Side.TWO_WAY}


def legs_of(body: RfqCreate) -> tuple[Structure, tuple[Leg, ...], Side]:
    """The package's structure, its legs for its buyer and the client's side, from either form
    of the request.

    Explicit legs are what the client does. When they are a structure's seller's legs (a call
    spread stated as −C(K1) +C(K2)), the client doing them sells that structure: the RFQ is
    stored as the structure, with its buyer's legs and the side the other way, so that its
    legs, structure and side always agree (a buyer of −C(K1) +C(K2) sells the call spread). A
    custom package's buyer does its legs as stated, so a client selling one is stored as
    buying the legs the other way."""
    underlying = body.underlying.upper()
    if body.legs is None:
        if body.structure is None or body.strikes is None or body.expiries is None:
            raise Unprocessable(
                "template form needs structure, strikes and expiries", field="structure"
            )
        legs = build_legs(underlying, body.structure, body.strikes, body.expiries, body.ratio)
        return body.structure, legs, body.side
    parsed = []
    for i, leg in enumerate(body.legs):
        try:
            instrument = Instrument.parse(leg.instrument)
        except ValueError as exc:
            reason = getattr(exc, "reason", str(exc))
            raise Unprocessable(
                reason, field=f"legs[{i}].instrument", code="invalid_instrument"
            ) from exc
        parsed.append(Leg(instrument=instrument, ratio=leg.ratio, direction=leg.direction))
    legs = tuple(parsed)
    found = recognise(legs)
    if body.structure not in (None, Structure.CUSTOM, found.structure):
        raise Unprocessable(
            f"the legs form a {found.structure.value}, not a {body.structure.value}",
            field="structure",
        )
    if body.structure is Structure.CUSTOM or found.structure is Structure.CUSTOM:
        if body.side is Side.SELL:
            return Structure.CUSTOM, tuple(leg.flipped() for leg in legs), Side.BUY
        return Structure.CUSTOM, legs, body.side
    if found.orientation is Direction.SELL:
        return found.structure, tuple(leg.flipped() for leg in legs), _OPPOSITE[body.side]
    return found.structure, legs, body.side


@dataclass
class Created:
    """A new RFQ with everything its creator is shown (loaded; no further queries needed)."""

    rfq: Rfq
    quote: ClientQuote | None = None
    dealer_requests: Sequence[DealerRequest] = ()
    dealer_quotes: Sequence[DealerQuote] = ()


class RfqService:
    def __init__(
        self,
        settings: RfqSettings,
        *,
        pricing: PricingService | None = None,
        fanout: DealerFanout | None = None,
        filler: Filler | None = None,
        dealer_settings: DealerSettings | None = None,
        events: EventBus | None = None,
        execution: ExecutionSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.limits = limits_from(settings)
        self.pricing = pricing
        self.fanout = fanout
        self.filler = filler
        self.dealer_settings = dealer_settings
        self.events = events
        self.execution = execution
        self.clock = clock

    # ----------------------------------------------------------------- create
    async def create(
        self,
        maker: async_sessionmaker[AsyncSession],
        body: RfqCreate,
        principal: Principal | None,
        *,
        channel: str = "api",
        conversation_id: str | None = None,
    ) -> Created:
        """Store the RFQ, ask dealers, and quote it.

        Two transactions, so that no database connection is held while dealers answer: the
        first stores the RFQ and the dealer requests, the second their answers and the client
        quote. Should the second fail, the RFQ is rejected with the reason (and the error
        re-raised); should the process die between them, the expiry sweeper closes it.
        """
        now = self.clock()
        async with unit_of_work(maker) as session:
            rfq = self._new_rfq(body, principal, channel, conversation_id, now)
            self._publish(session, rfq, "created")
            quote, planned, selection, priced = await self._price_and_plan(session, rfq, now)
            # one multi-row INSERT per table when the unit of work ends (app.db.stage)
            stage(session, rfq, *rfq.legs, *rfq.events)
        if not planned:
            return Created(rfq, quote)
        rfq_id = rfq.id
        assert priced is not None  # noqa: S101 - dealers are planned only for a priced RFQ
        assert self.fanout is not None  # noqa: S101 - planned is empty without a fanout
        deadline = now + timedelta(milliseconds=self.fanout.settings.deadline_ms)
        results = await self.fanout.fan_out(rfq_id, planned, deadline)
        try:
            async with unit_of_work(maker) as session:
                rfq = await self._locked(session, rfq_id)
                at = self.clock()
                # what the dealers answered is logged whatever became of the RFQ meanwhile
                requests = await self.fanout.collect(session, rfq, results, at)
                if rfq.state != RfqState.QUOTING.value:
                    await self._ended_while_quoting(session, rfq)
                    await self._publish_dealer_requests(session, rfq)
                    return Created(rfq)
                await self._publish_dealer_requests(session, rfq, requests)
                # every quote on the RFQ: those just collected and any posted back meanwhile
                dealer_quotes = await RfqRepository(session).dealer_quotes(rfq.id)
                live = [q for q in dealer_quotes if q.status == "live"]
                quote = await self._quote(session, rfq, priced, at, live, selection)
                return Created(rfq, quote, requests, dealer_quotes)
        except AppError as exc:
            async with unit_of_work(maker) as session:
                rfq = await self._locked(session, rfq_id)
                await self.fanout.collect(session, rfq, results, self.clock())
                if rfq.state == RfqState.QUOTING.value:
                    await self.transition(
                        session, rfq, RfqState.REJECTED, actor="pricing", reason=exc.detail
                    )
            raise

    async def _ended_while_quoting(self, session: AsyncSession, rfq: Rfq) -> None:
        """The RFQ was passed, cancelled or expired while dealers were being asked: the
        quotes just collected close as that ending closed the others."""
        if RfqState(rfq.state) is RfqState.EXPIRED:
            await self._expire_dealer_side(session, [rfq.id])
        elif self.filler is not None:
            passed = RfqState(rfq.state) is RfqState.PASSED
            await self.filler.close(session, rfq, "lost" if passed else "cancelled")

    async def _price_and_plan(
        self, session: AsyncSession, rfq: Rfq, now: datetime
    ) -> tuple[ClientQuote | None, list[PlannedRequest], Selection | None, Priced | None]:
        """Price a new RFQ; quote it at once when no dealer is to be asked."""
        if self.pricing is None:
            return None, [], None, None
        await self.transition(session, rfq, RfqState.QUOTING, actor="pricing", now=now, flush=False)
        priced = await self.pricing.model_quote(session, rfq)
        planned: list[PlannedRequest] = []
        selection = None
        if self.fanout is not None:
            planned, selection = await self.fanout.plan(
                session, rfq, priced.calc.theo_coin, now, priced.calc.greeks, priced.snap.spot
            )
        if planned:
            return None, planned, selection, priced
        return await self._quote(session, rfq, priced, now, (), selection), [], selection, priced

    async def _quote(
        self,
        session: AsyncSession,
        rfq: Rfq,
        priced: Priced,
        now: datetime,
        dealer_quotes: Sequence[DealerQuote] = (),
        selection: Selection | None = None,
    ) -> ClientQuote:
        assert self.pricing is not None  # noqa: S101
        quote = await self.pricing.store_quote(
            session,
            rfq,
            priced,
            now,
            dealer_quotes=dealer_quotes,
            dealer_settings=self.dealer_settings,
        )
        if selection is not None:
            quote.explanation = quote.explanation | {
                "dealer_selection": selection_summary(selection)
            }
        # written with the rest of the unit of work when it commits (the RFQ is locked, or
        # not yet stored: no concurrent change to find)
        await self.transition(
            session, rfq, RfqState.QUOTED, actor="pricing", now=self.clock(), flush=False
        )
        return quote

    def _new_rfq(
        self,
        body: RfqCreate,
        principal: Principal | None,
        channel: str,
        conversation_id: str | None,
        now: datetime,
    ) -> Rfq:
        structure, legs, side = legs_of(body)
        underlying = body.underlying.upper()
        validate_package(underlying, legs, body.quantity, now, self.limits)
        expires_in = min(
            body.expires_in_ms or self.settings.default_expires_in_ms,
            self.settings.max_expires_in_ms,
        )
        rfq_id = new_id()
        actor = principal.name if principal else channel
        # built without the ORM's attribute events (app.db.fresh): written by app.db.stage
        rfq = fresh(
            Rfq,
            id=rfq_id,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(milliseconds=expires_in),
            state=RfqState.NEW.value,
            state_reason=None,
            client=body.client or (principal.name if principal else None),
            channel=channel,
            conversation_id=conversation_id,
            underlying=underlying,
            structure=structure.value,
            side=side.value,
            quantity=body.quantity,
            hedge_reference=body.hedge_reference,
            created_by=principal.key_id if principal else None,
            version=1,
            legs=[
                fresh(
                    RfqLeg,
                    rfq_id=rfq_id,
                    leg_index=i,
                    instrument=leg.instrument.name,
                    expiry=leg.instrument.expiry,
                    strike=leg.instrument.strike,
                    option_type=leg.instrument.option_type.value,
                    ratio=leg.ratio,
                    direction=leg.direction.value,
                )
                for i, leg in enumerate(legs)
            ],
            events=[
                fresh(
                    RfqEvent,
                    rfq_id=rfq_id,
                    seq=1,
                    at=now,
                    from_state=None,
                    to_state=RfqState.NEW.value,
                    reason=None,
                    actor=actor,
                )
            ],
        )
        structlog.contextvars.bind_contextvars(rfq_id=str(rfq.id))
        RFQ_CREATED.labels(underlying, structure.value, channel).inc()
        log.info(
            "rfq_created",
            rfq_id=str(rfq.id),
            underlying=underlying,
            structure=structure.value,
            side=side.value,
            quantity=str(body.quantity),
            legs=len(legs),
        )
        return rfq

    # ------------------------------------------------------------------ reads
    async def get(
        self, session: AsyncSession, rfq_id: uuid.UUID
    ) -> tuple[Rfq, Sequence[ClientQuote]]:
        repo = RfqRepository(session)
        rfq = await repo.get(rfq_id)
        if rfq is None:
            raise NotFound(f"no RFQ {rfq_id}", field="rfq_id")
        await self._expire_if_due(session, rfq)
        return rfq, await repo.quotes(rfq.id)

    async def page(
        self, session: AsyncSession, flt: RfqFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[Rfq], str | None]:
        try:
            return await RfqRepository(session).page(flt, limit=limit, cursor=cursor)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unprocessable("cursor is not one this service returned", field="cursor") from exc

    # ---------------------------------------------------------------- actions
    async def accept(
        self, session: AsyncSession, rfq_id: uuid.UUID, body: AcceptBody, principal: Principal
    ) -> Rfq:
        now = self.clock()
        rfq = await self._locked(session, rfq_id)
        if await self._expire_if_due(session, rfq):
            raise Conflict("the RFQ expired before it was accepted", field="rfq_id", code="expired")
        quotes = await RfqRepository(session).quotes(rfq.id)
        live = [q for q in quotes if q.status == "live"]
        if rfq.state != RfqState.QUOTED.value or not live:
            raise Conflict(
                f"only a quoted RFQ can be accepted; this one is {rfq.state}",
                field="state",
                code="illegal_transition",
            )
        quote = live[-1]
        if quote.valid_until <= now:
            raise Conflict("the quote is no longer valid", code="quote_expired")
        if body.side is Side.TWO_WAY:
            raise Unprocessable(
                "accept as buy (lift the offer) or sell (hit the bid)", field="side"
            )
        if rfq.side != Side.TWO_WAY.value and rfq.side != body.side.value:
            raise Conflict(
                f"the client asked to {rfq.side}; cannot accept as {body.side.value}",
                field="side",
                code="side_mismatch",
            )
        price = quote.ask_coin if body.side is Side.BUY else quote.bid_coin
        if price is None:
            raise Conflict(
                f"no {'offer' if body.side is Side.BUY else 'bid'} was quoted",
                field="side",
                code="side_mismatch",
            )
        quantity = body.quantity or rfq.quantity
        if quantity > rfq.quantity:
            raise Unprocessable(
                f"cannot accept {quantity}: the RFQ is for {rfq.quantity}", field="quantity"
            )
        quote.status = "accepted"
        rfq.accepted_side = body.side.value
        await self.transition(
            session,
            rfq,
            RfqState.ACCEPTED,
            actor=principal.name,
            now=now,
            reason=f"{body.side.value} {quantity} at {price}",
        )
        if self.filler is None:
            raise Conflict("no fill route is configured", code="no_fill_route")
        filled = await self.filler.fill(session, rfq, quote, body.side, quantity, now)
        if rfq.residual_quantity and rfq.residual_quantity > 0 and self.execution is not None:
            # the client's side: the desk trades the residual on venues the way the client did
            await plan_residual(
                session, rfq, quote, body.side, rfq.residual_quantity, now, settings=self.execution
            )
        await self._publish_dealer_requests(session, rfq)
        rfq.filled_quantity = filled
        final = RfqState.FILLED if filled >= quantity else RfqState.PARTIALLY_FILLED
        await self.transition(
            session,
            rfq,
            final,
            actor="fills",
            now=self.clock(),
            reason=f"filled {format_decimal(filled)} of {format_decimal(quantity)}"
            + (
                f" accepted (the RFQ was for {format_decimal(rfq.quantity)})"
                if quantity < rfq.quantity
                else ""
            ),
        )
        return rfq

    async def pass_(
        self, session: AsyncSession, rfq_id: uuid.UUID, principal: Principal, reason: str | None
    ) -> Rfq:
        return await self._close(session, rfq_id, RfqState.PASSED, principal, reason, "passed")

    async def cancel(
        self, session: AsyncSession, rfq_id: uuid.UUID, principal: Principal, reason: str | None
    ) -> Rfq:
        return await self._close(session, rfq_id, RfqState.CANCELLED, principal, reason, "expired")

    async def _close(
        self,
        session: AsyncSession,
        rfq_id: uuid.UUID,
        target: RfqState,
        principal: Principal,
        reason: str | None,
        quote_status: str,
    ) -> Rfq:
        rfq = await self._locked(session, rfq_id)
        if await self._expire_if_due(session, rfq):
            raise Conflict("the RFQ has already expired", field="rfq_id", code="expired")
        await self.transition(session, rfq, target, actor=principal.name, reason=reason)
        shown = None
        for quote in await RfqRepository(session).quotes(rfq.id):
            if quote.status == "live":
                quote.status, shown = quote_status, quote
        if self.filler is not None:
            await self.filler.close(
                session, rfq, "lost" if target is RfqState.PASSED else "cancelled", shown
            )
            await self._publish_dealer_requests(session, rfq)
        return rfq

    # ------------------------------------------------------------- lifecycle
    async def transition(
        self,
        session: AsyncSession,
        rfq: Rfq,
        target: RfqState,
        *,
        actor: str | None,
        reason: str | None = None,
        now: datetime | None = None,
        flush: bool = True,
    ) -> None:
        """Move an RFQ to ``target`` if the transition table allows it, and log the event.

        ``flush=False`` leaves the write to the unit of work's next flush (fewer round trips
        when more changes follow in the same transaction)."""
        current = RfqState(rfq.state)
        try:
            check_transition(current, target)
        except IllegalTransition as exc:
            raise Conflict(str(exc), field="state", code="illegal_transition") from exc
        at = now or self.clock()
        rfq.state = target.value
        rfq.updated_at = at
        rfq.state_reason = reason
        # appended to the loaded history; the version column makes a concurrent change fail
        # the flush (StaleDataError, answered 409)
        rfq.events.append(
            RfqEvent(
                rfq_id=rfq.id,
                seq=max((e.seq for e in rfq.events), default=0) + 1,
                at=at,
                from_state=current.value,
                to_state=target.value,
                reason=reason,
                actor=actor,
            )
        )
        if flush:
            await session.flush()
        RFQ_TRANSITIONS.labels(target.value).inc()
        self._publish(session, rfq, "state", from_state=current.value)
        log.info("rfq_state", rfq_id=str(rfq.id), from_state=current.value, to_state=target.value)

    def _publish(self, session: AsyncSession, rfq: Rfq, kind: str, **extra: object) -> None:
        if self.events is not None:
            self.events.publish_after_commit(
                session,
                rfq_channel(rfq.id),
                {"type": kind, "rfq_id": str(rfq.id), "state": rfq.state, **extra},
            )

    async def _publish_dealer_requests(
        self, session: AsyncSession, rfq: Rfq, requests: Sequence[DealerRequest] | None = None
    ) -> None:
        """An event per dealer request; ``requests``: the RFQ's, when the caller has them."""
        if self.events is None:
            return
        if requests is None:
            requests, _ = await RfqRepository(session).dealer_activity(rfq.id)
        for req in requests:
            event = {
                "type": "dealer_request",
                "rfq_id": str(rfq.id),
                "state": rfq.state,
                "request_id": str(req.id),
                "dealer_id": str(req.dealer_id),
                "outcome": req.outcome,
                "fill_quantity": req.fill_quantity,
            }
            self.events.publish_after_commit(session, rfq_channel(rfq.id), event)

    async def expire_due(self, session: AsyncSession) -> list[uuid.UUID]:
        """Expire the RFQs past their deadline; their ``state`` events go out once the
        transaction commits (run it in :func:`app.events.unit_of_work`)."""
        expired = await RfqRepository(session).expire_due(self.clock())
        await self._expire_dealer_side(session, [rfq_id for rfq_id, _ in expired])
        for rfq_id, from_state in expired:
            RFQ_TRANSITIONS.labels(RfqState.EXPIRED.value).inc()
            if self.events is not None:
                self.events.publish_after_commit(
                    session,
                    rfq_channel(rfq_id),
                    {
                        "type": "state",
                        "rfq_id": str(rfq_id),
                        "state": RfqState.EXPIRED.value,
                        "from_state": from_state,
                    },
                )
        return [rfq_id for rfq_id, _ in expired]

    async def _expire_dealer_side(self, session: AsyncSession, rfq_ids: list[uuid.UUID]) -> None:
        """The dealer side of RFQs that have just expired closes; dealers whose quotes were
        live are told they lost once the transaction commits."""
        if not rfq_ids:
            return
        lost = await RfqRepository(session).expire_dealer_side(rfq_ids)
        if lost and self.filler is not None:
            await self.filler.tell_lost(session, lost)

    async def _locked(self, session: AsyncSession, rfq_id: uuid.UUID) -> Rfq:
        structlog.contextvars.bind_contextvars(rfq_id=str(rfq_id))
        rfq = await RfqRepository(session).get(rfq_id, for_update=True)
        if rfq is None:
            raise NotFound(f"no RFQ {rfq_id}", field="rfq_id")
        return rfq

    async def _expire_if_due(self, session: AsyncSession, rfq: Rfq) -> bool:
        if RfqState(rfq.state) in EXPIRABLE and rfq.expires_at <= self.clock():
            await self.transition(
                session,
                rfq,
                RfqState.EXPIRED,
                actor="deadline",
                reason="deadline passed",
                now=rfq.expires_at,
            )
            repo = RfqRepository(session)
            for quote in await repo.quotes(rfq.id):
                if quote.status == "live":
                    quote.status = "expired"
            await self._expire_dealer_side(session, [rfq.id])  # as the sweeper does
            return True
        return False
