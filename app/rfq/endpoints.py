"""RFQ endpoints: thin; parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.auth.keys import Role
from app.auth.service import Principal
from app.deps import SessionDep, StateDep, require
from app.domain.enums import Structure
from app.errors import COMMON_ERRORS, Conflict, ErrorBody, NotFound, Unprocessable, responses
from app.query_time import utc_bound
from app.rfq.lifecycle import RfqState
from app.rfq.repository import RfqFilter
from app.rfq.schemas import (
    AcceptBody,
    ReasonBody,
    RfqCreate,
    RfqPage,
    RfqRead,
    RfqSummary,
)
from app.rfq.service import RfqService
from app.rfq.stream import rfq_event_stream
from app.rfq.views import read_rfq, rfq_view

router = APIRouter(prefix="/v1/rfqs", tags=["rfqs"], responses=COMMON_ERRORS)
Sales = Annotated[Principal, Depends(require(Role.SALES, Role.BOT))]
Reader = Annotated[Principal, Depends(require(Role.SALES, Role.BOT, Role.ANALYST))]


async def _service(state: StateDep) -> RfqService:
    service: RfqService = state.services["rfq"]
    return service


ServiceDep = Annotated[RfqService, Depends(_service)]


@router.post("", status_code=201, responses=responses(Unprocessable, Conflict))
async def create_rfq(
    body: RfqCreate, state: StateDep, service: ServiceDep, principal: Sales
) -> RfqRead:
    """Create an RFQ from a structure template or explicit legs, ask dealers, and quote it."""
    made = await service.create(state.sessionmaker, body, principal)
    quotes = [made.quote] if made.quote is not None else []
    return rfq_view(made.rfq, quotes, made.dealer_requests, made.dealer_quotes)


@router.get("", responses=responses(Unprocessable))
async def list_rfqs(
    session: SessionDep,
    service: ServiceDep,
    _: Reader,
    state: Annotated[
        list[RfqState] | None,
        Query(max_length=len(RfqState), description="Any of these states (repeat the parameter)"),
    ] = None,
    underlying: Annotated[str | None, Query(max_length=10)] = None,
    structure: Structure | None = None,
    client: Annotated[str | None, Query(max_length=120)] = None,
    channel: Annotated[str | None, Query(pattern="^(api|chat)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RfqPage:
    """List RFQs, newest first, with filters and cursor pagination."""
    flt = RfqFilter(
        states=tuple(dict.fromkeys(state or ())),
        underlying=underlying.upper() if underlying else None,
        structure=structure.value if structure else None,
        client=client,
        channel=channel,
        since=utc_bound(since, "since"),
        until=utc_bound(until, "until"),
    )
    items, next_cursor = await service.page(session, flt, limit=limit, cursor=cursor)
    return RfqPage(items=[RfqSummary.model_validate(r) for r in items], next_cursor=next_cursor)


@router.get("/{rfq_id}", responses=responses(NotFound))
async def get_rfq(
    rfq_id: uuid.UUID, session: SessionDep, service: ServiceDep, _: Reader
) -> RfqRead:
    """One RFQ with its legs, state history and quotes."""
    return await read_rfq(service, session, rfq_id)


@router.get(
    "/{rfq_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`snapshot` (the RFQ now), then `state` events until final",
        },
        404: {"model": ErrorBody},
    },
)
async def rfq_events(
    rfq_id: uuid.UUID, state: StateDep, service: ServiceDep, _: Reader
) -> StreamingResponse:
    """Server-sent events: the RFQ's state now, then each change as it happens."""
    async with state.sessionmaker() as session:
        current = (await read_rfq(service, session, rfq_id)).model_dump(mode="json")
    return StreamingResponse(
        rfq_event_stream(state.cache, rfq_id, current),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/{rfq_id}/accept", responses=responses(NotFound, Conflict, Unprocessable))
async def accept_rfq(
    rfq_id: uuid.UUID, body: AcceptBody, session: SessionDep, service: ServiceDep, principal: Sales
) -> RfqRead:
    """The client trades on the live quote: fill it."""
    await service.accept(session, rfq_id, body, principal)
    return await read_rfq(service, session, rfq_id)


@router.post("/{rfq_id}/pass", responses=responses(NotFound, Conflict))
async def pass_rfq(
    rfq_id: uuid.UUID,
    session: SessionDep,
    service: ServiceDep,
    principal: Sales,
    body: ReasonBody | None = None,
) -> RfqRead:
    """The client passes on the quote."""
    await service.pass_(session, rfq_id, principal, body.reason if body else None)
    return await read_rfq(service, session, rfq_id)


@router.post("/{rfq_id}/cancel", responses=responses(NotFound, Conflict))
async def cancel_rfq(
    rfq_id: uuid.UUID,
    session: SessionDep,
    service: ServiceDep,
    principal: Sales,
    body: ReasonBody | None = None,
) -> RfqRead:
    """Withdraw the RFQ before it trades."""
    await service.cancel(session, rfq_id, principal, body.reason if body else None)
    return await read_rfq(service, session, rfq_id)
