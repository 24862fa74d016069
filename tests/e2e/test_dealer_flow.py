"""The whole flow on loopback: the real service and eight simulated dealers over HTTP.

One dealer never answers, one answers 500, one answers garbage, one answers after the deadline;
the RFQ must still be quoted by its deadline + 100 ms from the good quotes, every request must
end in the log with the right outcome, and accepting must fill exactly the accepted size.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from app import migrate
from app.auth.keys import Role
from app.auth.service import create_key
from app.config import DealerSettings, MlSettings, Settings
from app.db import create_engine, create_sessionmaker
from app.dealers.signing import signed_headers
from app.dealers.simulated import SimDealer, create_dealers_app, make_dealers, register_dealers
from app.main import create_app
from app.models import DealerQuote, Fill
from tests.factories import call_spread
from tests.servers import free_port, serve

DEADLINE_MS = 800  # generous: the 2-core CI box runs other suites beside this one
MODES = ["body", "body", "body", "callback", "silent", "error", "garbage", "late"]


@dataclass
class World:
    desk: str
    dealers: list[SimDealer]
    sales: dict[str, str]
    settings: Settings


async def _setup(settings: Settings, dealers: list[SimDealer], dealer_url: str) -> str:
    engine = create_engine(settings)
    maker = create_sessionmaker(engine)
    await register_dealers(maker, dealers, dealer_url, underlyings=("BTC",))
    async with maker() as s, s.begin():
        _, key = await create_key(s, role=Role.SALES, name="e2e-sales")
    await engine.dispose()
    return key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    db: Path = tmp_path_factory.mktemp("e2e") / "e2e.db"
    url = f"sqlite+aiosqlite:///{db}"
    migrate.upgrade(url)
    settings = Settings(
        database_url=url,
        log_level="CRITICAL",
        dealers=DealerSettings(deadline_ms=DEADLINE_MS, breaker_failures=100),
        ml=MlSettings(min_dealers=8),  # the ranking asks every dealer here
    )
    dealers = make_dealers(8, seed=5, modes=MODES)  # type: ignore[arg-type]
    for d in dealers:
        d.p_answer, d.latency_ms, d.max_size = 1.0, 30.0, 100.0
    dealer_port, desk_port = free_port(), free_port()
    key = asyncio.run(_setup(settings, dealers, f"http://127.0.0.1:{dealer_port}"))
    desk_url = f"http://127.0.0.1:{desk_port}"
    with (
        serve(create_dealers_app(dealers, desk_url), dealer_port),
        serve(create_app(settings), desk_port),
    ):
        yield World(desk_url, dealers, {"Authorization": f"Bearer {key}"}, settings)


def _rows(settings: Settings, model: type, **where: object) -> list:
    async def run() -> list:
        engine = create_engine(settings)
        async with create_sessionmaker(engine)() as s:
            stmt = select(model)
            for k, v in where.items():
                stmt = stmt.where(getattr(model, k) == v)
            rows = list((await s.scalars(stmt)).all())
        await engine.dispose()
        return rows

    return asyncio.run(run())


def _set_request(world: World, request_id: str, **values: object) -> None:
    """Change a dealer request's row behind the service (a state the flow reaches otherwise)."""
    from sqlalchemy import update

    from app.models import DealerRequest

    async def run() -> None:
        engine = create_engine(world.settings)
        async with create_sessionmaker(engine)() as s, s.begin():
            await s.execute(
                update(DealerRequest)
                .where(DealerRequest.id == uuid.UUID(request_id))
                .values(**values)
            )
        await engine.dispose()

    asyncio.run(run())


def _signed(secret: str, body: bytes, url: str, **kw: Any) -> dict[str, str]:
    """A dealer's signature of a POST to ``url`` (it covers the method and the path)."""
    return signed_headers(secret, body, target=f"POST {urlsplit(url).path}", **kw)


def _rfq(world: World, **over: object) -> dict:
    resp = httpx.post(
        f"{world.desk}/v1/rfqs", json=call_spread(**over), headers=world.sales, timeout=10
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_rfq_is_quoted_by_the_deadline_from_the_good_quotes(world: World) -> None:
    rfq = _rfq(world, side="two_way", quantity=250)
    assert rfq["state"] == "quoted"
    created = datetime.fromisoformat(rfq["created_at"])
    quoted = next(
        datetime.fromisoformat(e["at"]) for e in rfq["events"] if e["to_state"] == "quoted"
    )
    assert (quoted - created).total_seconds() <= (DEADLINE_MS + 100) / 1000
    names = {d.name: d.mode for d in world.dealers}
    by_mode: dict[str, set[str]] = {}
    ids = {r["dealer_id"]: r for r in rfq["dealer_requests"]}
    dealers = httpx.get(f"{world.desk}/v1/dealers", headers=world.sales).json()
    for d in dealers:
        by_mode.setdefault(names[d["name"]], set()).add(ids[d["id"]]["outcome"])
    assert by_mode == {
        "body": {"quoted"},
        "callback": {"quoted"},
        "silent": {"no_response"},
        "error": {"error"},
        "garbage": {"error"},
        "late": {"no_response"},
    }
    live = [q for q in rfq["dealer_quotes"] if q["status"] == "live"]
    assert len(live) == 4
    cover = rfq["quotes"][0]["explanation"]["dealer_cover"]
    assert set(cover) == {"bid", "ask"}


def test_a_late_quote_is_logged_as_refused(world: World) -> None:
    rfq = _rfq(world, side="buy", quantity=100)
    time.sleep(0.5)  # the late dealer answers 200 ms after the deadline
    late = _rows(world.settings, DealerQuote, rfq_id=uuid.UUID(rfq["id"]), status="refused")
    assert [q.refusal_reason for q in late] == ["deadline passed"]


def test_accept_fills_exactly_the_size_from_the_best_quotes(world: World) -> None:
    rfq = _rfq(world, side="buy", quantity=250)
    ask = rfq["quotes"][0]["ask_coin"]
    asks = sorted((q["ask_coin"], q["size"]) for q in rfq["dealer_quotes"] if q["status"] == "live")
    resp = httpx.post(
        f"{world.desk}/v1/rfqs/{rfq['id']}/accept", json={"side": "buy"}, headers=world.sales
    )
    assert resp.status_code == 200, resp.text
    done = resp.json()
    fills = _rows(world.settings, Fill, rfq_id=uuid.UUID(rfq["id"]))
    client = [f for f in fills if f.counterparty == "client"]
    dealer = [f for f in fills if f.counterparty == "dealer"]
    assert [(f.side, f.quantity, float(f.price_coin)) for f in client] == [
        ("sell", Decimal(250), ask)
    ]
    dealer_qty = sum((f.quantity for f in dealer), Decimal(0))
    assert dealer_qty + Decimal(str(done["residual_quantity"])) == Decimal(250)
    # best prices first, never above the client's price, sizes respected
    eligible = [(p, s) for p, s in asks if p <= ask]
    expected, left = [], Decimal(250)
    for price, size in eligible:
        take = min(left, Decimal(str(size)))
        if take > 0:
            expected.append((price, take))
            left -= take
    assert sorted((float(f.price_coin), f.quantity) for f in dealer) == expected
    won = [r for r in done["dealer_requests"] if r["outcome"] == "won"]
    assert sum(Decimal(str(r["fill_quantity"])) for r in won) == dealer_qty
    time.sleep(0.3)
    told = {
        m["result"] for d in world.dealers for m in (d.outcomes or []) if m["rfq_id"] == rfq["id"]
    }
    assert "won" in told or not dealer


def test_a_dealer_signature_is_good_for_one_request_only(world: World) -> None:
    """The same body posted to two requests in the same second is two quotes, not a replay;
    a body signed for one request is refused on another; the body alone signed is refused."""
    body_dealer = next(d for d in world.dealers if d.mode == "body")
    dealer_id = next(
        d["id"]
        for d in httpx.get(f"{world.desk}/v1/dealers", headers=world.sales).json()
        if d["name"] == body_dealer.name
    )
    requests = [
        next(r["id"] for r in _rfq(world, side="buy", quantity=100)["dealer_requests"]
             if r["dealer_id"] == dealer_id)
        for _ in range(2)
    ]  # fmt: skip
    urls = [f"{world.desk}/v1/dealer/quote-requests/{r}/quotes" for r in requests]
    key = {"Authorization": f"Bearer {body_dealer.api_key}"}
    body = json.dumps({"bid": 0.01, "ask": 0.02, "size": 10}).encode()
    now = time.time()
    for url in urls:  # one timestamp, one body: the signatures differ by their target
        resp = httpx.post(
            url, content=body, headers=_signed(body_dealer.secret, body, url, now=now) | key
        )
        assert resp.status_code == 201, resp.text
    elsewhere = _signed(body_dealer.secret, body, urls[0]) | key
    assert httpx.post(urls[1], content=body, headers=elsewhere).status_code == 401
    body_only = signed_headers(body_dealer.secret, body) | key
    refused = httpx.post(urls[0], content=body, headers=body_only)
    assert refused.status_code == 401
    assert refused.json()["field"] == "X-RFQDesk-Signature"


def test_bad_signatures_replays_and_foreign_requests_are_refused(world: World) -> None:
    rfq = _rfq(world, side="buy", quantity=100, expires_in_ms=60_000)
    body_dealer = next(d for d in world.dealers if d.mode == "body")
    other = next(d for d in world.dealers if d.mode == "callback")
    ids = {r["dealer_id"]: r["id"] for r in rfq["dealer_requests"]}
    dealers = {
        d["name"]: d["id"]
        for d in httpx.get(f"{world.desk}/v1/dealers", headers=world.sales).json()
    }
    own_request = ids[dealers[body_dealer.name]]
    url = f"{world.desk}/v1/dealer/quote-requests/{own_request}/quotes"
    key = {"Authorization": f"Bearer {body_dealer.api_key}"}
    body = json.dumps({"bid": 0.01, "ask": 0.02, "size": 10}).encode()
    mine = {"dealer_request_id": uuid.UUID(own_request)}
    before = len(_rows(world.settings, DealerQuote, **mine))

    bad = _signed("not-the-secret", body, url) | key
    assert httpx.post(url, content=body, headers=bad).status_code == 401
    stale = _signed(body_dealer.secret, body, url, now=time.time() - 600) | key
    assert httpx.post(url, content=body, headers=stale).status_code == 401
    foreign = _signed(other.secret, body, url) | {"Authorization": f"Bearer {other.api_key}"}
    assert httpx.post(url, content=body, headers=foreign).status_code == 403
    good = _signed(body_dealer.secret, body, url) | key
    first = httpx.post(url, content=body, headers=good)
    assert first.status_code == 201  # logged (refused: the deadline has passed)
    assert httpx.post(url, content=body, headers=good).status_code == 401  # replayed
    after = _rows(world.settings, DealerQuote, **mine)
    assert len(after) == before + 1  # only the properly signed one was logged
    crossed = json.dumps({"bid": 0.03, "ask": 0.02, "size": 10}).encode()
    logged = httpx.post(
        url, content=crossed, headers=_signed(body_dealer.secret, crossed, url) | key
    )
    assert logged.status_code == 201  # a crossed quote is a quote: logged, refused
    assert logged.json()["status"] == "refused"
    empty = json.dumps({"size": 10}).encode()
    refused = httpx.post(url, content=empty, headers=_signed(body_dealer.secret, empty, url) | key)
    assert refused.status_code == 422
    assert refused.json()["field"] == "body"
    assert refused.json()["detail"] == (
        "not a quote: body: Value error, a quote needs bid and/or ask, for the package or per leg"
    )
    typo = json.dumps({"bid": "cheap", "ask": 0.02, "size": 10}).encode()
    refused = httpx.post(url, content=typo, headers=_signed(body_dealer.secret, typo, url) | key)
    assert refused.json()["field"] == "bid"


def test_every_dealer_request_ends_with_an_outcome(world: World) -> None:
    _rfq(world, side="sell", quantity=100)
    time.sleep(0.5)
    from app.models import DealerRequest

    pending = [r for r in _rows(world.settings, DealerRequest) if r.outcome == "pending"]
    assert pending == []


def test_the_event_stream_shows_the_state_then_each_change(world: World) -> None:
    rfq = _rfq(world, side="buy", quantity=100, expires_in_ms=60_000)
    frames: list[tuple[str, dict]] = []

    def listen() -> None:
        with httpx.stream(
            "GET", f"{world.desk}/v1/rfqs/{rfq['id']}/events", headers=world.sales, timeout=10
        ) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event:
                    frames.append((event, json.loads(line[6:])))

    import threading

    reader = threading.Thread(target=listen)
    reader.start()
    time.sleep(0.5)
    assert (
        httpx.post(f"{world.desk}/v1/rfqs/{rfq['id']}/pass", headers=world.sales).status_code == 200
    )
    reader.join(10)
    assert not reader.is_alive()  # the stream ends once the RFQ is final
    assert frames[0][0] == "snapshot"
    assert frames[0][1]["state"] == "quoted"
    states = [data["state"] for event, data in frames if event == "state"]
    assert states[-1] == "passed"
    lost = [
        data for event, data in frames if event == "dealer_request" and data["outcome"] == "lost"
    ]
    assert lost  # the quoting dealers learn they lost, and the stream says so


def test_the_event_stream_shows_the_sweepers_expiry_and_ends(world: World) -> None:
    rfq = _rfq(world, side="buy", quantity=100, expires_in_ms=1_500)
    frames: list[tuple[str, dict]] = []
    with httpx.stream(
        "GET", f"{world.desk}/v1/rfqs/{rfq['id']}/events", headers=world.sales, timeout=10
    ) as resp:
        event = None
        for line in resp.iter_lines():  # ends when the server ends the stream
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                frames.append((event, json.loads(line[6:])))
    assert frames[0][0] == "snapshot"
    expired = [data for event, data in frames if event == "state"]
    assert expired[-1]["state"] == "expired", frames
    assert expired[-1]["from_state"] == "quoted"
    stored = httpx.get(f"{world.desk}/v1/rfqs/{rfq['id']}", headers=world.sales).json()
    assert stored["events"][-1]["actor"] == "sweeper"  # the sweeper, not a read, expired it


def test_a_dealer_sees_only_what_it_was_sent_without_the_desks_selection(world: World) -> None:

    rfq = _rfq(world, side="buy", quantity=100)
    dealer = world.dealers[0]
    key = {"Authorization": f"Bearer {dealer.api_key}"}
    dealers = {
        d["name"]: d["id"]
        for d in httpx.get(f"{world.desk}/v1/dealers", headers=world.sales).json()
    }
    mine = next(r for r in rfq["dealer_requests"] if r["dealer_id"] == dealers[dealer.name])
    # a request the selection skipped (as it does when it asks fewer dealers than it knows)
    skipped = _rfq(world, side="sell", quantity=100)
    hidden = next(
        r["id"] for r in skipped["dealer_requests"] if r["dealer_id"] == dealers[dealer.name]
    )

    _set_request(world, hidden, outcome="skipped", error="rank 9: below the leak cost")
    listed = httpx.get(f"{world.desk}/v1/dealer/quote-requests?limit=500", headers=key)
    assert listed.status_code == 200
    rows = listed.json()
    assert mine["id"] in {r["id"] for r in rows}
    assert hidden not in {r["id"] for r in rows}
    assert {r["dealer_id"] for r in rows} == {dealers[dealer.name]}
    for row in rows:  # no rank, model scores or reasons
        assert not {"rank", "selected", "p_answer", "p_win", "error"} & set(row)
    one = httpx.get(f"{world.desk}/v1/dealer/quote-requests/{hidden}", headers=key)
    assert one.status_code == 404
    bogus = httpx.get(f"{world.desk}/v1/dealer/quote-requests?outcome=skipped", headers=key)
    assert bogus.status_code == 422
    # the desk's own view of the RFQ keeps the selection
    desk = httpx.get(f"{world.desk}/v1/rfqs/{rfq['id']}", headers=world.sales).json()
    assert all("p_answer" in r for r in desk["dealer_requests"])


def test_a_quote_the_client_was_quoted_on_cannot_be_withdrawn_or_replaced(world: World) -> None:
    from datetime import UTC, timedelta

    rfq = _rfq(world, side="buy", quantity=100, expires_in_ms=60_000)
    assert rfq["state"] == "quoted"
    body_dealer = next(d for d in world.dealers if d.mode == "body")
    dealers = {
        d["name"]: d["id"]
        for d in httpx.get(f"{world.desk}/v1/dealers", headers=world.sales).json()
    }
    request_id = next(
        r["id"] for r in rfq["dealer_requests"] if r["dealer_id"] == dealers[body_dealer.name]
    )

    # as when every dealer answered early: the client is quoted before the dealers' deadline
    _set_request(world, request_id, deadline_at=datetime.now(UTC) + timedelta(minutes=5))
    url = f"{world.desk}/v1/dealer/quote-requests/{request_id}/withdraw"
    key = {"Authorization": f"Bearer {body_dealer.api_key}"}
    resp = httpx.post(url, content=b"{}", headers=_signed(body_dealer.secret, b"{}", url) | key)
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "quote_firm"
    # nor replaced by a worse one: logged, refused, and the quoted one stays live
    worse = json.dumps({"bid": 0.0001, "ask": 0.9, "size": 1}).encode()
    quotes_url = f"{world.desk}/v1/dealer/quote-requests/{request_id}/quotes"
    resp = httpx.post(
        quotes_url, content=worse, headers=_signed(body_dealer.secret, worse, quotes_url) | key
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "refused"
    assert "client has been quoted" in resp.json()["refusal_reason"]
    rows = _rows(world.settings, DealerQuote, dealer_request_id=uuid.UUID(request_id))
    assert sorted(q.status for q in rows) == ["live", "refused"]
