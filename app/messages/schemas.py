from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.rfq.schemas import RfqRead
from app.schemas import StrictInput


class MessageIn(StrictInput):
    conversation_id: str = Field(min_length=1, max_length=120)
    text: str = Field(min_length=1, max_length=2000)
    as_of: date | None = Field(None, description="The message's date (default: today, UTC)")
    client: str | None = Field(None, max_length=120)


class Clarification(BaseModel):
    field: str
    question: str
    candidates: list[Any] = Field(default_factory=list)


class MessageOut(BaseModel):
    """What the desk made of a chat line and what it did about it."""

    message_id: uuid.UUID
    intent: Literal["rfq", "accept", "decline", "other"]
    action: Literal["quoted", "clarify", "accepted", "passed", "rejected", "none"]
    reply: str = Field(description="A line the bot can send back as is")
    parse: dict[str, Any]
    model_version: str
    needs_clarification: list[Clarification] = Field(default_factory=list)
    rfq: RfqRead | None = None
    error: dict[str, str | None] | None = None
