from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Money, UTCDateTime, utcnow
from app.models._mixins import IdMixin


class Rfq(IdMixin, Base):
    """A client's request for quote on one package."""

    __tablename__ = "rfq"
    __table_args__ = (
        Index("ix_rfq_created_at_id", "created_at", "id"),
        Index("ix_rfq_state_expires_at", "state", "expires_at"),
    )

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(24), default="new")
    client: Mapped[str | None] = mapped_column(String(120), default=None, index=True)
    channel: Mapped[str] = mapped_column(String(8), default="api")
    conversation_id: Mapped[str | None] = mapped_column(String(120), default=None, index=True)
    underlying: Mapped[str] = mapped_column(String(16), index=True)
    structure: Mapped[str] = mapped_column(String(24))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal] = mapped_column(Money)
    hedge_reference: Mapped[Decimal | None] = mapped_column(Money, default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("api_key.id"), default=None
    )
    state_reason: Mapped[str | None] = mapped_column(Text, default=None)
    accepted_side: Mapped[str | None] = mapped_column(String(8), default=None)
    filled_quantity: Mapped[Decimal | None] = mapped_column(Money, default=None)
    #: what dealers did not cover on an accepted RFQ (the desk's, for the execution plan)
    residual_quantity: Mapped[Decimal | None] = mapped_column(Money, default=None)
    #: bumped on every update (optimistic lock); a state event takes the version it produced as
    #: its sequence number, so events sort in the order the transitions happened
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    legs: Mapped[list[RfqLeg]] = relationship(
        back_populates="rfq",
        lazy="raise",
        order_by="RfqLeg.leg_index",
        cascade="all, delete-orphan",
    )
    events: Mapped[list[RfqEvent]] = relationship(
        lazy="raise", order_by="RfqEvent.seq", cascade="all, delete-orphan"
    )


class RfqLeg(IdMixin, Base):
    __tablename__ = "rfq_leg"

    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    leg_index: Mapped[int] = mapped_column(Integer)
    instrument: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date] = mapped_column(Date)
    strike: Mapped[Decimal] = mapped_column(Money)
    option_type: Mapped[str] = mapped_column(String(4))
    ratio: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(4))

    rfq: Mapped[Rfq] = relationship(back_populates="legs", lazy="raise")


class RfqEvent(IdMixin, Base):
    """One state transition of an RFQ: the audit trail of its lifecycle."""

    __tablename__ = "rfq_event"

    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str | None] = mapped_column(String(120), default=None)
