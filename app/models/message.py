from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models._mixins import CreatedAtMixin, IdMixin


class ChatMessage(IdMixin, CreatedAtMixin, Base):
    """A chat line, what the intent model made of it, and what was done (for retraining)."""

    __tablename__ = "chat_message"

    conversation_id: Mapped[str] = mapped_column(String(120), index=True)
    text: Mapped[str] = mapped_column(Text)
    as_of: Mapped[date] = mapped_column(Date)
    intent: Mapped[str | None] = mapped_column(String(16), default=None)
    parse: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    model_version: Mapped[str | None] = mapped_column(String(80), default=None)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    rfq_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("rfq.id"), default=None)
    corrected_parse: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
