"""What dealers call: their quote requests, and quotes answered later (signed and keyed)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from sqlalchemy import select

from app.auth.keys import Role
from app.auth.service import Principal
from app.cache import CacheUnavailable
from app.dealers.answers import announce
from app.dealers.quotes import QuoteRefused, record_quote, withdraw
from app.dealers.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from app.dealers.wire import SKIPPED, DealerQuoteIn, DealerQuoteRead, QuoteRequestView, SentOutcome
from app.deps import SessionDep, StateDep, require
from app.errors import (
    COMMON_ERRORS,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
    responses,
    validation_summary,
)
from app.events import after_commit, rfq_channel
from app.models import Dealer, DealerRequest, Rfq, RfqLeg
from app.rfq.lifecycle import RfqState

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/dealer", tags=["dealer"], responses=COMMON_ERRORS)
DealerKey = Annotated[Principal, Depends(require(Role.DEALER))]


async def _own_request(
    session: SessionDep, principal: Principal, request_id: uuid.UUID, *, lock: bool = False
) -> DealerRequest:
    stmt = select(DealerRequest).where(DealerRequest.id == request_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    req = await session.scalar(stmt)
    if req is None or req.outcome == SKIPPED:  # a skipped request was never sent
        raise NotFound(f"no quote request {request_id}", field="request_id")
    if principal.role is not Role.ADMIN and req.dealer_id != principal.dealer_id:
        log.warning("dealer_foreign_request", key=principal.name, request_id=str(request_id))
        raise Forbidden("this quote request was sent to another dealer", field="request_id")
    return req


async def _locked_rfq_state(session: SessionDep, req: DealerRequest) -> str | None:
    """The request's RFQ state, its row locked: this orders a dealer's change to its quote
    with the transaction that quotes the client on the dealers' quotes."""
    state: str | None = await session.scalar(
        select(Rfq.state).where(Rfq.id == req.rfq_id).with_for_update()
    )
    return state


def _app_path(request: Request) -> str:
    """The path as the desk hands it out (``quote_url``): without the ``root_path`` that a
    server mounted under a prefix puts in front of it."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _verified_body(
    request: Request, state: StateDep, session: SessionDep, dealer_id: uuid.UUID
) -> bytes:
    body = await request.body()
    dealer = await session.get(Dealer, dealer_id)
    if dealer is None:
        raise Forbidden("the key's dealer no longer exists")
    try:
        verify(
            dealer.webhook_secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            skew_s=state.settings.dealers.signature_skew_s,
            target=f"{request.method} {_app_path(request)}",
        )
        seen = hashlib.sha256((request.headers.get(SIGNATURE_HEADER) or "").encode()).hexdigest()
        fresh = await state.cache.set(
            f"sig:{dealer_id}:{seen}", b"1", state.settings.dealers.signature_skew_s * 2, nx=True
        )
    except SignatureError as exc:
        log.warning("dealer_signature_refused", dealer=dealer.name, reason=str(exc))
        raise Unauthorized(f"signature refused: {exc}", field=SIGNATURE_HEADER) from exc
    except CacheUnavailable:
        fresh = True  # the timestamp skew still bounds a replay
    if not fresh:
        log.warning("dealer_signature_replayed", dealer=dealer.name)
        raise Unauthorized("signature refused: already used (replay)", field=SIGNATURE_HEADER)
    return body


@router.get("/quote-requests", responses=responses())
async def list_quote_requests(
    session: SessionDep,
    principal: DealerKey,
    outcome: SentOutcome | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[QuoteRequestView]:
    """The quote requests sent to the caller, newest first."""
    stmt = (
        select(DealerRequest)
        .where(DealerRequest.outcome != SKIPPED)
        .order_by(DealerRequest.created_at.desc())
        .limit(limit)
    )
    if principal.role is not Role.ADMIN:
        stmt = stmt.where(DealerRequest.dealer_id == principal.dealer_id)
    if outcome is not None:
        stmt = stmt.where(DealerRequest.outcome == outcome)
    return [QuoteRequestView.model_validate(r) for r in (await session.scalars(stmt)).all()]


@router.get("/quote-requests/{request_id}", responses=responses(NotFound))
async def get_quote_request(
    request_id: uuid.UUID, session: SessionDep, principal: DealerKey
) -> QuoteRequestView:
    """One of the quote requests sent to the caller."""
    return QuoteRequestView.model_validate(await _own_request(session, principal, request_id))


@router.post(
    "/quote-requests/{request_id}/quotes",
    status_code=201,
    responses=responses(NotFound, Conflict, Unprocessable),
)
async def submit_quote(
    request_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: DealerKey,
) -> DealerQuoteRead:
    """Answer (or replace an answer to) a quote request, signed over its timestamp, method, path
    and body (README, Signatures).

    The body is a quote (`bid`/`ask` for the package or `legs`, `size`, `firm`). Every quote is
    logged: the answer's `status` is `live`, or `refused` with `refusal_reason`.
    """
    req = await _own_request(session, principal, request_id)
    body = await _verified_body(request, state, session, req.dealer_id)
    # the RFQ's row, then the request's: the order the quoting transaction locks them in
    rfq_state = await _locked_rfq_state(session, req)
    req = await _own_request(session, principal, request_id, lock=True)
    try:
        quote_in = DealerQuoteIn.model_validate(json.loads(body))
    except ValidationError as exc:
        field, detail = validation_summary(exc.errors())
        raise Unprocessable(f"not a quote: {detail}", field=field) from exc
    except ValueError as exc:  # not JSON
        raise Unprocessable(f"not a quote: the body is not JSON ({exc})", field="body") from exc
    legs = (
        await session.scalars(
            select(RfqLeg).where(RfqLeg.rfq_id == req.rfq_id).order_by(RfqLeg.leg_index)
        )
    ).all()
    row = await record_quote(
        session,
        req,
        legs,
        quote_in,
        now=datetime.now(UTC),
        settings=state.settings.dealers,
        raw=json.loads(body),
        client_quoted=rfq_state != RfqState.QUOTING.value,
    )
    if row.status == "refused":
        log.info("dealer_quote_refused", request_id=str(req.id), reason=row.refusal_reason)

    event = json.dumps(
        {
            "type": "dealer_quote",
            "rfq_id": str(req.rfq_id),
            "request_id": str(req.id),
            "status": row.status,
            "reason": row.refusal_reason,
        }
    )

    async def _announce() -> None:
        try:
            await announce(state.cache, req.rfq_id, req.id)
            await state.cache.publish(rfq_channel(req.rfq_id), event)
        except CacheUnavailable:
            log.warning("dealer_quote_announce_failed")

    after_commit(session, _announce)
    return DealerQuoteRead.model_validate(row)


@router.post("/quote-requests/{request_id}/withdraw", responses=responses(NotFound, Conflict))
async def withdraw_quote(
    request_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    state: StateDep,
    principal: DealerKey,
) -> dict[str, int]:
    """Withdraw the live quote before the deadline, while the desk has not yet quoted the
    client on it (signed; the body may be `{}`)."""
    req = await _own_request(session, principal, request_id)
    await _verified_body(request, state, session, req.dealer_id)
    rfq_state = await _locked_rfq_state(session, req)  # before the request's: see submit_quote
    req = await _own_request(session, principal, request_id, lock=True)
    if rfq_state != RfqState.QUOTING.value:
        raise Conflict(
            f"the client has been quoted on this request (the RFQ is {rfq_state}): its quote is"
            " firm until the RFQ closes",
            code="quote_firm",
        )
    try:
        return {"withdrawn": await withdraw(session, req, datetime.now(UTC))}
    except QuoteRefused as exc:
        raise Conflict(str(exc), code="deadline_passed") from exc
