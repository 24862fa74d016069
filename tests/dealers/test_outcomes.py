"""What becomes of the dealer side when the RFQ ends: fills and won/lost quotes, the models'
dealer statistics, expiry seen by a read, a failed reply after a quote posted back, and a
dealer's per-leg prices out of range. On SQLite and PostgreSQL.

Each test quotes an RFQ from the model (no dealer registered yet), then attaches dealer requests
and quotes as the fan-out records them (request ``quoted``, quote ``live``)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.dealers.client import CallResult
from app.dealers.signing import signed_headers
from app.events import drain_after_commit, unit_of_work
from app.models import Dealer, DealerQuote, DealerRequest, Fill, Rfq, RfqLeg
from app.rfq.repository import RfqRepository
from tests.conftest import KeyMaker
from tests.factories import call_spread

SECRET = "s" * 32


async def _quoted_with_dealers(
    client: httpx.AsyncClient,
    auth: KeyMaker,
    session: AsyncSession,
    side: str,
    offers: list[tuple[str, str]],
) -> tuple[dict[str, Any], dict[str, str], list[Dealer]]:
    """A quoted RFQ and one dealer per ``(improvement, size)``: its quote on the client's side
    is the client's price improved by ``improvement`` coin (negative: worse than the client's)."""
    sales = await auth(Role.SALES)
    resp = await client.post(
        "/v1/rfqs", json=call_spread(side=side, quantity=250, expires_in_ms=60_000), headers=sales
    )
    assert resp.status_code == 201, resp.text
    rfq = resp.json()
    shown = rfq["quotes"][0]
    now = datetime.now(UTC)
    dealers = []
    for i, (improvement, size) in enumerate(offers):
        dealer = Dealer(
            name=f"d{i}-{uuid.uuid4().hex[:5]}",
            endpoint_url="http://127.0.0.1:1/q",
            underlyings=["BTC"],
            webhook_secret=SECRET,
        )
        session.add(dealer)
        await session.flush()
        dealers.append(dealer)
        req = DealerRequest(
            rfq_id=uuid.UUID(rfq["id"]),
            dealer_id=dealer.id,
            created_at=now,
            rank=i + 1,
            selected=True,
            sent_at=now,
            deadline_at=now,
            outcome="quoted",
            first_quote_at=now,
        )
        session.add(req)
        await session.flush()
        if side == "buy":  # the desk buys from the dealers at their ask
            ask = Decimal(str(shown["ask_coin"])) - Decimal(improvement)
            bid = ask - Decimal("0.002")
        else:
            bid = Decimal(str(shown["bid_coin"])) + Decimal(improvement)
            ask = bid + Decimal("0.002")
        session.add(
            DealerQuote(
                dealer_request_id=req.id,
                rfq_id=req.rfq_id,
                dealer_id=dealer.id,
                received_at=now + timedelta(milliseconds=i),
                bid_coin=bid,
                ask_coin=ask,
                size=Decimal(size),
                firm=True,
                status="live",
            )
        )
    await session.commit()
    return rfq, sales, dealers


def _told(app: FastAPI) -> list[dict[str, Any]]:
    """Replace the outcome notices to dealers by a record of them."""
    told: list[dict[str, Any]] = []

    async def notify(_url: str, _secret: str, message: dict[str, Any], _timeout: float) -> bool:
        told.append(message)
        return True

    app.state.rfqdesk.services["rfq"].filler.client.notify = notify
    return told


class TestFill:
    async def test_filled_quotes_are_won_the_others_lost_and_losers_hear_the_traded_price(
        self, app: FastAPI, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        told = _told(app)
        # two within the client's price (100 each), one outside it
        rfq, sales, _ = await _quoted_with_dealers(
            client, auth, session, "sell", [("0.0010", "100"), ("0.0005", "100"), ("-0.01", "500")]
        )
        resp = await client.post(
            f"/v1/rfqs/{rfq['id']}/accept", json={"side": "sell"}, headers=sales
        )
        assert resp.status_code == 200, resp.text
        await drain_after_commit()
        rid = uuid.UUID(rfq["id"])
        session.expunge_all()
        fills = (await session.scalars(select(Fill).where(Fill.rfq_id == rid))).all()
        quotes = {
            q.id: q
            for q in await session.scalars(select(DealerQuote).where(DealerQuote.rfq_id == rid))
        }
        filled = {f.dealer_quote_id: f for f in fills if f.counterparty == "dealer"}
        assert sorted(f.quantity for f in filled.values()) == [100, 100]
        assert {q.status for i, q in quotes.items() if i in filled} == {"won"}
        assert [q.status for i, q in quotes.items() if i not in filled] == ["lost"]
        best = max(quotes[i].bid_coin for i in filled)  # the desk sells to the highest bid
        results = sorted((m["result"], m.get("cover_price")) for m in told)
        assert results == [("lost", float(best)), ("won", None), ("won", None)]

    async def test_when_no_dealer_quote_is_within_the_clients_price_losers_hear_no_cover(
        self, app: FastAPI, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        told = _told(app)
        rfq, sales, _ = await _quoted_with_dealers(client, auth, session, "buy", [("-0.01", "50")])
        resp = await client.post(
            f"/v1/rfqs/{rfq['id']}/accept", json={"side": "buy"}, headers=sales
        )
        assert resp.status_code == 200, resp.text
        await drain_after_commit()
        assert [(m["result"], m.get("cover_price")) for m in told] == [("lost", None)]

    async def test_a_dealer_fill_moves_that_dealers_inventory_in_the_model_statistics(
        self, app: FastAPI, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        _told(app)
        store = app.state.rfqdesk.services["models"].store
        rfq, sales, dealers = await _quoted_with_dealers(
            client, auth, session, "buy", [("0.0010", "100"), ("-0.01", "100")]
        )
        winner, loser = (d.name for d in dealers)
        resp = await client.post(
            f"/v1/rfqs/{rfq['id']}/accept", json={"side": "buy"}, headers=sales
        )
        assert resp.status_code == 200, resp.text
        await drain_after_commit()
        now = time.time()
        # the desk bought from the winner: the dealer sold the package, so it is short vega
        assert store.dealer_inventory(winner, "BTC", now) < 0
        assert store.dealer_inventory(loser, "BTC", now) == 0


class TestEnding:
    @pytest.mark.parametrize("found_by", ["read", "sweeper"])
    async def test_an_expired_rfqs_dealer_side_closes_and_the_quoting_dealers_are_told(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        auth: KeyMaker,
        session: AsyncSession,
        found_by: str,
    ) -> None:
        told = _told(app)
        rfq, sales, _ = await _quoted_with_dealers(client, auth, session, "buy", [("0.001", "100")])
        rid = uuid.UUID(rfq["id"])
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Rfq).where(Rfq.id == rid).values(expires_at=past))
        await session.commit()
        if found_by == "read":
            got = await client.get(f"/v1/rfqs/{rid}", headers=sales)
            assert got.json()["state"] == "expired"
        else:
            service = app.state.rfqdesk.services["rfq"]
            async with unit_of_work(app.state.rfqdesk.sessionmaker) as swept:
                assert await service.expire_due(swept) == [rid]
        await drain_after_commit()
        session.expunge_all()
        requests = await session.scalars(select(DealerRequest).where(DealerRequest.rfq_id == rid))
        quotes = await session.scalars(select(DealerQuote).where(DealerQuote.rfq_id == rid))
        assert [r.outcome for r in requests] == ["lost"]
        assert [q.status for q in quotes] == ["expired"]
        assert [(m["rfq_id"], m["result"], m.get("cover_price")) for m in told] == [
            (str(rid), "lost", None)
        ]

    async def test_a_failed_reply_after_a_quote_posted_back_leaves_the_request_quoted(
        self, app: FastAPI, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        rfq, _, _ = await _quoted_with_dealers(client, auth, session, "buy", [("0.001", "10")])
        rid = uuid.UUID(rfq["id"])
        fanout = app.state.rfqdesk.services["rfq"].fanout
        loaded = await RfqRepository(session).get(rid)
        assert loaded is not None
        req = (
            await session.scalars(select(DealerRequest).where(DealerRequest.rfq_id == rid))
        ).one()
        for failed in (CallResult("error", error="ConnectError: reset"), CallResult("declined")):
            await fanout.collect(session, loaded, {req.id: failed}, loaded.created_at)
            await session.commit()
            session.expunge_all()
            req = (
                await session.scalars(select(DealerRequest).where(DealerRequest.rfq_id == rid))
            ).one()
            quote = (
                await session.scalars(select(DealerQuote).where(DealerQuote.rfq_id == rid))
            ).one()
            assert (req.outcome, req.error, quote.status) == ("quoted", None, "live")
            loaded = await RfqRepository(session).get(rid)
            assert loaded is not None


class TestPerLegPrices:
    async def test_a_leg_price_beyond_the_package_limits_is_a_422_and_nothing_is_stored(
        self, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        rfq, _, _ = await _quoted_with_dealers(client, auth, session, "buy", [("0.001", "10")])
        rid = uuid.UUID(rfq["id"])
        req = (
            await session.scalars(select(DealerRequest).where(DealerRequest.rfq_id == rid))
        ).one()
        legs = (await session.scalars(select(RfqLeg).where(RfqLeg.rfq_id == rid))).all()
        key = await auth(Role.DEALER, dealer_id=req.dealer_id)
        path = f"/v1/dealer/quote-requests/{req.id}/quotes"
        for price in (1e30, "0.00000000001"):  # 15 integer digits too many; 11 decimal places
            quote = {
                "size": 10,
                "legs": [{"instrument": leg.instrument, "bid": price} for leg in legs],
            }
            body = json.dumps(quote).encode()
            headers = key | signed_headers(SECRET, body, target=f"POST {path}")
            resp = await client.post(path, content=body, headers=headers)
            assert resp.status_code == 422, resp.text
            assert resp.json()["field"] == "legs[0].bid", resp.text
        session.expunge_all()
        quotes = await session.scalars(select(DealerQuote).where(DealerQuote.rfq_id == rid))
        assert len(quotes.all()) == 1  # the one attached above


async def test_a_request_never_sent_for_lack_of_time_is_skipped_not_unanswered(
    app: FastAPI, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    rfq, _, _ = await _quoted_with_dealers(client, auth, session, "buy", [("0.001", "10")])
    rid = uuid.UUID(rfq["id"])
    req = (await session.scalars(select(DealerRequest).where(DealerRequest.rfq_id == rid))).one()
    req.outcome, req.first_quote_at = "pending", None
    await session.execute(
        update(DealerQuote).where(DealerQuote.rfq_id == rid).values(status="withdrawn")
    )
    await session.commit()
    loaded = await RfqRepository(session).get(rid)
    assert loaded is not None
    late = CallResult("not_sent", error="not sent: the deadline had passed at the desk")
    await app.state.rfqdesk.services["rfq"].fanout.collect(
        session, loaded, {req.id: late}, loaded.created_at
    )
    await session.commit()
    session.expunge_all()
    req = (await session.scalars(select(DealerRequest).where(DealerRequest.rfq_id == rid))).one()
    assert (req.outcome, req.sent_at) == ("skipped", None)
    assert "deadline had passed" in (req.error or "")
