"""Chat intake: a line → the intent model → a new RFQ, an accept, a pass, or a question."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import anyio
import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.service import Principal
from app.domain.enums import Direction, Side
from app.domain.errors import DomainError
from app.domain.expiries import format_expiry_code
from app.domain.instruments import format_decimal
from app.errors import AppError, ServiceUnavailable, validation_summary
from app.events import unit_of_work
from app.messages.schemas import Clarification, MessageIn, MessageOut
from app.metrics import STAGE_LATENCY
from app.models import ChatMessage, Rfq
from app.rfq.lifecycle import RfqState
from app.rfq.schemas import AcceptBody, RfqCreate, RfqRead
from app.rfq.service import RfqService
from app.rfq.views import read_rfq, rfq_view

log = structlog.get_logger(__name__)


class Parser(Protocol):
    @property
    def version(self) -> str: ...

    def parse(self, text: str, as_of: date) -> dict[str, Any]: ...


def _rfq_body(rfq: dict[str, Any], client: str | None, expires_in_ms: int | None) -> RfqCreate:
    legs = [
        {
            "instrument": _instrument(rfq["underlying"], leg),
            "ratio": leg["ratio"],
            "direction": leg["direction"],
        }
        for leg in rfq["legs"]
    ]
    return RfqCreate.model_validate(
        {
            "underlying": rfq["underlying"],
            "structure": rfq["structure"],
            "side": rfq["side"],
            "quantity": rfq["quantity"],
            "legs": legs,
            "hedge_reference": rfq.get("hedge_reference"),
            "client": client,
            "expires_in_ms": expires_in_ms,
        }
    )


def _instrument(underlying: str, leg: dict[str, Any]) -> str:
    expiry = date.fromisoformat(leg["expiry"])
    kind = "C" if leg["option_type"] == "call" else "P"
    strike = format_decimal(Decimal(str(leg["strike"])))
    return f"{underlying}-{format_expiry_code(expiry)}-{strike}-{kind}"


class MessageService:
    def __init__(
        self, rfqs: RfqService, parser: Parser | None, limiter: anyio.CapacityLimiter | None = None
    ) -> None:
        self.rfqs = rfqs
        self.parser = parser
        self.limiter = limiter or anyio.CapacityLimiter(1)

    async def handle(
        self, maker: async_sessionmaker[AsyncSession], body: MessageIn, principal: Principal
    ) -> MessageOut:
        if self.parser is None:
            raise ServiceUnavailable("the intent model is not loaded")
        parser = self.parser
        as_of = body.as_of or datetime.now(UTC).date()
        started = time.perf_counter()
        parse = await anyio.to_thread.run_sync(parser.parse, body.text, as_of, limiter=self.limiter)
        STAGE_LATENCY.labels("parse").observe(time.perf_counter() - started)
        intent = parse["intent"]
        out = MessageOut(
            message_id=uuid.uuid4(),
            intent=intent,
            action="none",
            reply="",
            parse=parse,
            model_version=parser.version,
        )
        try:
            if intent == "rfq":
                await self._rfq(maker, body, principal, parse, out)
            elif intent in ("accept", "decline"):
                await self._follow_up(maker, body, principal, parse, out)
            else:
                out.reply = "Noted."
        except AppError as exc:
            out.action = "rejected"
            out.error = {"code": exc.code, "detail": exc.detail, "field": exc.field}
            out.reply = f"Sorry, I can't do that: {exc.detail}"
        async with unit_of_work(maker) as session:
            session.add(
                ChatMessage(
                    id=out.message_id,
                    conversation_id=body.conversation_id,
                    text=body.text,
                    as_of=as_of,
                    intent=intent,
                    parse=parse,
                    model_version=parser.version,
                    outcome=out.action,
                    rfq_id=out.rfq.id if out.rfq else None,
                )
            )
        log.info(
            "chat_message", conversation_id=body.conversation_id, intent=intent, action=out.action
        )
        return out

    async def _rfq(
        self,
        maker: async_sessionmaker[AsyncSession],
        body: MessageIn,
        principal: Principal,
        parse: dict[str, Any],
        out: MessageOut,
    ) -> None:
        if _asked_back(parse, out):
            return
        try:
            request = _rfq_body(parse["rfq"], body.client or principal.name, None)
        except ValidationError as exc:  # read, but outside what an RFQ may be (a 1x200 ratio)
            field, detail = validation_summary(exc.errors())
            out.action = "rejected"
            out.error = {"code": "validation_error", "detail": detail, "field": field}
            out.reply = f"Sorry, I can't quote that: {detail}"
            return
        try:
            created = await self.rfqs.create(
                maker,
                request,
                principal,
                channel="chat",
                conversation_id=body.conversation_id,
            )
        except DomainError as exc:
            out.action, out.error = (
                "rejected",
                {"code": exc.code, "detail": exc.reason, "field": exc.field},
            )
            out.reply = f"Sorry, I can't quote that: {exc.reason}"
            return
        view = rfq_view(
            created.rfq,
            [created.quote] if created.quote else [],
            created.dealer_requests,
            created.dealer_quotes,
        )
        out.rfq, out.action = view, "quoted"
        out.reply = _quote_line(view)

    async def _follow_up(
        self,
        maker: async_sessionmaker[AsyncSession],
        body: MessageIn,
        principal: Principal,
        parse: dict[str, Any],
        out: MessageOut,
    ) -> None:
        if _asked_back(parse, out):  # an accept or a pass the model is unsure of: never done
            return
        async with unit_of_work(maker) as session:
            # the conversation's latest RFQ only: "mine" answers the last quote shown, never an
            # older one still live (a forwarded duplicate would otherwise trade it)
            rfq = await session.scalar(
                select(Rfq)
                .where(Rfq.conversation_id == body.conversation_id)
                .order_by(Rfq.created_at.desc(), Rfq.id.desc())
                .limit(1)
            )
            if rfq is None or rfq.state != RfqState.QUOTED.value:
                out.reply = (
                    "There is no live quote in this conversation."
                    if rfq is None or rfq.state != RfqState.QUOTING.value
                    else "The latest request is still being priced."
                )
                return
            rfq_id = rfq.id
            if parse["intent"] == "decline":
                await self.rfqs.pass_(session, rfq_id, principal, "client passed in chat")
                out.action, out.reply = "passed", "Understood, nothing done."
            else:
                side = parse.get("side") or (rfq.side if rfq.side != Side.TWO_WAY.value else None)
                if side is None:
                    out.action = "clarify"
                    out.needs_clarification = [
                        Clarification(
                            field="side",
                            question="Are you buying (my offer) or selling (my bid)?",
                            candidates=["buy", "sell"],
                        )
                    ]
                    out.reply = out.needs_clarification[0].question
                    return
                await self.rfqs.accept(session, rfq_id, AcceptBody(side=Side(side)), principal)
                out.action = "accepted"
        async with maker() as session:
            out.rfq = await read_rfq(self.rfqs, session, rfq_id)
        if out.action == "accepted":
            out.reply = (
                f"Done: you {'buy' if out.rfq.accepted_side == 'buy' else 'sell'} "
                f"{out.rfq.filled_quantity} {out.rfq.underlying} {out.rfq.structure}."
            )


def _asked_back(parse: dict[str, Any], out: MessageOut) -> bool:
    """Turn the parse's clarifications, if any, into the reply; whether there were any."""
    questions = parse.get("needs_clarification") or []
    if questions:
        out.action = "clarify"
        out.needs_clarification = [Clarification.model_validate(q) for q in questions]
        out.reply = " ".join(q["question"] for q in questions)
    return bool(questions)


def _quote_line(view: RfqRead) -> str:
    q = view.quotes[0] if view.quotes else None
    if q is None:
        return "Working on it."
    bid = f"{q.bid_coin}" if q.bid_coin is not None else "-"
    ask = f"{q.ask_coin}" if q.ask_coin is not None else "-"
    name = view.structure.value.replace("_", " ")
    return f"{view.underlying} {name} x{view.quantity} ({_legs_line(view)}): {bid} / {ask}"


def _legs_line(view: RfqRead) -> str:
    """The legs as priced, for the structure's buyer, by venue instrument name
    ("+BTC-25DEC26-70000-C -BTC-25DEC26-80000-C", a ratio as "-2x BTC-…"): the client sees
    the expiry and strikes the desk read from the line, an expiry read as its listed Friday
    included."""
    return " ".join(
        f"{'+' if leg.direction is Direction.BUY else '-'}"
        f"{f'{leg.ratio}x ' if leg.ratio != 1 else ''}{leg.instrument}"
        for leg in view.legs
    )
