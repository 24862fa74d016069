from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, UTCDateTime, utcnow
from app.models._mixins import CreatedAtMixin, IdMixin


class ExecutionPlan(IdMixin, CreatedAtMixin, Base):
    """A residual worked over lit venues: the schedule and where it stands."""

    __tablename__ = "execution_plan"

    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="working")
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Money)
    arrival_price_coin: Mapped[Decimal | None] = mapped_column(Money, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ChildOrder(IdMixin, CreatedAtMixin, Base):
    """One order sent to a venue for a slice of a plan; client_order_id makes resends idempotent."""

    __tablename__ = "child_order"

    plan_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("execution_plan.id", ondelete="CASCADE"), index=True
    )
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    slice_index: Mapped[int] = mapped_column(Integer)
    venue: Mapped[str] = mapped_column(String(32))
    instrument: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Money)
    limit_price: Mapped[Decimal | None] = mapped_column(Money, default=None)
    state: Mapped[str] = mapped_column(String(16), default="new")
    filled_quantity: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    avg_price: Mapped[Decimal | None] = mapped_column(Money, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
