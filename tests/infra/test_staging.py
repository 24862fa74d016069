"""Staged inserts (app.db.stage): the create path's multi-row INSERTs, on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ClientQuote, MarketSnapshot, Rfq, RfqEvent, RfqLeg
from app.models._mixins import new_id
from app.staging import stage, write_staged

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def package(n_legs: int = 2) -> tuple[Rfq, list[RfqLeg], RfqEvent, MarketSnapshot, ClientQuote]:
    rfq = Rfq(
        id=new_id(),
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(seconds=30),
        state="quoted",
        underlying="BTC",
        structure="call_spread",
        side="two_way",
        quantity=Decimal("250.5"),
        version=1,
    )
    legs = [
        RfqLeg(
            rfq_id=rfq.id,
            leg_index=i,
            instrument=f"BTC-27MAR26-{70000 + 10000 * i}-C",
            expiry=date(2026, 3, 27),
            strike=Decimal(70000 + 10000 * i),
            option_type="call",
            ratio=1,
            direction="buy" if i == 0 else "sell",
        )
        for i in range(n_legs)
    ]
    event = RfqEvent(rfq_id=rfq.id, seq=1, from_state=None, to_state="new", actor="t")
    snap = MarketSnapshot(
        id=new_id(),
        underlying="BTC",
        taken_at=NOW,
        source="simulated",
        spot=Decimal("65000.125"),
        data={"slices": [{"expiry": "2026-03-27", "svi": {"a": 0.01}}]},
    )
    quote = ClientQuote(
        rfq_id=rfq.id,
        snapshot_id=snap.id,
        valid_until=NOW + timedelta(seconds=5),
        theo_usd=Decimal("1234.56789012"),
        theo_coin=Decimal("0.01899335"),
        bid_coin=None,
        ask_coin=Decimal("0.0195"),
        p_hit_ask=0.25,
        model_version="hit/x",
        explanation={"ask": {"markup_usd": 12.5}, "unicode": "Δ vega ✓"},
    )
    return rfq, legs, event, snap, quote


async def test_staged_rows_are_written_with_their_values_and_defaults(
    session: AsyncSession,
) -> None:
    rfq, legs, event, snap, quote = package(3)
    # staged children first: the writer orders the tables itself
    stage(session, quote, *legs, event, snap, rfq)
    await write_staged(session)
    # columns left unset took their Python defaults, set on the objects too
    assert quote.id is not None
    assert event.id is not None
    assert quote.status == "live"
    assert quote.greeks == {}
    assert quote.created_at is not None
    assert event.at is not None

    stored_quote = (
        await session.execute(select(ClientQuote).where(ClientQuote.id == quote.id))
    ).scalar_one()
    assert stored_quote.theo_usd == Decimal("1234.56789012")
    assert stored_quote.bid_coin is None
    assert stored_quote.ask_coin == Decimal("0.0195")
    assert stored_quote.valid_until == NOW + timedelta(seconds=5)
    assert stored_quote.explanation == {"ask": {"markup_usd": 12.5}, "unicode": "Δ vega ✓"}
    assert stored_quote.greeks == {}
    assert stored_quote.status == "live"
    assert stored_quote.created_at == quote.created_at
    stored_legs = (
        await session.scalars(
            select(RfqLeg).where(RfqLeg.rfq_id == rfq.id).order_by(RfqLeg.leg_index)
        )
    ).all()
    assert [(leg.strike, leg.direction) for leg in stored_legs] == [
        (Decimal(70000), "buy"),
        (Decimal(80000), "sell"),
        (Decimal(90000), "sell"),
    ]
    stored_rfq = (await session.execute(select(Rfq).where(Rfq.id == rfq.id))).scalar_one()
    assert (stored_rfq.quantity, stored_rfq.created_at, stored_rfq.version) == (
        Decimal("250.5"),
        NOW,
        1,
    )
    stored_snap = (
        await session.execute(select(MarketSnapshot).where(MarketSnapshot.id == snap.id))
    ).scalar_one()
    assert stored_snap.spot == Decimal("65000.125")
    assert stored_snap.data == snap.data


async def test_packages_of_other_leg_counts_in_a_row_are_each_written(
    session: AsyncSession,
) -> None:
    for n_legs in (2, 4, 2):
        rfq, legs, event, snap, quote = package(n_legs)
        stage(session, rfq, *legs, event, snap, quote)
        await write_staged(session)
        count = len((await session.scalars(select(RfqLeg.id).where(RfqLeg.rfq_id == rfq.id))).all())
        assert count == n_legs


async def test_a_broken_reference_fails_the_whole_write(session: AsyncSession) -> None:
    rfq, legs, event, snap, quote = package()
    quote.snapshot_id = new_id()  # no such snapshot
    stage(session, rfq, *legs, event, snap, quote)
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await write_staged(session)
    assert (await session.execute(select(Rfq).where(Rfq.id == rfq.id))).first() is None


@pytest.fixture
async def recorded(postgres_url: str):  # type: ignore[no-untyped-def]
    """A Postgres engine of the service's settings, and each statement it runs: (first word,
    isolation level)."""
    from sqlalchemy import event

    from app.config import Settings
    from app.db import create_engine

    engine = create_engine(Settings(database_url=postgres_url, env="test"))
    seen: list[tuple[str, str | None]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(conn, _cursor, statement, _params, _ctx, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append((statement.split()[0], conn.get_execution_options().get("isolation_level")))

    yield engine, seen
    await engine.dispose()


class TestAloneInAutocommit:
    """A unit of work whose only statement is the staged write sends it alone, in autocommit
    (Postgres, an engine-bound session); anything else keeps the ordinary transaction."""

    async def _stored(self, engine, rfq_id) -> int:
        async with engine.connect() as conn:
            return len((await conn.execute(select(Rfq.id).where(Rfq.id == rfq_id))).all())

    async def test_the_write_runs_alone_and_is_stored(self, recorded) -> None:
        engine, seen = recorded
        from app.db import create_sessionmaker
        from app.events import unit_of_work

        rfq, legs, event, snap, quote = package()
        async with unit_of_work(create_sessionmaker(engine)) as session:
            stage(session, rfq, *legs, event, snap, quote)
        assert seen == [("WITH", "AUTOCOMMIT")]
        assert await self._stored(engine, rfq.id) == 1

    async def test_a_transaction_that_read_first_keeps_its_transaction(self, recorded) -> None:
        engine, seen = recorded
        from app.db import create_sessionmaker
        from app.events import unit_of_work

        rfq, legs, event, snap, quote = package()
        async with unit_of_work(create_sessionmaker(engine)) as session:
            await session.execute(select(Rfq.id).limit(1))
            stage(session, rfq, *legs, event, snap, quote)
        assert [level for _, level in seen] == [None, None]
        assert await self._stored(engine, rfq.id) == 1

    async def test_pending_orm_changes_keep_the_transaction(self, recorded) -> None:
        engine, seen = recorded
        from app.db import create_sessionmaker
        from app.events import unit_of_work

        rfq, legs, event, snap, quote = package()
        other = package()[0]
        async with unit_of_work(create_sessionmaker(engine)) as session:
            stage(session, rfq, *legs, event, snap, quote)
            session.add(other)  # flushed at the commit: it must commit with the staged rows
        assert all(level is None for _, level in seen)
        assert await self._stored(engine, rfq.id) == 1
        assert await self._stored(engine, other.id) == 1

    async def test_a_failed_write_stores_nothing(self, recorded) -> None:
        engine, seen = recorded
        from app.db import create_sessionmaker
        from app.events import unit_of_work

        rfq, legs, event, snap, quote = package()
        quote.snapshot_id = new_id()  # no such snapshot
        with pytest.raises(IntegrityError):
            async with unit_of_work(create_sessionmaker(engine)) as session:
                stage(session, rfq, *legs, event, snap, quote)
        assert seen == [("WITH", "AUTOCOMMIT")]
        assert await self._stored(engine, rfq.id) == 0


class TestGroupCommit:
    """Units of work that arrive while a write is in flight are written together, in one
    autocommit statement; each unit stays atomic and only a faulty one fails."""

    @staticmethod
    async def _stored(engine, rfq_ids) -> set:  # type: ignore[no-untyped-def]
        async with engine.connect() as conn:
            found = await conn.execute(select(Rfq.id).where(Rfq.id.in_(list(rfq_ids))))
            return {row[0] for row in found}

    @staticmethod
    async def _unit(engine, rows) -> None:  # type: ignore[no-untyped-def]
        from app.db import create_sessionmaker
        from app.events import unit_of_work

        async with unit_of_work(create_sessionmaker(engine)) as session:
            stage(session, *rows)

    async def test_concurrent_units_share_one_statement_and_all_are_stored(self, recorded) -> None:
        import asyncio

        engine, seen = recorded
        packages = [package(2 + i % 3) for i in range(24)]
        await asyncio.gather(
            *(self._unit(engine, (r, *legs, e, s, q)) for r, legs, e, s, q in packages)
        )
        # every unit queued before the first write started: one statement for all 24
        assert seen == [("WITH", "AUTOCOMMIT")]
        rfq_ids = {p[0].id for p in packages}
        assert await self._stored(engine, rfq_ids) == rfq_ids
        async with engine.connect() as conn:
            legs = await conn.execute(select(RfqLeg.rfq_id).where(RfqLeg.rfq_id.in_(rfq_ids)))
            assert len(legs.all()) == sum(len(p[1]) for p in packages)

    async def test_one_statement_text_whatever_the_batch(self, postgres_url: str) -> None:
        """Batches of other sizes and leg counts reuse the same prepared statement."""
        import asyncio

        from sqlalchemy import event

        from app.config import Settings
        from app.db import create_engine

        engine = create_engine(Settings(database_url=postgres_url, env="test"))
        texts: set[str] = set()

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(_conn, _cursor, statement, _params, _ctx, _many) -> None:  # type: ignore[no-untyped-def]
            texts.add(statement)

        try:
            for n, legs in ((1, 2), (3, 4), (7, 1)):
                packages = [package(legs + i % 2) for i in range(n)]
                await asyncio.gather(
                    *(self._unit(engine, (r, *ls, e, s, q)) for r, ls, e, s, q in packages)
                )
                rfq_ids = {p[0].id for p in packages}
                assert await self._stored(engine, rfq_ids) == rfq_ids
        finally:
            await engine.dispose()
        writes = {t for t in texts if t.startswith("WITH")}
        assert len(writes) == 1

    async def test_a_faulty_unit_fails_alone(self, recorded) -> None:
        import asyncio

        engine, seen = recorded
        packages = [package() for _ in range(6)]
        packages[3][4].snapshot_id = new_id()  # no such snapshot: this unit must fail
        results = await asyncio.gather(
            *(self._unit(engine, (r, *legs, e, s, q)) for r, legs, e, s, q in packages),
            return_exceptions=True,
        )
        assert isinstance(results[3], IntegrityError)
        assert [r for i, r in enumerate(results) if i != 3] == [None] * 5
        # the batch, then each unit alone to find the faulty one
        assert seen == [("WITH", "AUTOCOMMIT")] * (1 + 6)
        good = {p[0].id for i, p in enumerate(packages) if i != 3}
        assert await self._stored(engine, {p[0].id for p in packages}) == good

    async def test_a_caller_cancelled_while_queued_is_not_written(self, recorded) -> None:
        import asyncio

        engine, _ = recorded
        first = package()
        blocker = asyncio.create_task(self._unit(engine, (first[0], *first[1], *first[2:])))
        await asyncio.sleep(0)  # the first batch is on its way: the next units queue up
        packages = [package() for _ in range(5)]
        tasks = [
            asyncio.create_task(self._unit(engine, (r, *legs, e, s, q)))
            for r, legs, e, s, q in packages
        ]
        await asyncio.sleep(0)  # every unit is queued
        tasks[2].cancel()
        results = await asyncio.gather(blocker, *tasks, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        stored = await self._stored(engine, {p[0].id for p in (first, *packages)})
        assert stored == {p[0].id for i, p in enumerate((first, *packages)) if i != 3}

    async def test_a_cancelled_writer_leaves_nobody_waiting(self, recorded) -> None:
        import asyncio

        from app.staging import _DRAINS

        engine, _ = recorded
        packages = [package() for _ in range(4)]
        tasks = [
            asyncio.create_task(self._unit(engine, (r, *legs, e, s, q)))
            for r, legs, e, s, q in packages
        ]
        await asyncio.sleep(0)
        for drain in list(_DRAINS):
            drain.cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)

    @pytest.mark.parametrize(
        "spoil",
        [
            pytest.param(lambda q: setattr(q, "model_version", "hit\x00v1"), id="NUL byte"),
            pytest.param(lambda q: setattr(q, "theo_usd", Decimal("1e40")), id="numeric overflow"),
            pytest.param(
                lambda q: setattr(q, "valid_until", datetime(2026, 3, 2, 9, 30)), id="naive time"
            ),
            pytest.param(lambda q: setattr(q, "model_version", "v" * 81), id="too long"),
        ],
    )
    async def test_a_value_its_column_refuses_fails_its_unit_alone(self, recorded, spoil) -> None:
        import asyncio

        engine, _ = recorded
        packages = [package() for _ in range(4)]
        spoil(packages[1][4])
        results = await asyncio.gather(
            *(self._unit(engine, (r, *legs, e, s, q)) for r, legs, e, s, q in packages),
            return_exceptions=True,
        )
        assert isinstance(results[1], Exception)
        assert [r for i, r in enumerate(results) if i != 1] == [None] * 3
        good = {p[0].id for i, p in enumerate(packages) if i != 1}
        assert await self._stored(engine, {p[0].id for p in packages}) == good

    async def test_objects_built_by_fresh_are_written(self, recorded) -> None:
        from app.staging import fresh

        engine, _ = recorded
        rfq_id = new_id()
        rfq = fresh(
            Rfq,
            id=rfq_id,
            created_at=NOW,
            updated_at=NOW,
            expires_at=NOW + timedelta(seconds=30),
            state="new",
            underlying="BTC",
            structure="call",
            side="buy",
            quantity=Decimal("25"),
            version=1,
            events=[fresh(RfqEvent, rfq_id=rfq_id, seq=1, at=NOW, to_state="new", actor="t")],
        )
        await self._unit(engine, (rfq, *rfq.events))
        assert rfq.client is None  # a default, set on the object
        assert rfq.events[0].id is not None
        async with engine.connect() as conn:
            query = select(Rfq.quantity, Rfq.channel).where(Rfq.id == rfq_id)
            row = (await conn.execute(query)).one()
            seqs = await conn.scalars(select(RfqEvent.seq).where(RfqEvent.rfq_id == rfq_id))
            assert list(seqs) == [1]
        assert tuple(row) == (Decimal("25"), "api")

    async def test_an_outage_fails_every_unit_of_the_batch(self) -> None:
        import asyncio

        from sqlalchemy.exc import DBAPIError

        from app.config import Settings
        from app.db import create_engine
        from tests.servers import free_port

        url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"
        engine = create_engine(Settings(database_url=url, env="test"))
        try:
            packages = [package() for _ in range(4)]
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(self._unit(engine, (r, *legs, e, s, q)) for r, legs, e, s, q in packages),
                    return_exceptions=True,
                ),
                timeout=20,
            )
        finally:
            await engine.dispose()
        assert all(isinstance(r, OSError | DBAPIError) for r in results), results

    async def test_a_dropped_engine_is_not_kept_alive(self, postgres_url: str) -> None:
        import gc
        import weakref

        from app.config import Settings
        from app.db import create_engine

        engine = create_engine(Settings(database_url=postgres_url, env="test"))
        rfq, legs, event, snap, quote = package()
        await self._unit(engine, (rfq, *legs, event, snap, quote))
        assert await self._stored(engine, {rfq.id}) == {rfq.id}
        await engine.dispose()
        gone = weakref.ref(engine.sync_engine)
        del engine
        gc.collect()
        assert gone() is None
