from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, UTCDateTime, utcnow
from app.models._mixins import IdMixin


class Fill(IdMixin, Base):
    """A trade: the client's fill, and the offsetting dealer or venue fills behind it."""

    __tablename__ = "fill"
    __table_args__ = (Index("ix_fill_counterparty_filled_at", "counterparty", "filled_at"),)

    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # client: the desk's trade with the client; dealer: cover from a dealer; desk: principal risk
    counterparty: Mapped[str] = mapped_column(String(8))
    dealer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("dealer.id"), default=None)
    dealer_quote_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("dealer_quote.id"), default=None
    )
    side: Mapped[str] = mapped_column(String(4))  # the desk's side of the package
    quantity: Mapped[Decimal] = mapped_column(Money)
    price_coin: Mapped[Decimal] = mapped_column(Money)
    price_usd: Mapped[Decimal] = mapped_column(Money)
