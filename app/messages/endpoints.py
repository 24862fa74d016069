"""Chat intake for bots: one line in, the desk's action and a reply out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth.keys import Role
from app.auth.service import Principal
from app.deps import StateDep, require
from app.errors import COMMON_ERRORS
from app.messages.schemas import MessageIn, MessageOut
from app.messages.service import MessageService

router = APIRouter(prefix="/v1/messages", tags=["messages"], responses=COMMON_ERRORS)
Bot = Annotated[Principal, Depends(require(Role.BOT))]


@router.post("")
async def post_message(body: MessageIn, state: StateDep, principal: Bot) -> MessageOut:
    """Parse a chat line: an RFQ is quoted, accept/decline act on the conversation's live quote,
    anything else is logged; a line missing a required field gets a question back."""
    service: MessageService = state.services["messages"]
    return await service.handle(state.sessionmaker, body, principal)
