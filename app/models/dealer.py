from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Money, UTCDateTime, utcnow
from app.models._mixins import CreatedAtMixin, IdMixin

if TYPE_CHECKING:
    from app.models.rfq import Rfq


class Dealer(IdMixin, CreatedAtMixin, Base):
    """A liquidity provider and how to reach it."""

    __tablename__ = "dealer"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    endpoint_url: Mapped[str] = mapped_column(String(500))
    underlyings: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_secret: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DealerRequest(IdMixin, Base):
    """One quote request sent (or considered and not sent) to one dealer for one RFQ."""

    __tablename__ = "dealer_request"
    __table_args__ = (
        Index("ix_dealer_request_dealer_id_created_at", "dealer_id", "created_at"),
        Index("ix_dealer_request_created_at", "created_at"),  # analytics: window scans
    )

    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    dealer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("dealer.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    selected: Mapped[bool] = mapped_column(Boolean, default=True)
    p_answer: Mapped[float | None] = mapped_column(Float, default=None)
    p_win: Mapped[float | None] = mapped_column(Float, default=None)
    model_version: Mapped[str | None] = mapped_column(String(80), default=None)
    disclosed_side: Mapped[str | None] = mapped_column(String(8), default=None)
    #: the desk's theo when the request went out (coin per unit): the centre of the price band
    theo_coin: Mapped[Decimal | None] = mapped_column(Money, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    first_quote_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # pending | quoted | no_response | error | declined | skipped | won | lost
    outcome: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    fill_quantity: Mapped[Decimal | None] = mapped_column(Money, default=None)

    # never loaded; orders the INSERT after its RFQ's when both are flushed together
    rfq: Mapped[Rfq] = relationship(lazy="raise")


class DealerQuote(IdMixin, Base):
    """A quote received from a dealer, accepted or refused (with the reason)."""

    __tablename__ = "dealer_quote"
    __table_args__ = (Index("ix_dealer_quote_received_at", "received_at"),)  # analytics

    dealer_request_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("dealer_request.id", ondelete="CASCADE"), index=True
    )
    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    dealer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("dealer.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    bid_coin: Mapped[Decimal | None] = mapped_column(Money, default=None)
    ask_coin: Mapped[Decimal | None] = mapped_column(Money, default=None)
    size: Mapped[Decimal | None] = mapped_column(Money, default=None)
    firm: Mapped[bool] = mapped_column(Boolean, default=True)
    legs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    # live | refused | replaced | withdrawn | expired | won | lost
    status: Mapped[str] = mapped_column(String(16), default="live")
    refusal_reason: Mapped[str | None] = mapped_column(Text, default=None)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
