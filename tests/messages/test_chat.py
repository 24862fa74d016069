"""Tried as a chat bot would: quote, "mine", "pass", and a line missing its size."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.domain.expiries import format_expiry_code
from app.models import ChatMessage, Rfq
from ml.intent.labels import Intent, Tag
from ml.intent.normalise import TaggedSpan, normalise
from tests.conftest import CI, KeyMaker
from tests.factories import expiry

MONTHLY = expiry(2)  # a monthly expiry comfortably ahead of today
MONTH = MONTHLY.strftime("%b")


@pytest.fixture(autouse=True)
def _needs_model(app: FastAPI) -> None:
    if app.state.rfqdesk.services["messages"].parser is None:
        if CI:
            pytest.fail("the committed intent model artifact is missing")
        pytest.skip("no intent model artifact under ml/artifacts/intent")


async def say(
    client: httpx.AsyncClient, headers: dict[str, str], conversation: str, text: str
) -> dict:
    resp = await client.post(
        "/v1/messages", json={"conversation_id": conversation, "text": text}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_price_then_mine_gets_filled(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    bot = await auth(Role.BOT)
    first = await say(client, bot, "c-1", f"hi, 2-way in 100x BTC {MONTH} 70/80 call spread please")
    assert first["intent"] == "rfq"
    assert first["action"] == "quoted", first
    assert first["rfq"]["structure"] == "call_spread"
    assert first["rfq"]["quantity"] == 100
    assert first["rfq"]["channel"] == "chat"
    # the reply names the legs as priced, so the client can check what the desk read
    legs = first["rfq"]["legs"]
    strikes = sorted(int(float(leg["strike"])) for leg in legs)
    assert strikes == [70000, 80000]
    assert {leg["expiry"] for leg in legs} == {MONTHLY.isoformat()}
    code = format_expiry_code(MONTHLY)
    assert f"(+BTC-{code}-70000-C -BTC-{code}-80000-C):" in first["reply"], first["reply"]
    done = await say(client, bot, "c-1", "mine")
    assert done["intent"] == "accept"
    assert done["action"] == "accepted", done
    assert done["rfq"]["state"] == "filled"
    assert done["rfq"]["accepted_side"] == "buy"
    logged = (
        await session.scalars(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == "c-1")
            .order_by(ChatMessage.created_at)
        )
    ).all()
    assert [m.outcome for m in logged] == ["quoted", "accepted"]
    assert all(m.model_version and m.parse for m in logged)


async def test_pass_ends_with_the_rfq_passed(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    bot = await auth(Role.BOT)
    quoted = await say(client, bot, "c-2", f"px on 300 ETH {MONTH} 3000 puts")
    assert quoted["action"] == "quoted", quoted
    passed = await say(client, bot, "c-2", "pass, thanks")
    assert passed["intent"] == "decline"
    assert passed["action"] == "passed"
    state = await session.scalar(select(Rfq.state).where(Rfq.conversation_id == "c-2"))
    assert state == "passed"


async def test_a_line_without_size_gets_a_question_not_an_rfq(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    bot = await auth(Role.BOT)
    before = await session.scalar(select(func.count()).select_from(Rfq))
    answer = await say(client, bot, "c-3", f"where's your offer in BTC {MONTH} 80k calls")
    assert answer["action"] == "clarify"
    assert [q["field"] for q in answer["needs_clarification"]] == ["quantity"]
    assert answer["reply"].endswith("?")
    assert await session.scalar(select(func.count()).select_from(Rfq)) == before


async def test_chatter_is_logged_and_nothing_is_done(
    client: httpx.AsyncClient, auth: KeyMaker
) -> None:
    answer = await say(client, await auth(Role.BOT), "c-4", "how was the weekend?")
    assert answer["intent"] == "other"
    assert answer["action"] == "none"


async def _quoted(
    client: httpx.AsyncClient, bot: dict[str, str], conversation: str, size: int
) -> dict:
    quoted = await say(client, bot, conversation, f"2-way in {size}x BTC {MONTH} 70/80 call spread")
    assert quoted["action"] == "quoted", quoted
    return quoted


async def _asked_not_done(
    client: httpx.AsyncClient, bot: dict[str, str], session: AsyncSession, line: str, field: str
) -> None:
    """A quote, then ``line``: a question about ``field``, and the RFQ still quoted."""
    conversation = f"c-{uuid.uuid4().hex[:8]}"
    quoted = await _quoted(client, bot, conversation, 100)
    answer = await say(client, bot, conversation, line)
    assert answer["action"] == "clarify"
    assert [q["field"] for q in answer["needs_clarification"]] == [field]
    assert await _state(session, quoted["rfq"]["id"]) == "quoted"


async def _state(session: AsyncSession, rfq_id: str) -> str | None:
    session.expunge_all()
    return await session.scalar(select(Rfq.state).where(Rfq.id == uuid.UUID(rfq_id)))


@pytest.mark.parametrize(("intent", "spans"), [("accept", [("SELL", 0.2)]), ("decline", [])])
async def test_a_follow_up_the_model_is_unsure_of_is_asked_not_done(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth: KeyMaker,
    session: AsyncSession,
    intent: str,
    spans: list[tuple[str, float]],
) -> None:
    service = app.state.rfqdesk.services["messages"]
    real = service.parser

    class Unsure:  # the real parser, but its intent head gives the follow-up 0.35
        version = real.version

        def parse(self, text: str, as_of: date) -> dict:
            if text != "yours?":
                return real.parse(text, as_of)
            tagged = [TaggedSpan(Tag(tag), "yours", 0, p) for tag, p in spans]
            return normalise(Intent(intent), 0.35, tagged, as_of, 0.5, text)

    service.parser = Unsure()
    await _asked_not_done(client, await auth(Role.BOT), session, "yours?", "intent")


async def test_mine_answers_the_latest_quote_only_never_an_older_one(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    bot = await auth(Role.BOT)
    older = await _quoted(client, bot, "c-dup", 100)
    latest = await _quoted(client, bot, "c-dup", 200)
    assert (await say(client, bot, "c-dup", "mine"))["action"] == "accepted"
    again = await say(client, bot, "c-dup", "mine")  # the bot forwarded it twice
    assert again["action"] == "none"
    assert "no live quote" in again["reply"]
    assert await _state(session, latest["rfq"]["id"]) == "filled"
    assert await _state(session, older["rfq"]["id"]) == "quoted"


async def test_mine_with_a_size_is_asked_not_filled_in_full(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    await _asked_not_done(client, await auth(Role.BOT), session, "mine for 50", "quantity")


async def test_legs_read_outside_an_rfqs_limits_are_refused_not_a_500(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    bot = await auth(Role.BOT)
    before = await session.scalar(select(func.count()).select_from(Rfq))
    answer = await say(
        client, bot, "c-ratio", f"buy 1 BTC {MONTH} 70k calls and sell 200 BTC {MONTH} 80k calls"
    )
    assert answer["action"] == "rejected"
    assert answer["error"]["field"].startswith("legs"), answer["error"]
    assert await session.scalar(select(func.count()).select_from(Rfq)) == before


def test_the_reply_writes_each_leg_with_its_direction_and_ratio() -> None:
    from types import SimpleNamespace

    from app.domain.enums import Direction
    from app.messages.service import _legs_line

    legs = [
        SimpleNamespace(direction=Direction.BUY, ratio=1, instrument="BTC-25DEC26-60000-C"),
        SimpleNamespace(direction=Direction.SELL, ratio=2, instrument="BTC-25DEC26-65000-C"),
    ]
    assert _legs_line(SimpleNamespace(legs=legs)) == (  # type: ignore[arg-type]
        "+BTC-25DEC26-60000-C -2x BTC-25DEC26-65000-C"
    )
