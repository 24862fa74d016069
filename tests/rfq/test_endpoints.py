"""The RFQ API as a sales trader uses it, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.models import Rfq, RfqEvent, RfqLeg
from tests.conftest import KeyMaker
from tests.factories import call_spread, expiry, instrument


async def count_rfqs(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Rfq)) or 0)


class TestCreate:
    async def test_template_rfq_is_stored_with_its_legs(
        self, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        resp = await client.post("/v1/rfqs", json=call_spread(), headers=await auth(Role.SALES))
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["structure"] == "call_spread"
        assert body["quantity"] == 250
        assert body["hedge_reference"] == 64500
        legs = {(leg["instrument"], leg["direction"], leg["ratio"]) for leg in body["legs"]}
        assert legs == {
            (instrument("BTC", 70000, "C"), "buy", 1),
            (instrument("BTC", 80000, "C"), "sell", 1),
        }
        assert body["events"][0]["to_state"] == "new"
        stored = await session.get(Rfq, uuid.UUID(body["id"]))
        assert stored is not None
        assert stored.underlying == "BTC"
        n_legs = await session.scalar(
            select(func.count()).select_from(RfqLeg).where(RfqLeg.rfq_id == stored.id)
        )
        assert n_legs == 2

    async def test_explicit_legs_are_recognised_as_a_risk_reversal(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        body = {
            "underlying": "ETH",
            "side": "two_way",
            "quantity": 500,
            "legs": [
                {"instrument": instrument("ETH", 2800, "P"), "ratio": 1, "direction": "sell"},
                {"instrument": instrument("ETH", 3600, "C"), "ratio": 1, "direction": "buy"},
            ],
        }
        resp = await client.post("/v1/rfqs", json=body, headers=await auth(Role.SALES))
        assert resp.status_code == 201, resp.text
        assert resp.json()["structure"] == "risk_reversal"

    async def test_unrecognised_legs_are_custom(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        body = {
            "underlying": "BTC",
            "side": "buy",
            "quantity": 30,
            "legs": [
                {"instrument": instrument("BTC", 60000, "P"), "ratio": 3, "direction": "buy"},
                {"instrument": instrument("BTC", 90000, "C", 2), "ratio": 1, "direction": "sell"},
            ],
        }
        resp = await client.post("/v1/rfqs", json=body, headers=await auth(Role.SALES))
        assert resp.status_code == 201, resp.text
        assert resp.json()["structure"] == "custom"

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            (call_spread(structure="iron_bat"), 422, "structure"),
            (call_spread(strikes=[80000, 70000]), 422, "strikes"),
            (call_spread(quantity=-5), 422, "quantity"),
            (call_spread(quantity="lots"), 422, "quantity"),
            (call_spread(quantity=10), 422, "quantity"),  # under the 25 BTC block minimum
            (call_spread(underlying="DOGE"), 422, "underlying"),
            (call_spread(expiries=["2020-12-25"]), 422, "legs[0].instrument"),
            # a Saturday months ahead: no venue lists it (dailies reach 7 days, the rest Fridays)
            (
                call_spread(expiries=[(expiry(3) + timedelta(days=1)).isoformat()]),
                422,
                "legs[0].instrument",
            ),
            (call_spread(strikes=[70000]), 422, "strikes"),
            (call_spread(side="maybe"), 422, "side"),
            # the delta is exchanged there: 64.5 for 64500 would give away the difference
            (call_spread(hedge_reference=64.5), 422, "hedge_reference"),
            (call_spread(hedge_reference=1_000_000), 422, "hedge_reference"),
            (call_spread(extra_field=1), 422, "extra_field"),
            (
                {
                    "underlying": "BTC",
                    "side": "buy",
                    "quantity": 30,
                    "legs": [{"instrument": "BTC-31FEB27-1-C", "direction": "buy"}],
                },
                422,
                "legs[0].instrument",
            ),
            (
                {
                    "underlying": "BTC",
                    "side": "buy",
                    "quantity": 30,
                    "legs": [
                        {"instrument": instrument("BTC", 1000 * (50 + i), "C"), "direction": "buy"}
                        for i in range(21)
                    ],
                },
                422,
                "legs",
            ),
        ],
    )
    async def test_bad_rfq_gets_a_4xx_naming_the_field(
        self,
        client: httpx.AsyncClient,
        auth: KeyMaker,
        session: AsyncSession,
        body: dict,
        status: int,
        field: str,
    ) -> None:
        before = await count_rfqs(session)
        resp = await client.post("/v1/rfqs", json=body, headers=await auth(Role.SALES))
        assert resp.status_code == status, resp.text
        assert resp.json()["field"] == field, resp.json()
        assert resp.json()["detail"]
        assert await count_rfqs(session) == before

    async def test_malformed_json_is_a_400(self, client: httpx.AsyncClient, auth: KeyMaker) -> None:
        headers = await auth(Role.SALES) | {"content-type": "application/json"}
        resp = await client.post("/v1/rfqs", content=b'{"underlying": "BTC",', headers=headers)
        assert resp.status_code == 400
        assert resp.json()["error"] == "malformed_json"

    async def test_oversized_body_is_a_413(self, client: httpx.AsyncClient, auth: KeyMaker) -> None:
        body = call_spread(client="x" * 100_000)
        resp = await client.post("/v1/rfqs", json=body, headers=await auth(Role.SALES))
        assert resp.status_code == 413
        assert resp.json()["error"] == "payload_too_large"


def _legs(*legs: tuple[int, str, str, int]) -> list[dict]:
    return [
        {"instrument": instrument("BTC", k, kind), "direction": d, "ratio": r}
        for k, kind, d, r in legs
    ]


def _stated(rfq: dict) -> set[tuple[float, str, str, int]]:
    return {
        (float(leg["strike"]), leg["option_type"], leg["direction"], leg["ratio"])
        for leg in rfq["legs"]
    }


class TestLegsSideAndStructureAgree:
    """Explicit legs are what the client does; the RFQ keeps its structure's buyer's legs,
    so legs stated as the seller's turn the side around instead of contradicting the label."""

    @pytest.mark.parametrize("structure", ["call_spread", None])
    async def test_a_call_spread_stated_as_the_sellers_legs_is_sold(
        self, client: httpx.AsyncClient, auth: KeyMaker, structure: str | None
    ) -> None:
        body = {
            "underlying": "BTC",
            "side": "buy",
            "quantity": 50,
            "legs": _legs((70000, "C", "sell", 1), (80000, "C", "buy", 1)),
        } | ({"structure": structure} if structure else {})
        resp = await client.post("/v1/rfqs", json=body, headers=await auth(Role.SALES))
        assert resp.status_code == 201, resp.text
        rfq = resp.json()
        assert (rfq["structure"], rfq["side"]) == ("call_spread", "sell")
        assert _stated(rfq) == {(70000, "call", "buy", 1), (80000, "call", "sell", 1)}
        quote = rfq["quotes"][0]
        assert quote["ask_coin"] is None
        assert quote["bid_coin"] > 0  # the desk pays for the spread it buys

    async def test_short_call_and_put_is_a_straddle_sold_and_two_way_stays(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.SALES)
        legs = _legs((65000, "C", "sell", 1), (65000, "P", "sell", 1))
        for side, stored in (("buy", "sell"), ("sell", "buy"), ("two_way", "two_way")):
            body = {"underlying": "BTC", "side": side, "quantity": 50, "legs": legs}
            rfq = (await client.post("/v1/rfqs", json=body, headers=headers)).json()
            assert (rfq["structure"], rfq["side"]) == ("straddle", stored)
            assert _stated(rfq) == {(65000, "call", "buy", 1), (65000, "put", "buy", 1)}

    async def test_a_custom_package_sold_is_its_legs_the_other_way_bought(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        legs = _legs((60000, "P", "buy", 1), (70000, "C", "sell", 2), (90000, "C", "buy", 1))
        body = {"underlying": "BTC", "side": "sell", "quantity": 50, "legs": legs}
        resp = await client.post("/v1/rfqs", json=body, headers=await auth(Role.SALES))
        assert resp.status_code == 201, resp.text
        rfq = resp.json()
        assert (rfq["structure"], rfq["side"]) == ("custom", "buy")
        assert _stated(rfq) == {
            (60000, "put", "sell", 1),
            (70000, "call", "buy", 2),
            (90000, "call", "sell", 1),
        }


class TestIdempotency:
    async def test_same_key_twice_gives_one_rfq(
        self, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        headers = await auth(Role.SALES) | {"Idempotency-Key": "abc-123"}
        before = await count_rfqs(session)
        first = await client.post("/v1/rfqs", json=call_spread(), headers=headers)
        second = await client.post("/v1/rfqs", json=call_spread(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert second.headers["idempotent-replayed"] == "true"
        assert await count_rfqs(session) == before + 1

    async def test_same_key_with_another_body_is_refused(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.SALES) | {"Idempotency-Key": "k-2"}
        assert (
            await client.post("/v1/rfqs", json=call_spread(), headers=headers)
        ).status_code == 201
        resp = await client.post("/v1/rfqs", json=call_spread(quantity=300), headers=headers)
        assert resp.status_code == 422
        assert resp.json()["error"] == "idempotency_key_reused"

    async def test_the_same_json_written_otherwise_is_the_same_request(
        self, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        headers = await auth(Role.SALES) | {
            "Idempotency-Key": "k-3",
            "content-type": "application/json",
        }
        body = call_spread()
        before = await count_rfqs(session)
        first = await client.post("/v1/rfqs", content=json.dumps(body), headers=headers)
        again = json.dumps(dict(reversed(body.items())), indent=2)  # other order and spacing
        second = await client.post("/v1/rfqs", content=again, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json()["id"] == first.json()["id"]
        assert await count_rfqs(session) == before + 1
        # a number sent as a string is another body
        text = json.dumps(body | {"quantity": str(body["quantity"])})
        third = await client.post("/v1/rfqs", content=text, headers=headers)
        assert third.status_code == 422
        assert third.json()["error"] == "idempotency_key_reused"

    async def test_keys_are_scoped_per_caller(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        one = await client.post(
            "/v1/rfqs",
            json=call_spread(),
            headers=await auth(Role.SALES) | {"Idempotency-Key": "same"},
        )
        two = await client.post(
            "/v1/rfqs",
            json=call_spread(),
            headers=await auth(Role.SALES) | {"Idempotency-Key": "same"},
        )
        assert one.json()["id"] != two.json()["id"]


class TestReadAndList:
    async def test_get_unknown_is_404(self, client: httpx.AsyncClient, auth: KeyMaker) -> None:
        resp = await client.get(f"/v1/rfqs/{uuid.uuid4()}", headers=await auth(Role.SALES))
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found"

    async def test_cursor_pagination_walks_every_rfq_once(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.SALES)
        made = set()
        for q in (30, 40, 50, 60, 70):
            made.add(
                (
                    await client.post(
                        "/v1/rfqs", json=call_spread(quantity=q, client="pager"), headers=headers
                    )
                ).json()["id"]
            )
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2, "client": "pager"} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/rfqs", params=params, headers=headers)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert set(seen) == made
        assert len(seen) == len(made)

    async def test_filters(self, client: httpx.AsyncClient, auth: KeyMaker) -> None:
        headers = await auth(Role.SALES)
        await client.post("/v1/rfqs", json=call_spread(client="f1"), headers=headers)
        eth = {
            "underlying": "ETH",
            "structure": "put",
            "strikes": [3000],
            "expiries": [expiry().isoformat()],
            "side": "sell",
            "quantity": 300,
            "client": "f1",
        }
        assert (await client.post("/v1/rfqs", json=eth, headers=headers)).status_code == 201
        page = (
            await client.get(
                "/v1/rfqs", params={"client": "f1", "underlying": "eth"}, headers=headers
            )
        ).json()
        assert [i["structure"] for i in page["items"]] == ["put"]

    async def test_a_quote_past_its_validity_reads_expired(
        self, client: httpx.AsyncClient, auth: KeyMaker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        headers = await auth(Role.SALES)
        made = (await client.post("/v1/rfqs", json=call_spread(), headers=headers)).json()
        assert made["quotes"][0]["status"] == "live"
        valid_until = datetime.fromisoformat(made["quotes"][0]["valid_until"])
        monkeypatch.setattr("app.rfq.views.utcnow", lambda: valid_until + timedelta(seconds=1))
        read = (await client.get(f"/v1/rfqs/{made['id']}", headers=headers)).json()
        assert read["quotes"][0]["status"] == "expired"
        assert read["state"] == "quoted"  # the RFQ lives on until its own expiry

    async def test_several_states_are_any_of_them(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.SALES)
        ids = {}
        for end in ("pass", "cancel", None):
            made = (
                await client.post("/v1/rfqs", json=call_spread(client="states"), headers=headers)
            ).json()
            if end:
                assert (
                    await client.post(f"/v1/rfqs/{made['id']}/{end}", headers=headers)
                ).status_code == 200
            ids[end] = made["id"]

        async def found(*states: str) -> set[str]:
            params = [("client", "states")] + [("state", s) for s in states]
            resp = await client.get("/v1/rfqs", params=params, headers=headers)
            assert resp.status_code == 200, resp.text
            return {i["id"] for i in resp.json()["items"]}

        assert await found("passed", "cancelled") == {ids["pass"], ids["cancel"]}
        assert await found("quoted") == {ids[None]}
        assert await found() == set(ids.values())
        bad = await client.get("/v1/rfqs", params={"state": "nope"}, headers=headers)
        assert bad.status_code == 422

    async def test_time_bounds_without_a_zone_are_utc(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.SALES)
        made = (
            await client.post("/v1/rfqs", json=call_spread(client="tz"), headers=headers)
        ).json()
        created = datetime.fromisoformat(made["created_at"]).astimezone(UTC)
        naive = (created - timedelta(seconds=1)).replace(tzinfo=None).isoformat()

        async def ids(**params: str) -> list[str]:
            resp = await client.get("/v1/rfqs", params={"client": "tz", **params}, headers=headers)
            assert resp.status_code == 200, resp.text
            return [i["id"] for i in resp.json()["items"]]

        assert await ids(since=naive) == [made["id"]]
        assert await ids(until=naive) == []
        assert await ids(until=created.date().isoformat()) == []  # a date: its midnight, UTC
        resp = await client.get(
            "/v1/rfqs", params={"since": "0001-01-01T00:00:00"}, headers=headers
        )
        assert resp.status_code == 422
        assert resp.json()["field"] == "since"

    async def test_bad_cursor_is_a_422(self, client: httpx.AsyncClient, auth: KeyMaker) -> None:
        resp = await client.get(
            "/v1/rfqs", params={"cursor": "nonsense"}, headers=await auth(Role.SALES)
        )
        assert resp.status_code == 422
        assert resp.json()["field"] == "cursor"


class TestLifecycle:
    async def test_cancel_then_cancel_again_is_409(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.SALES)
        rid = (await client.post("/v1/rfqs", json=call_spread(), headers=headers)).json()["id"]
        resp = await client.post(
            f"/v1/rfqs/{rid}/cancel", json={"reason": "client left"}, headers=headers
        )
        assert resp.status_code == 200
        assert resp.json()["state"] == "cancelled"
        assert [e["to_state"] for e in resp.json()["events"]][-1] == "cancelled"
        again = await client.post(f"/v1/rfqs/{rid}/cancel", headers=headers)
        assert again.status_code == 409
        assert again.json()["error"] == "illegal_transition"

    async def test_expired_on_read_after_its_deadline(
        self, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        headers = await auth(Role.SALES)
        rid = (await client.post("/v1/rfqs", json=call_spread(), headers=headers)).json()["id"]
        rfq = await session.get(Rfq, uuid.UUID(rid))
        assert rfq is not None
        rfq.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        await session.commit()
        body = (await client.get(f"/v1/rfqs/{rid}", headers=headers)).json()
        assert body["state"] == "expired"
        cancel = await client.post(f"/v1/rfqs/{rid}/cancel", headers=headers)
        assert cancel.status_code == 409

    async def test_sweeper_expires_what_a_previous_process_left(
        self, app, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
    ) -> None:
        headers = await auth(Role.SALES)
        rid = uuid.UUID(
            (await client.post("/v1/rfqs", json=call_spread(), headers=headers)).json()["id"]
        )
        rfq = await session.get(Rfq, rid)
        assert rfq is not None
        rfq.expires_at = datetime.now(UTC) - timedelta(seconds=5)
        await session.commit()
        service = app.state.rfqdesk.services["rfq"]
        async with app.state.rfqdesk.sessionmaker() as s, s.begin():
            expired = await service.expire_due(s)
        assert rid in expired
        session.expunge_all()
        assert (await session.get(Rfq, rid)).state == "expired"  # type: ignore[union-attr]
        events = (
            await session.scalars(
                select(RfqEvent).where(RfqEvent.rfq_id == rid).order_by(RfqEvent.seq)
            )
        ).all()
        assert [(e.from_state, e.to_state) for e in events][-1][1] == "expired"
        seqs = [e.seq for e in events]
        assert seqs == sorted(set(seqs))  # strictly increasing: events order the history


class TestAuth:
    async def test_no_key_is_401(self, client: httpx.AsyncClient) -> None:
        resp = await client.post("/v1/rfqs", json=call_spread())
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == "Bearer"

    async def test_unknown_key_is_401(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/v1/rfqs", headers={"Authorization": "Bearer rfqd_nope"})
        assert resp.status_code == 401

    @pytest.mark.parametrize("role", [Role.DEALER, Role.ANALYST])
    async def test_wrong_role_is_403(
        self, client: httpx.AsyncClient, auth: KeyMaker, role: Role, session: AsyncSession
    ) -> None:
        dealer_id = None
        if role is Role.DEALER:
            from app.models import Dealer

            d = Dealer(
                name=f"d-{uuid.uuid4().hex[:5]}",
                endpoint_url="http://127.0.0.1:1/q",
                underlyings=["BTC"],
                webhook_secret="s" * 32,
            )
            session.add(d)
            await session.commit()
            dealer_id = d.id
        resp = await client.post(
            "/v1/rfqs", json=call_spread(), headers=await auth(role, dealer_id=dealer_id)
        )
        assert resp.status_code == 403
        assert resp.json()["error"] == "forbidden"

    async def test_rate_limit_is_429_with_retry_after(
        self, client: httpx.AsyncClient, auth: KeyMaker
    ) -> None:
        headers = await auth(Role.ANALYST, rate_limit_per_minute=3)
        codes = [(await client.get("/v1/rfqs", headers=headers)).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        resp = await client.get("/v1/rfqs", headers=headers)
        assert 1 <= int(resp.headers["retry-after"]) <= 60


class TestHealth:
    async def test_ready_when_db_and_cache_answer(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json()["checks"] == {"database": "ok", "cache": "ok"}

    async def test_metrics_count_requests(self, client: httpx.AsyncClient) -> None:
        await client.get("/healthz")
        text = (await client.get("/metrics")).text
        assert (
            'rfqdesk_http_request_seconds_count{method="GET",route="/healthz",status="200"}' in text
        )

    async def test_unknown_path_is_a_json_404(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/v1/nothing")
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found"
