from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, UTCDateTime
from app.models._mixins import IdMixin


class MarketSnapshot(IdMixin, Base):
    """The market a quote was made on: spot, forwards and the vol surface at that time."""

    __tablename__ = "market_snapshot"
    __table_args__ = (Index("ix_market_snapshot_underlying_taken_at", "underlying", "taken_at"),)

    underlying: Mapped[str] = mapped_column(String(16))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))
    spot: Mapped[Decimal] = mapped_column(Money)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
