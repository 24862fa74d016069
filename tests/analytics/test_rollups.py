"""Daily rollups and stored markouts give the same reports as the raw rows, on SQLite and on
PostgreSQL: every report is checked against the independent computation of
tests/analytics/expected.py over windows that start and end inside days and on midnights,
with the rollups' watermark held back by an open RFQ and then released."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.analytics import jobs
from app.analytics import rollup as ru
from app.analytics.repository import OPEN, AnalyticsRepository, percentile_cont
from app.analytics.service import analytics_service
from app.db import Money
from app.models import (
    AnalyticsHistogram,
    AnalyticsRollup,
    AnalyticsRollupState,
    ClientQuote,
    DealerQuote,
    DealerRequest,
    FillMarkout,
    Rfq,
)
from app.models._mixins import new_id
from tests.analytics import expected as ex
from tests.analytics.seed import T0, Seeded
from tests.analytics.test_reports import assert_rows, get_report

#: long after the seeded log: every day is past the slack
NOW = T0 + timedelta(days=30)
#: the seeded log's open RFQ was created on this day (T0 + 35 × 47 min)
OPEN_DAY = date(2026, 3, 3)


def at(day: int, hour: float = 0.0) -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=day - 1, hours=hour)


# (since, until): the outside RFQ (27 Feb 09:00) in a partial first day, then whole days
# from the rollups and the raw rows after the watermark; midnights on both ends; a window
# of rolled-up days only; one inside a day (raw only)
WINDOWS = [
    (at(-2, 8.5), at(4, 9.0)),
    (at(-2), at(5)),
    (at(2), at(3)),
    (at(2, 10.0), at(2, 20.0)),
]


@pytest.fixture
async def rolled(
    seeded: Seeded, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[int, dict[str, date]]:
    result = await jobs.refresh(sessionmaker, NOW)  # markouts stored, then the rollups
    assert result.markouts_stored > 0
    return result.rollup_rows, result.through


@pytest.fixture(autouse=True)
def _service_defaults():
    analytics_service.markout_cache.clear()
    yield
    analytics_service.use_rollups = True
    analytics_service.use_stored_markouts = True
    analytics_service.markout_cache.clear()


async def fast_and_raw(api: Any, analyst: Any, path: str, dims: list[str], **w: Any) -> Any:
    """One report from the rollups and histograms, then from the raw rows alone (the
    autouse fixture turns the rollups back on)."""
    analytics_service.use_rollups = True
    _, fast = await get_report(api, analyst, path, dims, **w)
    analytics_service.use_rollups = False
    _, raw = await get_report(api, analyst, path, dims, **w)
    analytics_service.use_rollups = True
    return fast, raw


async def check_reports(api: Any, analyst: Any, log: ex.Log) -> None:
    for since, until in WINDOWS:
        rfqs = log.window(since, until)
        w = {"since": since.isoformat(), "until": until.isoformat()}
        for dims in ([], ["underlying"], ["client", "day"], ["structure", "side"],
                     ["size_contracts"], ["tenor"], ["size_notional", "size_vega"], ["channel"],
                     ["hour"]):  # fmt: skip
            _, rows = await get_report(api, analyst, "hit-ratio", dims, **w)
            _check(rows, ex.rfq_hit_ratio(log, rfqs, dims))
        for dims in (["dealer"], ["dealer", "underlying"], ["day", "dealer"], ["dealer", "client"]):
            _, rows = await get_report(api, analyst, "hit-ratio", dims, **w)
            _check(rows, ex.dealer_hit_ratio(log, rfqs, dims))
        for dims in (["dealer"], [], ["dealer", "day"], ["underlying"], ["structure", "side"]):
            _, rows = await get_report(api, analyst, "funnel", dims, **w)
            _check(rows, ex.funnel(log, rfqs, dims))
        _, rows = await get_report(api, analyst, "funnel", [], dealer="charlie", **w)
        want = ex.funnel(log, rfqs, ["dealer"]).get(("charlie",))
        _check(rows, {(): want} if want else {})
        for dims in ([], ["underlying"], ["client", "day"]):
            _, rows = await get_report(api, analyst, "price-improvement", dims, **w)
            _check(rows, ex.price_improvement(log, rfqs, dims, "client"))
        _, rows = await get_report(
            api, analyst, "price-improvement", ["dealer"], counterparty="dealer", **w
        )
        _check(rows, ex.price_improvement(log, rfqs, ["dealer"], "dealer"))
        for model, dims in (("hit", []), ("hit", ["underlying"]), ("fill", ["dealer"]),
                            ("win", [])):  # fmt: skip
            _, rows = await get_report(api, analyst, "calibration", dims, model=model, **w)
            got = {(*k[:-1], round(k[-1] * 10)): r for k, r in rows.items()}
            _check(got, ex.calibration(log, rfqs, dims, model, 10))
        for counterparty, dims in (("client", ["underlying"]), ("dealer", ["dealer"])):
            _, rows = await get_report(
                api, analyst, "markouts", dims, counterparty=counterparty, **w
            )
            _check(rows, ex.markouts(log, rfqs, dims, counterparty))


def _check(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    # a report over a window with no RFQs has one all-zero row when ungrouped
    if not want and set(got) == {()}:
        assert got[()].get("requests", got[()].get("asked", got[()].get("fills", 0))) in (0, None)
        return
    if not want:
        assert got == {}
        return
    assert_rows(got, want)


class TestRollups:
    async def test_the_watermark_stops_at_the_first_day_with_an_open_rfq(
        self, rolled, session, sessionmaker
    ):
        written, through = rolled
        assert written > 0
        expected_cubes = sum(len(r.cubes) for r in ru.ROLLUPS.values())
        assert len(through) == expected_cubes
        assert set(through.values()) == {OPEN_DAY}
        states = (await session.scalars(select(AnalyticsRollupState))).all()
        assert {s.through for s in states} == {OPEN_DAY}
        days = (await session.scalars(select(AnalyticsRollup.day).distinct())).all()
        assert set(days) == {date(2026, 2, 27), date(2026, 3, 2)}  # the days with RFQs
        # a second run has nothing to do
        assert (await jobs.refresh_rollups(sessionmaker, NOW))[0] == 0

    async def test_reports_equal_the_raw_rows_through_the_rollups(
        self, rolled, api, analyst, session
    ):
        log = await ex.load(session)
        await check_reports(api, analyst, log)

    async def test_released_watermark_and_reports_still_equal(
        self, rolled, api, analyst, session, sessionmaker
    ):
        # the open RFQ ends and its requests are answered: its day can be rolled up
        await session.execute(update(Rfq).where(Rfq.state.in_(OPEN)).values(state="expired"))
        await session.execute(
            update(DealerRequest)
            .where(DealerRequest.outcome == "pending")
            .values(outcome="no_response")
        )
        await session.commit()
        _, through = await jobs.refresh_rollups(sessionmaker, NOW)
        assert set(through.values()) == {(NOW - timedelta(days=1)).date()}
        log = await ex.load(session)
        await check_reports(api, analyst, log)

    async def test_reports_read_the_rollup_rows(self, rolled, api, analyst, session):
        """Not vacuous: a changed rollup row changes the report (the raw rows do not)."""
        w = {"since": at(2).isoformat(), "until": at(3).isoformat()}
        _, before = await get_report(api, analyst, "hit-ratio", ["underlying"], **w)
        t = AnalyticsRollup.__table__
        await session.execute(
            update(t)
            .where(t.c.report == "rfq_hit", t.c.cube == "underlying,client,channel",
                   t.c.k0 == "BTC")
            .values(m0=t.c.m0 + 1)
        )  # fmt: skip
        await session.commit()
        n = await session.scalar(
            select(func.count()).select_from(t).where(
                t.c.report == "rfq_hit", t.c.cube == "underlying,client,channel",
                t.c.k0 == "BTC", t.c.day == date(2026, 3, 2))
        )  # fmt: skip
        _, after = await get_report(api, analyst, "hit-ratio", ["underlying"], **w)
        assert after[("BTC",)]["requests"] == before[("BTC",)]["requests"] + n > n
        analytics_service.use_rollups = False
        _, raw = await get_report(api, analyst, "hit-ratio", ["underlying"], **w)
        assert raw == before

    async def test_reports_of_two_queries_agree_when_their_watermarks_differ(
        self, rolled, api, analyst, session
    ):
        """The funnel adds "best" (one rollup) to the counts (another) by group: with the job
        half-way (one watermark moved, the other not yet) the groups must still match."""
        st = AnalyticsRollupState
        await session.execute(
            update(st).where(st.report == "funnel_best").values(through=date(2026, 3, 2))
        )
        await session.commit()
        log = await ex.load(session)
        for since, until in ((at(-2), at(3)), (at(-2, 8.5), at(4, 9.0))):
            w = {"since": since.isoformat(), "until": until.isoformat()}
            for dims in (["dealer", "day"], ["day"], ["dealer"]):
                _, rows = await get_report(api, analyst, "funnel", dims, **w)
                _check(rows, ex.funnel(log, log.window(since, until), dims))

    async def test_rebuild_gives_the_same_rows(self, rolled, session, sessionmaker):
        async def rows() -> list[Any]:
            out: list[Any] = []
            for t in (AnalyticsRollup.__table__, AnalyticsHistogram.__table__):
                cols = [c for c in t.c if c.name != "id"]
                out += sorted(map(tuple, (await session.execute(select(*cols))).all()), key=repr)
            return out

        first = await rows()
        written, _ = await jobs.refresh_rollups(sessionmaker, NOW, rebuild=True)
        again = await rows()
        assert written == len(first) == len(again)
        assert again == first

    async def test_rebuild_takes_in_rfqs_written_in_the_past_and_drops_stale_rows(
        self, rolled, api, analyst, session, sessionmaker
    ):
        w = {"since": at(-2).isoformat(), "until": at(3).isoformat()}
        late = Rfq(
            id=new_id(),
            created_at=at(2, 3.0),
            updated_at=at(2, 3.0),
            expires_at=at(2, 3.1),
            state="expired",
            client="acme",
            channel="api",
            underlying="BTC",
            structure="call",
            side="buy",
            quantity=Decimal(10),
        )
        session.add(late)
        session.add_all(
            [
                AnalyticsRollup(id=new_id(), report="gone", cube="x", day=at(2).date(), m0=1.0),
                AnalyticsRollup(
                    id=new_id(),
                    report="rfq_hit",
                    cube="underlying,client,channel",
                    day=date(2026, 2, 1),
                    k0="BTC",
                    m0=5.0,
                ),
            ]
        )
        await session.commit()
        log = await ex.load(session)
        want = ex.rfq_hit_ratio(log, log.window(at(-2), at(3)), ["underlying"])
        _, stale = await get_report(api, analyst, "hit-ratio", ["underlying"], **w)
        assert stale[("BTC",)]["requests"] == want[("BTC",)]["requests"] - 1  # not rolled up
        await jobs.refresh_rollups(sessionmaker, NOW, rebuild=True)
        _, rows = await get_report(api, analyst, "hit-ratio", ["underlying"], **w)
        assert_rows(rows, want)
        t = AnalyticsRollup
        assert not await session.scalar(select(func.count()).where(t.report == "gone"))
        assert not await session.scalar(select(func.count()).where(t.day < date(2026, 2, 27)))

    async def test_markouts_are_rolled_up_only_where_every_fill_has_them_stored(
        self, seeded, sessionmaker, api, analyst, session
    ):
        _, through = await jobs.refresh_rollups(sessionmaker, NOW)
        first = date(2026, 2, 27)  # the outside RFQ, traded: its fill has none stored yet
        assert {k for k, v in through.items() if v != OPEN_DAY} == {
            f"{r.name}:{ru.cube_name(c)}"
            for r in ru.ROLLUPS.values()
            if r.markouts
            for c in r.cubes
        }
        assert {v for v in through.values() if v != OPEN_DAY} == {first}
        log = await ex.load(session)
        await check_reports(api, analyst, log)  # markouts from the raw rows meanwhile
        # the markouts of fills made up to Mar 2 10:00 are stored: the rollups move to the
        # day before the first fill still without them
        assert await jobs.store_markouts(sessionmaker, at(2, 11.0))
        _, through = await jobs.refresh_rollups(sessionmaker, NOW)
        assert {v for v in through.values() if v != OPEN_DAY} == {date(2026, 3, 1)}
        await jobs.store_markouts(sessionmaker, NOW)
        _, through = await jobs.refresh_rollups(sessionmaker, NOW)
        assert set(through.values()) == {OPEN_DAY}
        await check_reports(api, analyst, log)

    def test_the_cube_is_chosen_by_grouping_and_filters(self):
        from app.analytics.dimensions import Dim
        from app.analytics.schemas import AnalyticsQuery

        hit = ru.ROLLUPS["rfq_hit"]
        q = AnalyticsQuery(at(1), at(2), (Dim.CLIENT, Dim.DAY))
        assert ru.choose_cube(hit, q) == ru.RFQ_CUBES[0]
        q = AnalyticsQuery(at(1), at(2), (Dim.STRUCTURE,), underlying="BTC")
        assert ru.choose_cube(hit, q) == ru.RFQ_CUBES[1]
        q = AnalyticsQuery(at(1), at(2), (Dim.STRUCTURE,), client="acme")
        assert ru.choose_cube(hit, q) is None
        assert ru.choose_cube(hit, AnalyticsQuery(at(1), at(2), (Dim.HOUR,))) is None


#: groupings of the response times: by dealer (ties: the seeded latencies repeat), by dealer ×
#: client × day (many groups with a single observation), from each cube and from none (hour)
RESPONSE_DIMS = (
    [], ["dealer"], ["day"], ["dealer", "day"], ["underlying", "channel"],
    ["dealer", "structure", "side"], ["dealer", "client"], ["dealer", "client", "day"],
    ["hour"], ["client"],
)  # fmt: skip


class TestResponseTimeHistograms:
    """Response times from the daily histograms of whole milliseconds equal, to the last bit,
    ``percentile_cont`` over the raw rows (and the independent computation)."""

    @pytest.fixture
    async def sub_ms(self, seeded, session):
        """First quotes off the millisecond grid (the values are rounded down on every
        path): +0.999 ms, +0.5 ms and +1 µs on some requests."""
        reqs = (
            await session.scalars(
                select(DealerRequest)
                .where(DealerRequest.first_quote_at.is_not(None))
                .order_by(DealerRequest.created_at, DealerRequest.id)
            )
        ).all()
        for i, d in enumerate(reqs):
            assert d.first_quote_at is not None
            assert d.sent_at is not None
            if i % 3:
                d.first_quote_at += timedelta(microseconds=(999, 500, 1)[i % 3])
            if i % 5 == 0:  # sent a µs before a whole second: 0.999999 s + 40.9995 ms
                d.sent_at = d.sent_at.replace(microsecond=999_999)
                d.first_quote_at = d.sent_at + timedelta(microseconds=40_999_5 // 10 + i)
        await session.commit()

    async def _both(self, api: Any, analyst: Any, dims: list[str], **w: Any) -> Any:
        return await fast_and_raw(api, analyst, "response-times", dims, **w)

    async def test_histograms_equal_percentile_cont_of_the_raw_rows(
        self, sub_ms, api, analyst, session, sessionmaker
    ):
        await jobs.refresh(sessionmaker, NOW)
        assert await session.scalar(select(func.count()).select_from(AnalyticsHistogram))
        log = await ex.load(session)
        singles = ties = 0
        for since, until in WINDOWS:
            w = {"since": since.isoformat(), "until": until.isoformat()}
            for dims in RESPONSE_DIMS:
                fast, raw = await self._both(api, analyst, dims, **w)
                assert fast == raw, (since, until, dims)  # identical, not approximately
                _check(fast, ex.response_times(log, log.window(since, until), dims))
                singles += sum(r["answered"] == 1 for r in fast.values())
                ties += sum(
                    r["answered"] > 1 and r["ttfq_p50_ms"] == int(r["ttfq_p50_ms"])
                    for r in fast.values()
                )
            _, rows = await get_report(
                api, analyst, "response-times", ["underlying"], dealer="bravo", **w
            )
            analytics_service.use_rollups = False
            _, raw = await get_report(
                api, analyst, "response-times", ["underlying"], dealer="bravo", **w
            )
            analytics_service.use_rollups = True
            assert rows == raw
        assert singles
        assert ties

    async def test_reports_read_the_histograms(self, seeded, api, analyst, session, sessionmaker):
        """Not vacuous: doubling one day's counts doubles the day's answered requests."""
        await jobs.refresh(sessionmaker, NOW)
        w = {"since": at(2).isoformat(), "until": at(3).isoformat()}
        fast, raw = await self._both(api, analyst, ["dealer"], **w)
        assert fast == raw
        await double_histogram_counts(session, "response_times")
        _, doubled = await get_report(api, analyst, "response-times", ["dealer"], **w)
        for key, row in raw.items():
            assert doubled[key]["answered"] == 2 * row["answered"]
            assert doubled[key]["ttfq_mean_ms"] == row["ttfq_mean_ms"]


async def double_histogram_counts(
    session: AsyncSession, report: str, cube: str = "dealer,underlying,channel"
) -> None:
    """Tamper with the stored histograms of one report and cube: every count doubled."""
    t = AnalyticsHistogram
    hists = (await session.scalars(select(t).where(t.report == report, t.cube == cube))).all()
    assert hists
    for h in hists:
        counts = np.frombuffer(h.obs_counts, "<i8") * 2
        h.obs_counts = counts.astype("<i8").tobytes()
    await session.commit()


#: groupings of the price reports: from each cube of theirs and from none (hour)
PRICE_DIMS = {
    "dealer": ([], ["dealer"], ["day"], ["dealer", "day"], ["underlying", "channel"],
               ["dealer", "structure", "side"], ["dealer", "client", "day"], ["hour"]),
    "client": ([], ["underlying"], ["client", "day"], ["structure", "side"],
               ["size_contracts", "tenor"], ["size_notional", "size_vega"], ["hour"]),
}  # fmt: skip
#: off-tick offsets (coin): below half a tick, exactly half (rounds away from zero), above
OFF_TICK = (Decimal("0.00004"), Decimal("0.00005"), Decimal("-0.00005"), Decimal("0.000051"))


class TestPriceHistograms:
    """Quote widths and cover from the daily histograms of whole ticks (and cents) equal, to
    the last bit, ``percentile_cont`` and the exact means over the raw rows (and the
    independent computation), with prices off the tick."""

    @pytest.fixture
    async def off_tick(self, seeded, session):
        quotes = (
            await session.scalars(
                select(DealerQuote).order_by(DealerQuote.received_at, DealerQuote.id)
            )
        ).all()
        for i, dq in enumerate(quotes):
            off = OFF_TICK[i % len(OFF_TICK)]
            if dq.bid_coin is not None and i % 2:
                dq.bid_coin += off
            if dq.ask_coin is not None and i % 3:
                dq.ask_coin -= off
        cqs = (await session.scalars(select(ClientQuote).order_by(ClientQuote.id))).all()
        for i, cq in enumerate(cqs):
            off = OFF_TICK[i % len(OFF_TICK)]
            if cq.ask_coin is not None:
                cq.ask_coin += off
            if cq.bid_usd is not None:
                cq.bid_usd += Decimal("0.005") if i % 2 else Decimal("0.0049")
        await session.commit()

    async def _both(self, api: Any, analyst: Any, path: str, dims: list[str], **w: Any) -> Any:
        return await fast_and_raw(api, analyst, path, dims, **w)

    async def test_histograms_equal_the_raw_rows(
        self, off_tick, api, analyst, session, sessionmaker
    ):
        await jobs.refresh(sessionmaker, NOW)
        for name in ("quote_width_dealer", "quote_width_client", "quote_width_client_usd",
                     "cover"):  # fmt: skip
            t = AnalyticsHistogram
            assert await session.scalar(select(func.count()).where(t.report == name)), name
        log = await ex.load(session)
        singles = ties = 0
        reports = (
            ("quote-width", {}, "dealer", ex.dealer_width, "quotes", "width_coin_p50"),
            ("quote-width", {"source": "client"}, "client", ex.client_width, "quotes",
             "width_coin_p50"),
            ("cover", {}, "dealer", ex.cover, "observations", "cover_coin_p50"),
        )  # fmt: skip
        for since, until in WINDOWS:
            w = {"since": since.isoformat(), "until": until.isoformat()}
            rfqs = log.window(since, until)
            for path, params, unit, want, count, p50 in reports:
                for dims in PRICE_DIMS[unit]:
                    fast, raw = await self._both(api, analyst, path, dims, **params, **w)
                    assert fast == raw, (path, since, until, dims)  # identical
                    _check(fast, want(log, rfqs, dims))
                    singles += sum(r[count] == 1 for r in fast.values())
                    ties += sum(
                        r[count] > 1 and r[p50] is not None
                        and abs(r[p50] * 10_000 - round(r[p50] * 10_000)) < 1e-6
                        for r in fast.values()
                    )  # fmt: skip
            for path, params in (("quote-width", {}), ("cover", {})):
                fast, raw = await self._both(
                    api, analyst, path, ["underlying"], dealer="bravo", **params, **w
                )
                assert fast == raw
        assert singles
        assert ties

    async def test_reports_read_the_histograms(self, seeded, api, analyst, session, sessionmaker):
        """Not vacuous: doubling one day's counts doubles the day's observations."""
        await jobs.refresh(sessionmaker, NOW)
        w = {"since": at(2).isoformat(), "until": at(3).isoformat()}
        fast, raw = await self._both(api, analyst, "cover", ["dealer"], **w)
        assert fast == raw
        await double_histogram_counts(session, "cover")
        _, doubled = await get_report(api, analyst, "cover", ["dealer"], **w)
        for key, row in raw.items():
            assert doubled[key]["observations"] == 2 * row["observations"]
            assert doubled[key]["cover_coin_mean"] == row["cover_coin_mean"]


@pytest.mark.parametrize(
    ("price", "per", "want"),
    [
        ("0.12345", 10_000, 1235), ("-0.12345", 10_000, -1235), ("0.123449999", 10_000, 1234),
        ("0.1234", 10_000, 1234), ("12", 10_000, 120_000), ("-0.00004", 10_000, 0),
        ("0.000050", 10_000, 1), ("1.005", 100, 101), ("-1.004999", 100, -100),
        ("250.5", 100, 25050),
    ],
)  # fmt: skip
async def test_prices_in_whole_ticks_on_the_database(session, price, per, want):
    """The SQL rounding to the tick (half away from zero, from the exact decimal) is the
    independent computation's, on SQLite and PostgreSQL."""
    repo = AnalyticsRepository(session)
    stored = select(literal(Decimal(price), Money()).label("p")).subquery()
    got = await session.scalar(select(repo._units(stored.c.p, per)))
    assert got == want == ex.units(Decimal(price), per)


@pytest.mark.parametrize(
    "xs",
    [[7], [5, 5], [1, 2], [3, 1, 2, 2, 2, 9], list(range(1, 21)), [0, 1000] * 7 + [3]],
)
def test_histogram_percentiles_are_percentile_cont(xs):
    values, counts = np.unique(np.array(xs, dtype=np.int64), return_counts=True)
    h = ru.merge_histograms([(values[::-1].copy(), counts[::-1].copy())])
    s = sorted(xs)
    for f in (0.5, 0.95, 0.0, 1.0):
        want = percentile_cont(f, len(s), lambda i: float(s[i]))
        assert ru.histogram_percentile(h, f) == want
        assert want == pytest.approx(float(np.percentile(s, f * 100)), rel=1e-12)
    halves = ru.merge_histograms([h, h])
    assert list(halves[1]) == list(2 * h[1])


class TestStoredMarkouts:
    async def test_the_job_stores_final_markouts_and_reports_are_unchanged(
        self, seeded, api, analyst, session, sessionmaker
    ):
        log = await ex.load(session)
        fills = [f for f in log.fills if f.counterparty in ("client", "dealer")]
        # at T0 + 10 h only the fills made an hour before are final
        now = T0 + timedelta(hours=10)
        final = [f for f in fills if f.filled_at < now - jobs.FINAL_AFTER]
        assert 0 < len(final) < len(fills)
        assert await jobs.store_markouts(sessionmaker, now, batch=3) == len(final)
        stored = set((await session.scalars(select(FillMarkout.fill_id))).all())
        assert stored == {f.id for f in final}
        assert await jobs.store_markouts(sessionmaker, now) == 0  # nothing new
        await check_reports(api, analyst, log)  # stored and priced on the fly, mixed
        assert await jobs.store_markouts(sessionmaker, NOW) == len(fills) - len(final)
        analytics_service.markout_cache.clear()
        await check_reports(api, analyst, log)  # all stored
        # unpriced horizons are stored as NULL
        nulls = await session.scalar(
            select(func.count()).where(FillMarkout.markout_1m_usd.is_(None))
        )
        assert nulls
        assert nulls < len(fills)

    async def test_reports_read_the_stored_values(
        self, seeded, api, analyst, session, sessionmaker
    ):
        await jobs.store_markouts(sessionmaker, NOW)
        _, before = await get_report(api, analyst, "markouts", [])
        await session.execute(
            update(FillMarkout).where(FillMarkout.markout_30m_usd.is_not(None))
            .values(markout_30m_usd=FillMarkout.markout_30m_usd + 1.0)
        )  # fmt: skip
        await session.commit()
        analytics_service.markout_cache.clear()
        _, after = await get_report(api, analyst, "markouts", [])
        row, was = after[()], before[()]
        assert row["markout_30m_usd"] == pytest.approx(
            was["markout_30m_usd"] + was["quantity"], rel=1e-9
        )
        analytics_service.use_stored_markouts = False
        analytics_service.markout_cache.clear()
        _, raw = await get_report(api, analyst, "markouts", [])
        assert raw == before


def test_the_cli_refreshes_a_database(tmp_path, monkeypatch):
    import asyncio

    from typer.testing import CliRunner

    from app import migrate
    from app.cli import cli
    from app.config import Settings, get_settings
    from app.db import create_engine, create_sessionmaker
    from tests.analytics.seed import seed_log

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(url)

    async def seed() -> None:
        engine = create_engine(Settings(database_url=url))
        async with create_sessionmaker(engine)() as s, s.begin():
            await seed_log(s)
        await engine.dispose()

    async def counts() -> tuple[int, int, list[date]]:
        engine = create_engine(Settings(database_url=url))
        async with create_sessionmaker(engine)() as s:
            marked = await s.scalar(select(func.count()).select_from(FillMarkout))
            rows = await s.scalar(select(func.count()).select_from(AnalyticsRollup))
            rows += await s.scalar(select(func.count()).select_from(AnalyticsHistogram)) or 0
            through = list((await s.scalars(select(AnalyticsRollupState.through))).all())
        await engine.dispose()
        return marked or 0, rows or 0, through

    asyncio.run(seed())
    monkeypatch.setenv("RFQDESK_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(cli, ["analytics", "refresh"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 0, res.output
    marked, rows, through = asyncio.run(counts())
    assert marked > 0
    assert rows > 0
    assert set(through) == {OPEN_DAY}
    assert f"markouts stored: {marked} " in res.output
    assert f"rollup rows written: {rows} " in res.output
