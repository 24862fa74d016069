from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Money, UTCDateTime
from app.models._mixins import CreatedAtMixin, IdMixin

if TYPE_CHECKING:
    from app.models.market import MarketSnapshot
    from app.models.rfq import Rfq


class ClientQuote(IdMixin, CreatedAtMixin, Base):
    """A price shown to the client, with the snapshot and model that made it."""

    __tablename__ = "client_quote"

    rfq_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("rfq.id", ondelete="CASCADE"), index=True
    )
    snapshot_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("market_snapshot.id"), default=None
    )
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    theo_usd: Mapped[Decimal] = mapped_column(Money)
    theo_coin: Mapped[Decimal] = mapped_column(Money)
    bid_coin: Mapped[Decimal | None] = mapped_column(Money, default=None)
    ask_coin: Mapped[Decimal | None] = mapped_column(Money, default=None)
    bid_usd: Mapped[Decimal | None] = mapped_column(Money, default=None)
    ask_usd: Mapped[Decimal | None] = mapped_column(Money, default=None)
    p_hit_bid: Mapped[float | None] = mapped_column(Float, default=None)
    p_hit_ask: Mapped[float | None] = mapped_column(Float, default=None)
    model_version: Mapped[str | None] = mapped_column(String(80), default=None)
    # live | accepted | passed | expired | superseded
    status: Mapped[str] = mapped_column(String(16), default="live")
    greeks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # many-to-one links, never loaded (lazy="raise"): they let one flush order the INSERTs
    # (RFQ and snapshot first) when all three are written together
    rfq: Mapped[Rfq] = relationship(lazy="raise")
    snapshot: Mapped[MarketSnapshot | None] = relationship(lazy="raise")
