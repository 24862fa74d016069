"""Concurrent create-and-quote on the service's own engine (Postgres and Redis): the requests'
writes are grouped, and every RFQ answered 201 is stored whole, with its own rows."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from app.auth.keys import Role
from app.auth.service import create_key
from app.config import Settings
from app.main import create_app
from app.models import ClientQuote, MarketSnapshot, Rfq, RfqEvent, RfqLeg
from tests.factories import call_spread

pytestmark = [pytest.mark.db, pytest.mark.redis]


def _group_commits() -> tuple[float, float]:
    units = REGISTRY.get_sample_value("rfqdesk_db_group_commit_units_sum") or 0.0
    statements = REGISTRY.get_sample_value("rfqdesk_db_group_commit_units_count") or 0.0
    return units, statements


async def test_concurrent_rfqs_share_writes_and_each_is_stored_whole(
    postgres_url: str, redis_url: str
) -> None:
    settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        log_json=False,
        log_level="WARNING",
        env="test",
    )
    settings.api.rate_limit_per_minute = 100_000
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.rfqdesk
        async with state.sessionmaker() as s, s.begin():
            _, key = await create_key(s, role=Role.SALES, name=f"load-{uuid.uuid4().hex[:6]}")
        inventory = state.services["inventory"]
        for _ in range(100):  # the inventory listener subscribes in the background
            if inventory.live:
                break
            await asyncio.sleep(0.05)
        assert inventory.live
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # one first, so that the inventory is in memory and the others only write
            assert (await client.post("/v1/rfqs", json=call_spread(), headers=headers)).is_success
            units_before, statements_before = _group_commits()
            bodies = [call_spread(quantity=250 + i, client=f"c{i}") for i in range(24)]
            answers = await asyncio.gather(
                *(client.post("/v1/rfqs", json=b, headers=headers) for b in bodies)
            )
        units, statements = _group_commits()
        assert [a.status_code for a in answers] == [201] * 24, answers[0].text
        assert units - units_before == 24
        assert statements - statements_before < 24  # written together, not one by one

        ids = [uuid.UUID(a.json()["id"]) for a in answers]
        async with state.sessionmaker() as s:
            rows = {r.id: r for r in await s.scalars(select(Rfq).where(Rfq.id.in_(ids)))}

            async def count(model, column) -> dict[uuid.UUID, int]:  # type: ignore[no-untyped-def]
                result = await s.execute(
                    select(column, func.count()).where(column.in_(ids)).group_by(column)
                )
                return dict(result.all())  # type: ignore[arg-type]

            legs = await count(RfqLeg, RfqLeg.rfq_id)
            events = await count(RfqEvent, RfqEvent.rfq_id)
            quotes = await count(ClientQuote, ClientQuote.rfq_id)
            snapshots = await s.scalar(
                select(func.count())
                .select_from(MarketSnapshot)
                .where(
                    MarketSnapshot.id.in_(
                        select(ClientQuote.snapshot_id).where(ClientQuote.rfq_id.in_(ids))
                    )
                )
            )
        assert set(rows) == set(ids)
        for answer, body in zip(answers, bodies, strict=True):
            rfq = rows[uuid.UUID(answer.json()["id"])]
            assert (rfq.client, rfq.quantity, rfq.state) == (
                body["client"],
                body["quantity"],
                "quoted",
            )
            assert answer.json()["state"] == "quoted"
        assert legs == dict.fromkeys(ids, 2)
        assert events == dict.fromkeys(ids, 3)  # new, quoting, quoted
        assert quotes == dict.fromkeys(ids, 1)
        assert snapshots == 24
