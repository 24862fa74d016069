"""All SQL touching RFQs, their legs and their state events."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.models import ClientQuote, DealerQuote, DealerRequest, Rfq, RfqEvent
from app.rfq.lifecycle import EXPIRABLE, RfqState


@dataclass(frozen=True)
class RfqFilter:
    states: tuple[RfqState, ...] = ()  # any of them (none: every state)
    underlying: str | None = None
    structure: str | None = None
    client: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(rfq: Rfq) -> str:
    raw = f"{rfq.created_at.isoformat()}|{rfq.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raise ValueError on anything that is not a cursor this service made."""
    padded = cursor + "=" * (-len(cursor) % 4)
    created, rid = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    when = datetime.fromisoformat(created)
    if when.tzinfo is None:
        raise ValueError("naive cursor time")
    return when, uuid.UUID(rid)


class RfqRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, rfq_id: uuid.UUID, *, for_update: bool = False) -> Rfq | None:
        stmt = (
            select(Rfq)
            .where(Rfq.id == rfq_id)
            .options(joinedload(Rfq.legs), joinedload(Rfq.events))
            .execution_options(populate_existing=True)
        )
        if for_update:
            stmt = stmt.with_for_update(of=Rfq)
        rfq: Rfq | None = (await self.session.scalars(stmt)).unique().one_or_none()
        return rfq

    async def quotes(self, rfq_id: uuid.UUID) -> Sequence[ClientQuote]:
        rows = await self.session.scalars(
            select(ClientQuote).where(ClientQuote.rfq_id == rfq_id).order_by(ClientQuote.created_at)
        )
        return rows.all()

    async def count_by_state(self) -> dict[str, int]:
        rows = await self.session.execute(select(Rfq.state, func.count()).group_by(Rfq.state))
        return {state: int(n) for state, n in rows.all()}

    async def dealer_activity(
        self, rfq_id: uuid.UUID
    ) -> tuple[Sequence[DealerRequest], Sequence[DealerQuote]]:
        requests = await self.session.scalars(
            select(DealerRequest).where(DealerRequest.rfq_id == rfq_id).order_by(DealerRequest.rank)
        )
        return requests.all(), await self.dealer_quotes(rfq_id)

    async def dealer_quotes(self, rfq_id: uuid.UUID) -> Sequence[DealerQuote]:
        """Every dealer quote on the RFQ (live, replaced, withdrawn, refused), oldest first."""
        quotes = await self.session.scalars(
            select(DealerQuote)
            .where(DealerQuote.rfq_id == rfq_id)
            .order_by(DealerQuote.received_at)
        )
        return quotes.all()

    async def page(
        self, flt: RfqFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[Rfq], str | None]:
        """Newest first, keyset-paginated on (created_at, id)."""
        stmt = select(Rfq)
        conds: list[ColumnElement[bool]] = []
        if flt.states:
            conds.append(Rfq.state.in_([s.value for s in flt.states]))
        if flt.underlying is not None:
            conds.append(Rfq.underlying == flt.underlying)
        if flt.structure is not None:
            conds.append(Rfq.structure == flt.structure)
        if flt.client is not None:
            conds.append(Rfq.client == flt.client)
        if flt.channel is not None:
            conds.append(Rfq.channel == flt.channel)
        if flt.since is not None:
            conds.append(Rfq.created_at >= flt.since)
        if flt.until is not None:
            conds.append(Rfq.created_at < flt.until)
        if cursor is not None:
            at, rid = decode_cursor(cursor)
            conds.append(or_(Rfq.created_at < at, and_(Rfq.created_at == at, Rfq.id < rid)))
        if conds:
            stmt = stmt.where(*conds)
        stmt = stmt.order_by(Rfq.created_at.desc(), Rfq.id.desc()).limit(limit + 1)
        rows = list((await self.session.scalars(stmt)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]) if more and rows else None)

    async def expire_due(self, now: datetime, *, limit: int = 500) -> list[tuple[uuid.UUID, str]]:
        """Expire RFQs past their deadline (locked rows are left to whoever holds them); the
        ids expired, each with the state it left."""
        expirable = [s.value for s in EXPIRABLE]
        due = (
            await self.session.execute(
                select(Rfq.id, Rfq.state, Rfq.version)
                .where(Rfq.state.in_(expirable), Rfq.expires_at <= now)
                .order_by(Rfq.expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not due:
            return []
        ids = [row.id for row in due]
        last_seq = dict(
            (
                await self.session.execute(
                    select(RfqEvent.rfq_id, func.max(RfqEvent.seq))
                    .where(RfqEvent.rfq_id.in_(ids))
                    .group_by(RfqEvent.rfq_id)
                )
            ).all()
        )
        await self.session.execute(
            update(Rfq)
            .where(Rfq.id.in_(ids))
            .values(
                state=RfqState.EXPIRED.value,
                version=Rfq.version + 1,
                updated_at=now,
                state_reason="deadline passed",
            )
            .execution_options(synchronize_session=False)
        )
        self.session.add_all(
            RfqEvent(
                rfq_id=row.id,
                seq=(last_seq.get(row.id) or 0) + 1,
                at=now,
                from_state=row.state,
                to_state=RfqState.EXPIRED.value,
                reason="deadline passed",
                actor="sweeper",
            )
            for row in due
        )
        await self.session.execute(
            update(ClientQuote)
            .where(ClientQuote.rfq_id.in_(ids), ClientQuote.status == "live")
            .values(status="expired")
            .execution_options(synchronize_session=False)
        )
        return [(row.id, row.state) for row in due]

    async def expire_dealer_side(self, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Close the dealer side of RFQs that have just expired: their live dealer quotes
        expire, a request that quoted has lost, one still pending got no answer in time.
        Requests and quotes this session holds are updated too. Returns the requests that
        lost (their dealers are to be told)."""
        lost = list(
            (
                await self.session.scalars(
                    select(DealerRequest.id).where(
                        DealerRequest.rfq_id.in_(ids), DealerRequest.outcome == "quoted"
                    )
                )
            ).all()
        )
        # a request still pending here was cut short (e.g. the process died during fan-out)
        await self.session.execute(
            update(DealerRequest)
            .where(DealerRequest.rfq_id.in_(ids), DealerRequest.outcome == "pending")
            .values(outcome="no_response", error="the RFQ expired before an answer was recorded")
            .execution_options(synchronize_session="evaluate")
        )
        await self.session.execute(
            update(DealerQuote)
            .where(DealerQuote.rfq_id.in_(ids), DealerQuote.status == "live")
            .values(status="expired")
            .execution_options(synchronize_session="evaluate")
        )
        await self.session.execute(
            update(DealerRequest)
            .where(DealerRequest.rfq_id.in_(ids), DealerRequest.outcome == "quoted")
            .values(outcome="lost")
            .execution_options(synchronize_session="evaluate")
        )
        return lost
