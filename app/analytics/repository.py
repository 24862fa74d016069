"""All analytics SQL.

Every report is one *observation* query (one row per RFQ, dealer request, fill or quote side:
the report's ``unit``) with the group-by dimensions as columns ``g0…gN`` and the measures as
named columns, wrapped in one aggregation ``GROUP BY 1…N``. PostgreSQL (the target) computes
every aggregate, percentiles included (``percentile_cont``). SQLite has no ``percentile_cont``:
when a report asks for one there, the observation rows are fetched and aggregated in Python
with the same definitions (:func:`percentile_cont` repeats PostgreSQL's float8 steps).

Every report covers the RFQs created in ``[since, until)`` (``ix_rfq_created_at_id``) and what
was logged about them: the log table a report reads (dealer requests, dealer quotes, client
quotes, fills) is range-scanned on its own time index over ``[since, until + SLACK)`` and
joined to the window's RFQs, a small hash table. Day and hour are those of the RFQ's creation.

"Best" and cover rank every dealer's final firm quote of an RFQ with one window-function pass
over the window's quotes (no aggregate-and-join-back). The planner underestimates how many log
rows join the window's RFQs and would then sort them to group; plain aggregations are run with
``enable_sort = off`` (hash aggregation), those that rank or take percentiles without.

Money columns are text on SQLite, so every price is cast to a float before it is compared or
summed; SQLite's time differences are taken from the stored text to keep the microseconds.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Date,
    Float,
    FromClause,
    Integer,
    Interval,
    Select,
    String,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.analytics.dimensions import BUCKETS, Dim
from app.analytics.markouts import HORIZON_NAMES, MARKOUT_HORIZONS_S, MarkoutFill, MarkoutLeg
from app.analytics.schemas import AnalyticsQuery
from app.models import (
    ClientQuote,
    Dealer,
    DealerQuote,
    DealerRequest,
    Fill,
    FillMarkout,
    MarketSnapshot,
    Rfq,
    RfqLeg,
)

#: dealer quotes that stood as the dealer's final, firm price
FIRM_QUOTE = ("live", "won", "lost", "expired")
#: dealer request outcomes that mean "answered with a firm price"
ANSWERED = ("quoted", "won", "lost")
TRADED = ("filled", "partially_filled")
OPEN = ("new", "quoting", "quoted", "accepted")
#: what is logged about an RFQ (dealer requests, quotes, client quotes, fills) is logged
#: within its life (an hour at most): reports scan those tables' time indexes up to this long
#: after the window and keep the rows of the window's RFQs
SLACK = timedelta(days=1)
#: the price tick, the resolution of the reports that take percentiles of coin prices (quote
#: widths, cover): a coin price is a whole number of 1e-4 coin, rounded half away from zero
TICKS_PER_COIN = 10_000
#: USD prices in those reports: whole cents, rounded half away from zero
CENTS_PER_USD = 100

AggKind = Literal["count", "sum", "count_nonnull", "mean", "p50", "p95"]


@dataclass(frozen=True)
class Agg:
    """One aggregate of an observation column (``column`` unused for ``count``)."""

    name: str
    kind: AggKind
    column: str = ""


AggRow = tuple[tuple[Any, ...], dict[str, float | int | None]]
"""(group values in ``group_by`` order, aggregates by name)"""


@dataclass(frozen=True)
class Spec:
    """A report's observation query (group-by columns ``g0…g{n-1}`` first) and what to
    aggregate of it; ``sorts``: the observation query needs sorted rows (window functions)."""

    obs: Any
    n: int
    aggs: Sequence[Agg]
    sorts: bool = False


def _f(col: Any) -> ColumnElement[float]:
    """A money column as a float (text on SQLite, NUMERIC on PostgreSQL)."""
    return cast(col, Float)


def _flag(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return case((cond, 1), else_=0)


def _bucket(value: ColumnElement[Any], edges: Sequence[float]) -> ColumnElement[Any]:
    whens: list[tuple[ColumnElement[bool], Any]] = [(value.is_(None), null())]
    whens += [(value < literal(float(e)), i) for i, e in enumerate(edges)]
    return case(*whens, else_=len(edges))


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.pg = session.get_bind().dialect.name == "postgresql"

    async def prepare(self, timeout_s: float) -> None:
        """Per-transaction settings for reporting queries on PostgreSQL: no JIT (compiling
        costs more than it saves at this size), room for hash tables and sorts, and a time
        limit so a huge window cannot hold a connection long."""
        if self.pg:
            for sql in (
                "SET LOCAL jit = off",
                "SET LOCAL work_mem = '64MB'",
                f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}",
            ):
                await self.session.execute(text(sql))

    # ------------------------------------------------------------------ dialect helpers
    def _utc(self, ts: Any) -> ColumnElement[Any]:
        return func.timezone(literal_column("'UTC'"), ts)

    def _day(self, ts: Any) -> ColumnElement[Any]:
        return cast(self._utc(ts), Date) if self.pg else func.date(ts)

    def _hour(self, ts: Any) -> ColumnElement[Any]:
        if self.pg:
            return cast(func.extract("hour", self._utc(ts)), Integer)
        return cast(func.strftime("%H", ts), Integer)

    def _millis(self, start: Any, end: Any) -> ColumnElement[int]:
        """``end - start`` in whole milliseconds, rounded down, exactly (an integer: reports
        that take percentiles of it can keep exact histograms of it)."""
        if self.pg:
            # EXTRACT gives a numeric (PostgreSQL 14+): exact to the microsecond
            ms = func.floor(func.extract("epoch", end - start) * 1000)
            return cast(ms, BigInteger)

        # SQLite: whole seconds and the six digits of the microseconds, as integers (the
        # seconds of the text without its fraction: SQLite's own time rounds to the ms)
        def micros(ts: Any) -> ColumnElement[int]:
            return cast(func.substr(ts, 21), Integer)

        def secs(ts: Any) -> ColumnElement[int]:
            return cast(func.strftime("%s", func.substr(ts, 1, 19)), Integer)

        whole = secs(end) - secs(start)
        us = whole * 1_000_000 + micros(end) - micros(start)
        floor_us = us - ((us % 1000) + 1000) % 1000  # a multiple of 1000 (floor, signs too)
        return cast(floor_us.self_group().op("/")(literal(1000)), Integer)

    def _units(self, money: Any, per: int) -> ColumnElement[int]:
        """A money column in whole ``1/per`` units (``per`` a power of ten: ``TICKS_PER_COIN``,
        ``CENTS_PER_USD``), rounded half away from zero, exactly (an integer): from the exact
        decimal on both databases (PostgreSQL's ``round(numeric)``; SQLite's stored text by
        its digits, never through a float)."""
        if self.pg:
            return cast(func.round(money * literal_column(str(per))), BigInteger)
        digits = len(str(per)) - 1

        def cat(*parts: Any) -> ColumnElement[str]:
            out: ColumnElement[str] = parts[0]
            for part in parts[1:]:
                out = out.op("||")(part)
            return out

        # SQLite: the text of the decimal (format "f": digits, one '.', no exponent)
        money = type_coerce(money, String())
        mag_text = func.ltrim(money, literal("-"), type_=String())
        padded = cat(
            mag_text,
            case((func.instr(mag_text, literal(".")) == 0, literal(".")), else_=literal("")),
            literal("0" * (digits + 1)),
        )
        dot = func.instr(padded, literal("."))
        whole = cast(func.substr(padded, 1, dot - 1), Integer)
        frac = cast(func.substr(padded, dot + 1, digits), Integer)
        next_digit = cast(func.substr(padded, dot + 1 + digits, 1), Integer)
        mag = whole * per + frac + case((next_digit >= 5, 1), else_=0)
        return cast(case((money.is_(None), null()), (money.like("-%"), -mag), else_=mag), Integer)

    def _plus(self, ts: ColumnElement[Any], seconds: float) -> ColumnElement[Any]:
        if self.pg:
            return ts + literal_column(f"interval '{float(seconds):g} seconds'", Interval())
        return func.strftime("%Y-%m-%d %H:%M:%f", ts, f"{float(seconds):+} seconds")

    def _tenor_days(self, expiry: ColumnElement[Any], ts: Any) -> ColumnElement[Any]:
        if self.pg:
            return expiry - cast(self._utc(ts), Date)
        return func.julianday(expiry) - func.julianday(func.date(ts))

    # ------------------------------------------------------------------ aggregation
    async def _aggregate(
        self, obs: Any, n_dims: int, aggs: Sequence[Agg], *, sorts: bool = False
    ) -> list[AggRow]:
        """``GROUP BY`` the first ``n_dims`` columns (``g0``…) of the observation subquery.

        ``sorts``: the observation query needs sorted rows (window functions).
        """
        o = obs.subquery("o")
        dims = [o.c[f"g{i}"] for i in range(n_dims)]
        python = not self.pg and any(a.kind in ("p50", "p95") for a in aggs)
        if python:
            cols = sorted({a.column for a in aggs if a.column})
            result = await self.session.execute(select(*dims, *(o.c[c] for c in cols)))
            return _aggregate_rows(result.all(), n_dims, cols, aggs)
        exprs: list[ColumnElement[Any]] = []
        for a in aggs:
            if a.kind == "count":
                exprs.append(func.count().label(a.name))
                continue
            col = o.c[a.column]
            if a.kind == "count_nonnull":
                exprs.append(func.count(col).label(a.name))
            elif a.kind == "sum":
                exprs.append(func.sum(col).label(a.name))
            elif a.kind == "mean":
                exprs.append(func.avg(col).label(a.name))
            else:
                q = 0.5 if a.kind == "p50" else 0.95
                exprs.append(func.percentile_cont(q).within_group(col).label(a.name))
        stmt = select(*dims, *exprs).select_from(o)
        if self.pg:
            # The planner underestimates by an order of magnitude how many log rows join the
            # window's RFQs (it takes the two time ranges as independent), and then sorts them
            # all to make a handful of groups, which doubles the time. Hash aggregation is
            # right for a report; percentiles and window functions still need their sorts.
            hash_only = not sorts and not any(a.kind in ("p50", "p95") for a in aggs)
            await self.session.execute(
                text(f"SET LOCAL enable_sort = {'off' if hash_only else 'on'}")
            )
        if n_dims:
            stmt = stmt.group_by(*(text(str(i + 1)) for i in range(n_dims)))
        rows = (await self.session.execute(stmt)).all()
        out: list[AggRow] = []
        for row in rows:
            values = {a.name: _number(row[n_dims + j]) for j, a in enumerate(aggs)}
            out.append((tuple(row[:n_dims]), values))
        return out

    # ------------------------------------------------------------------ dimensions
    def _dims(
        self,
        q: AnalyticsQuery,
        r: FromClause,
        *,
        dealer_name: Any = None,
        cq: FromClause | None = None,
        ms: FromClause | None = None,
    ) -> list[ColumnElement[Any]]:
        """The group-by columns ``g0…`` of the query's dimensions (all of the RFQ's, but the
        dealer's; day and hour of the RFQ's creation)."""
        out: list[ColumnElement[Any]] = []
        for i, dim in enumerate(q.group_by):
            expr: ColumnElement[Any]
            if dim is Dim.DEALER:
                expr = dealer_name
            elif dim is Dim.DAY:
                expr = self._day(r.c.created_at)
            elif dim is Dim.HOUR:
                expr = self._hour(r.c.created_at)
            elif dim is Dim.SIZE_CONTRACTS:
                expr = _bucket(_f(r.c.quantity), BUCKETS[dim])
            elif dim is Dim.SIZE_NOTIONAL:
                assert ms is not None  # noqa: S101 - _with_quote joined it
                expr = _bucket(_f(r.c.quantity) * _f(ms.c.spot), BUCKETS[dim])
            elif dim is Dim.SIZE_VEGA:
                assert cq is not None  # noqa: S101 - _with_quote joined it
                vega = cq.c.greeks["gross_vega_usd_per_vol_point"].as_float()
                expr = _bucket(vega, BUCKETS[dim])
            elif dim is Dim.TENOR:
                leg = RfqLeg.__table__.alias("leg")
                last = select(func.max(leg.c.expiry)).where(leg.c.rfq_id == r.c.id)
                expr = _bucket(
                    self._tenor_days(last.scalar_subquery(), r.c.created_at), BUCKETS[dim]
                )
            else:
                expr = r.c[dim.value]
            out.append(expr.label(f"g{i}"))
        return out

    def _rfqs(self, q: AnalyticsQuery) -> tuple[FromClause, list[ColumnElement[bool]]]:
        """The window's RFQs: created in ``[since, until)``, filtered."""
        r = Rfq.__table__.alias("r")
        where = [r.c.created_at >= q.since, r.c.created_at < q.until]
        if q.underlying is not None:
            where.append(r.c.underlying == q.underlying)
        if q.client is not None:
            where.append(r.c.client == q.client)
        return r, where

    def _after(self, col: Any, q: AnalyticsQuery) -> list[ColumnElement[bool]]:
        """``col`` (a time logged after the RFQ was created, within its life) in the window
        widened by the slack: lets the index on ``col`` narrow the scan; the join to the
        window's RFQs decides."""
        return [col >= q.since, col < _plus_slack(q.until)]

    def _with_quote(
        self, from_: FromClause, r: FromClause, q: AnalyticsQuery, *, force: bool = False
    ) -> tuple[FromClause, FromClause | None, FromClause | None]:
        """Join the RFQ's client quote (the one not superseded) and its snapshot, if needed."""
        dims = set(q.group_by)
        need_ms = Dim.SIZE_NOTIONAL in dims
        if not (force or need_ms or Dim.SIZE_VEGA in dims):
            return from_, None, None
        cq = ClientQuote.__table__.alias("cq")
        on = and_(
            cq.c.rfq_id == r.c.id, cq.c.status != "superseded", *self._after(cq.c.created_at, q)
        )
        from_ = from_.join(cq, on, isouter=True)
        ms = None
        if need_ms:
            ms = MarketSnapshot.__table__.alias("ms")
            from_ = from_.join(ms, ms.c.id == cq.c.snapshot_id, isouter=True)
        return from_, cq, ms

    def _dealer(
        self, from_: FromClause, dealer_id: Any, q: AnalyticsQuery, *, filter_: bool = True
    ) -> tuple[FromClause, Any, list[ColumnElement[bool]]]:
        """Join the dealer when grouping or filtering by it: (from, name column, filter)."""
        if Dim.DEALER not in q.group_by and q.dealer is None:
            return from_, None, []
        d = Dealer.__table__.alias("d")
        where = [d.c.name == q.dealer] if q.dealer is not None and filter_ else []
        return from_.join(d, d.c.id == dealer_id), d.c.name, where

    def _dealer_requests(
        self, q: AnalyticsQuery
    ) -> tuple[FromClause, list[ColumnElement[bool]], list[ColumnElement[Any]], FromClause]:
        """Quote requests sent to dealers (not skipped) for the window's RFQs."""
        dr = DealerRequest.__table__.alias("dr")
        r, where = self._rfqs(q)
        from_: FromClause = dr.join(r, r.c.id == dr.c.rfq_id)
        where += [*self._after(dr.c.created_at, q), dr.c.outcome != "skipped"]
        from_, cq, ms = self._with_quote(from_, r, q)
        from_, name, by_dealer = self._dealer(from_, dr.c.dealer_id, q)
        dims = self._dims(q, r, dealer_name=name, cq=cq, ms=ms)
        return from_, [*where, *by_dealer], dims, dr

    def _firm_quotes(
        self, q: AnalyticsQuery, extra: Sequence[ColumnElement[Any]], *, ticks: bool = False
    ) -> Any:
        """Each dealer's final firm price on the window's RFQs (one firm quote per request: a
        new quote replaces the previous one), with the side(s) the client could trade and,
        from ``extra``, window columns over all dealers of the RFQ. Not filtered by dealer:
        "best" compares with every dealer asked. ``ticks``: bid and ask in whole ticks
        (:data:`TICKS_PER_COIN`) instead of floats."""
        dq = DealerQuote.__table__.alias("dq")

        def price(col: Any) -> ColumnElement[Any]:
            return self._units(col, TICKS_PER_COIN) if ticks else _f(col)

        r, where = self._rfqs(q)
        from_: FromClause = dq.join(r, r.c.id == dq.c.rfq_id)
        from_, cq, ms = self._with_quote(from_, r, q)
        from_, name, _ = self._dealer(from_, dq.c.dealer_id, q, filter_=False)
        wanted = func.coalesce(r.c.accepted_side, r.c.side)
        dealer_col = [name.label("dealer")] if name is not None else []
        return (
            select(
                *self._dims(q, r, dealer_name=name, cq=cq, ms=ms),
                *dealer_col,
                dq.c.rfq_id,
                dq.c.received_at,
                price(dq.c.bid_coin).label("bid"),
                price(dq.c.ask_coin).label("ask"),
                # the client traded (or asked for) a side: dealers' offers matter when it buys
                _flag(wanted != "sell").label("on_ask"),
                _flag(wanted != "buy").label("on_bid"),
                *extra,
            )
            .select_from(from_)
            .where(*where, *self._after(dq.c.received_at, q), dq.c.status.in_(FIRM_QUOTE))
        )

    # ------------------------------------------------------------------ reports
    async def run(self, spec: Spec) -> list[AggRow]:
        return await self._aggregate(spec.obs, spec.n, spec.aggs, sorts=spec.sorts)

    async def rfq_hit_ratio(self, q: AnalyticsQuery) -> list[AggRow]:
        return await self.run(self.obs_rfq_hit(q))

    def obs_rfq_hit(self, q: AnalyticsQuery) -> Spec:
        r, where = self._rfqs(q)
        from_, cq, ms = self._with_quote(r, r, q, force=True)
        assert cq is not None  # noqa: S101
        final = r.c.state.not_in(OPEN)
        traded = r.c.state.in_(TRADED)
        obs = (
            select(
                *self._dims(q, r, cq=cq, ms=ms),
                _flag(cq.c.id.is_not(None) & final).label("quoted"),
                _flag(traded).label("traded"),
                _flag(~final).label("open"),
                case((traded, _f(r.c.filled_quantity)), else_=0.0).label("qty"),
            )
            .select_from(from_)
            .where(*where)
        )
        return Spec(obs, len(q.group_by), _HIT_AGGS)

    async def dealer_hit_ratio(self, q: AnalyticsQuery) -> list[AggRow]:
        return await self.run(self.obs_dealer_hit(q))

    def obs_dealer_hit(self, q: AnalyticsQuery) -> Spec:
        from_, where, dims, dr = self._dealer_requests(q)
        won = dr.c.outcome == "won"
        obs = (
            select(
                *dims,
                _flag(dr.c.outcome.in_(ANSWERED)).label("quoted"),
                _flag(won).label("traded"),
                _flag(dr.c.outcome == "pending").label("open"),
                case((won, _f(dr.c.fill_quantity)), else_=0.0).label("qty"),
            )
            .select_from(from_)
            .where(*where)
        )
        return Spec(obs, len(q.group_by), _HIT_AGGS)

    async def funnel_counts(self, q: AnalyticsQuery) -> list[AggRow]:
        return await self.run(self.obs_funnel_counts(q))

    def obs_funnel_counts(self, q: AnalyticsQuery) -> Spec:
        from_, where, dims, dr = self._dealer_requests(q)
        outcomes = {
            "answered": dr.c.outcome.in_(ANSWERED),
            "won": dr.c.outcome == "won",
            "declined": dr.c.outcome == "declined",
            "no_response": dr.c.outcome == "no_response",
            "error": dr.c.outcome == "error",
        }
        obs = (
            select(*dims, *(_flag(c).label(n) for n, c in outcomes.items()))
            .select_from(from_)
            .where(*where)
        )
        aggs = [Agg("asked", "count"), *(Agg(n, "sum", n) for n in outcomes)]
        return Spec(obs, len(q.group_by), aggs)

    async def funnel_best(self, q: AnalyticsQuery) -> list[AggRow]:
        return await self.run(self.obs_funnel_best(q))

    def obs_funnel_best(self, q: AnalyticsQuery) -> Spec:
        """Firm quotes at the best price of their RFQ, on a side the client could trade."""
        n = len(q.group_by)
        fq = self._firm_quotes(q, []).subquery("fq")
        ranked = select(
            *fq.c,
            func.max(fq.c.bid).over(partition_by=fq.c.rfq_id).label("best_bid"),
            func.min(fq.c.ask).over(partition_by=fq.c.rfq_id).label("best_ask"),
        ).subquery("ranked")
        best = or_(
            and_(ranked.c.on_ask == 1, ranked.c.ask == ranked.c.best_ask),
            and_(ranked.c.on_bid == 1, ranked.c.bid == ranked.c.best_bid),
        )
        obs = select(*(ranked.c[f"g{i}"] for i in range(n)), _flag(best).label("best"))
        if q.dealer is not None:
            obs = obs.where(ranked.c.dealer == q.dealer)
        return Spec(obs, n, [Agg("best", "sum", "best")], sorts=True)

    async def response_times(self, q: AnalyticsQuery) -> list[AggRow]:
        """Time to first quote per group, from the raw rows (``percentile_cont``)."""
        rows = await self.run(self.obs_response_times(q))
        for _, v in rows:
            total, n = v.pop("ttfq_sum_ms"), v["answered"]
            v["ttfq_mean_ms"] = float(total) / n if total is not None and n else None
        return rows

    def obs_response_times(self, q: AnalyticsQuery) -> Spec:
        """Answered quote requests and their time to first quote ``ms``: whole milliseconds,
        rounded down (the report's resolution; the histogram rollup keeps the same values)."""
        from_, where, dims, dr = self._dealer_requests(q)
        obs = (
            select(*dims, self._millis(dr.c.sent_at, dr.c.first_quote_at).label("ms"))
            .select_from(from_)
            .where(
                *where,
                dr.c.outcome.in_(ANSWERED),
                dr.c.first_quote_at.is_not(None),
                dr.c.sent_at.is_not(None),
            )
        )
        return Spec(obs, len(q.group_by), _RESPONSE_AGGS)

    async def histogram(self, spec: Spec, column: str) -> list[AggRow]:
        """Per group of ``spec`` and value of its integer ``column``: the count of
        observations (the value is the last group column)."""
        o = spec.obs.subquery("h")
        cols = [*(o.c[f"g{i}"] for i in range(spec.n)), o.c[column].label(f"g{spec.n}")]
        obs = select(*cols).where(o.c[column].is_not(None))
        return await self._aggregate(obs, spec.n + 1, [Agg("n", "count")], sorts=spec.sorts)

    async def dealer_quote_width(self, q: AnalyticsQuery) -> list[AggRow]:
        """Dealer quote widths per group, from the raw rows (``percentile_cont`` of ticks)."""
        return _width_rows(await self.run(self.obs_quote_width_dealer(q)))

    def obs_quote_width_dealer(self, q: AnalyticsQuery) -> Spec:
        """Final firm dealer quotes with both sides and their width ``width``: ask − bid in
        whole ticks (each price rounded to the tick first: the report's resolution; the
        histogram rollup keeps the same values)."""
        n = len(q.group_by)
        fq = self._firm_quotes(q, [], ticks=True).subquery("fq")
        obs = select(
            *(fq.c[f"g{i}"] for i in range(n)),
            (fq.c.ask - fq.c.bid).label("width"),
            cast(null(), BigInteger).label("width_cents"),
        ).where(fq.c.bid.is_not(None), fq.c.ask.is_not(None))
        if q.dealer is not None:
            obs = obs.where(fq.c.dealer == q.dealer)
        return Spec(obs, n, _WIDTH_AGGS)

    async def client_quote_width(self, q: AnalyticsQuery) -> list[AggRow]:
        """Client quote widths per group, from the raw rows (``percentile_cont`` of ticks)."""
        return _width_rows(await self.run(self.obs_quote_width_client(q)))

    def obs_quote_width_client(self, q: AnalyticsQuery) -> Spec:
        """The desk's two-way client quotes: ``width`` in whole ticks, ``width_cents`` (ask −
        bid in USD) in whole cents, each price rounded first (the report's resolution)."""
        r, where = self._rfqs(q)
        from_, cq, ms = self._with_quote(r, r, q, force=True)
        assert cq is not None  # noqa: S101
        obs = (
            select(
                *self._dims(q, r, cq=cq, ms=ms),
                (
                    self._units(cq.c.ask_coin, TICKS_PER_COIN)
                    - self._units(cq.c.bid_coin, TICKS_PER_COIN)
                ).label("width"),
                (
                    self._units(cq.c.ask_usd, CENTS_PER_USD)
                    - self._units(cq.c.bid_usd, CENTS_PER_USD)
                ).label("width_cents"),
            )
            .select_from(from_)
            .where(*where, cq.c.bid_coin.is_not(None), cq.c.ask_coin.is_not(None))
        )
        return Spec(obs, len(q.group_by), _WIDTH_AGGS)

    async def cover(self, q: AnalyticsQuery) -> list[AggRow]:
        """Cover per group, from the raw rows (``percentile_cont`` of ticks)."""
        rows = await self.run(self.obs_cover(q))
        for _, v in rows:
            total, n = v.pop("cover_sum"), int(v["observations"] or 0)
            p50 = v.pop("cover_p50")
            v["cover_coin_mean"] = units_mean(total, n, TICKS_PER_COIN)
            v["cover_coin_p50"] = None if p50 is None else float(p50) / TICKS_PER_COIN
        return rows

    def obs_cover(self, q: AnalyticsQuery) -> Spec:
        """Per RFQ side the client could trade: ``cover``, |best − next-best| firm dealer
        price in whole ticks (prices rounded to the tick first, and ranked by them)."""
        n = len(q.group_by)
        fq = self._firm_quotes(q, [], ticks=True).subquery("fq")
        dims = [fq.c[f"g{i}"] for i in range(n)]
        dealer = [fq.c.dealer] if q.dealer is not None else []
        # one row per quoted side, ranked best first (bids by descending price)
        sides = union_all(
            select(*dims, *dealer, fq.c.rfq_id, fq.c.received_at, literal("bid").label("side"),
                   fq.c.bid.label("price"), (-fq.c.bid).label("key"))
            .where(fq.c.on_bid == 1, fq.c.bid.is_not(None)),
            select(*dims, *dealer, fq.c.rfq_id, fq.c.received_at, literal("ask").label("side"),
                   fq.c.ask.label("price"), fq.c.ask.label("key"))
            .where(fq.c.on_ask == 1, fq.c.ask.is_not(None)),
        ).subquery("sides")  # fmt: skip
        part = (sides.c.rfq_id, sides.c.side)
        order = (sides.c.key, sides.c.received_at)
        ranked = select(
            *sides.c,
            func.row_number().over(partition_by=part, order_by=order).label("rn"),
            func.lead(sides.c.price).over(partition_by=part, order_by=order).label("next_price"),
        ).subquery("ranked")
        obs = select(
            *(ranked.c[f"g{i}"] for i in range(n)),
            func.abs(ranked.c.price - ranked.c.next_price).label("cover"),
        ).where(ranked.c.rn == 1, ranked.c.next_price.is_not(None))
        if q.dealer is not None:
            obs = obs.where(ranked.c.dealer == q.dealer)
        aggs = [
            Agg("observations", "count"),
            Agg("cover_p50", "p50", "cover"),
            Agg("cover_sum", "sum", "cover"),
        ]
        return Spec(obs, n, aggs, sorts=True)

    def _fills(
        self, q: AnalyticsQuery, counterparty: str, *, quote: bool = True
    ) -> tuple[FromClause, list[ColumnElement[bool]], list[ColumnElement[Any]], dict[str, Any]]:
        """Fills of the window's RFQs with one counterparty, and the RFQ's client quote."""
        f = Fill.__table__.alias("f")
        r, where = self._rfqs(q)
        from_: FromClause = f.join(r, r.c.id == f.c.rfq_id)
        where += [f.c.counterparty == counterparty, *self._after(f.c.filled_at, q)]
        from_, cq, ms = self._with_quote(from_, r, q, force=quote)
        from_, name, by_dealer = self._dealer(from_, f.c.dealer_id, q)
        dims = self._dims(q, r, dealer_name=name, cq=cq, ms=ms)
        return from_, [*where, *by_dealer], dims, {"f": f, "r": r, "cq": cq}

    async def price_improvement(self, q: AnalyticsQuery, counterparty: str) -> list[AggRow]:
        return await self.run(self.obs_price_improvement(q, counterparty))

    def obs_price_improvement(self, q: AnalyticsQuery, counterparty: str) -> Spec:
        from_, where, dims, t = self._fills(q, counterparty)
        f, cq = t["f"], t["cq"]
        # the taker buys: the client when the desk sells to it; the desk when it buys from a
        # dealer. Improvement is (benchmark − price) for a buying taker, (price − benchmark)
        # for a selling one: positive means the taker traded better than the benchmark.
        taker_buys = f.c.side == ("sell" if counterparty == "client" else "buy")
        sign = case((taker_buys, 1.0), else_=-1.0)
        price, qty = _f(f.c.price_usd), _f(f.c.quantity)
        theo = _f(cq.c.theo_usd)
        screen = cq.c.greeks["screen_mid_usd"].as_float()
        obs = (
            select(
                *dims,
                qty.label("qty"),
                (sign * (theo - price) * qty).label("vs_theo"),
                (sign * (func.coalesce(screen, theo) - price) * qty).label("vs_mid"),
                _flag(screen.is_not(None)).label("screen"),
            )
            .select_from(from_)
            .where(*where)
        )
        return Spec(
            obs,
            len(q.group_by),
            [
                Agg("fills", "count"),
                Agg("quantity", "sum", "qty"),
                Agg("vs_theo_usd", "sum", "vs_theo"),
                Agg("vs_mid_usd", "sum", "vs_mid"),
                Agg("screen_mid_fills", "sum", "screen"),
            ],
        )

    async def calibration(self, q: AnalyticsQuery, model: str, buckets: int) -> list[AggRow]:
        return await self.run(self.obs_calibration(q, model, buckets))

    def obs_calibration(self, q: AnalyticsQuery, model: str, buckets: int) -> Spec:
        """One more group column ``g{n}``: the bucket of the predicted probability."""
        n = len(q.group_by)
        if model == "hit":
            r, where = self._rfqs(q)
            from_, cq, ms = self._with_quote(r, r, q, force=True)
            assert cq is not None  # noqa: S101
            dims = self._dims(q, r, cq=cq, ms=ms)
            accepted = cq.c.status == "accepted"
            where += [r.c.state.not_in(OPEN), cq.c.status.in_(("accepted", "passed", "expired"))]
            sides = []
            # the desk's bid is hit when the client sells, its offer lifted when it buys
            for p, price, client_side in (
                (cq.c.p_hit_bid, cq.c.bid_coin, "sell"),
                (cq.c.p_hit_ask, cq.c.ask_coin, "buy"),
            ):
                y = _flag(accepted & (r.c.accepted_side == client_side))
                sides.append(
                    select(*dims, p.label("p"), y.label("y"))
                    .select_from(from_)
                    .where(*where, p.is_not(None), price.is_not(None))
                )
            raw = union_all(*sides).subquery("raw")
        else:
            from_, where, dims, dr = self._dealer_requests(q)
            p = dr.c.p_answer if model == "fill" else dr.c.p_win
            hit = dr.c.outcome.in_(ANSWERED) if model == "fill" else dr.c.outcome == "won"
            raw = (
                select(*dims, p.label("p"), _flag(hit).label("y"))
                .select_from(from_)
                .where(*where, p.is_not(None), dr.c.outcome != "pending")
                .subquery("raw")
            )
        pr = cast(raw.c.p, Float)
        bucket = case((pr >= 1.0, buckets - 1), else_=cast(func.floor(pr * buckets), Integer))
        obs = select(
            *(raw.c[f"g{i}"] for i in range(n)),
            bucket.label(f"g{n}"),
            pr.label("p"),
            raw.c.y,
            ((pr - raw.c.y) * (pr - raw.c.y)).label("e2"),
        )
        return Spec(
            obs,
            n + 1,
            [
                Agg("n", "count"),
                Agg("predicted", "mean", "p"),
                Agg("realised", "mean", "y"),
                Agg("brier", "mean", "e2"),
            ],
        )

    # ------------------------------------------------------------------ markouts
    async def markout_fills(self, q: AnalyticsQuery, counterparty: str) -> list[MarkoutFill]:
        """The window's fills with one counterparty, and their stored markouts if any (the
        stored row is looked up on its own time index over the same range as the fill)."""
        from_, where, dims, t = self._fills(q, counterparty, quote=False)
        f, r = t["f"], t["r"]
        fm = FillMarkout.__table__.alias("fm")
        from_ = from_.join(
            fm, and_(fm.c.fill_id == f.c.id, *self._after(fm.c.filled_at, q)), isouter=True
        )
        stmt: Select[Any] = (
            select(
                *dims,
                *_markout_fill_columns(f, r),
                fm.c.fill_id.is_not(None),
                fm.c.markout_1m_usd,
                fm.c.markout_5m_usd,
                fm.c.markout_30m_usd,
            )
            .select_from(from_)
            .where(*where)
        )
        n = len(q.group_by)
        return [
            _markout_fill(row[n:], tuple(row[:n])) for row in (await self.session.execute(stmt))
        ]

    def obs_markouts(self, q: AnalyticsQuery, counterparty: str) -> Spec:
        """The window's fills with their *stored* markouts, as additive sums (the rollups'
        query: a fill without stored markouts counts as unpriced here, so the rollups only
        cover days whose fills all have them; the report prices the others itself)."""
        from_, where, dims, t = self._fills(q, counterparty, quote=False)
        f = t["f"]
        fm = FillMarkout.__table__.alias("fm")
        from_ = from_.join(
            fm, and_(fm.c.fill_id == f.c.id, *self._after(fm.c.filled_at, q)), isouter=True
        )
        qty = _f(f.c.quantity)
        cols: list[ColumnElement[Any]] = [qty.label("qty")]
        aggs = [Agg("fills", "count"), Agg("quantity", "sum", "qty")]
        for h in HORIZON_NAMES:
            m = fm.c[f"markout_{h}_usd"]
            cols += [
                m.label(f"m_{h}"),
                case((m.is_not(None), qty), else_=0.0).label(f"q_{h}"),
                (m * qty).label(f"usd_{h}"),
            ]
            aggs += [
                Agg(f"priced_{h}", "count_nonnull", f"m_{h}"),
                Agg(f"qty_{h}", "sum", f"q_{h}"),
                Agg(f"markout_{h}_usd", "sum", f"usd_{h}"),
            ]
        obs = select(*dims, *cols).select_from(from_).where(*where)
        return Spec(obs, len(q.group_by), aggs)

    async def unmarked_fills(
        self, before: datetime, limit: int, since: datetime | None = None
    ) -> list[MarkoutFill]:
        """Up to ``limit`` client and dealer fills made in ``[since, before)`` without stored
        markouts, oldest first."""
        f = Fill.__table__.alias("f")
        r = Rfq.__table__.alias("r")
        stored = FillMarkout.__table__.alias("stored")
        where = [
            f.c.counterparty.in_(("client", "dealer")),
            f.c.filled_at < before,
            stored.c.fill_id.is_(None),
        ]
        if since is not None:
            where.append(f.c.filled_at >= since)
        stmt = (
            select(*_markout_fill_columns(f, r), literal(False), null(), null(), null())
            .select_from(
                f.join(r, r.c.id == f.c.rfq_id).join(
                    stored, stored.c.fill_id == f.c.id, isouter=True
                )
            )
            .where(*where)
            .order_by(f.c.filled_at, f.c.id)
            .limit(limit)
        )
        return [_markout_fill(row, ()) for row in (await self.session.execute(stmt))]

    async def first_unmarked(self, since: datetime | None) -> datetime | None:
        """When the earliest client or dealer fill made from ``since`` without stored
        markouts was made."""
        f = Fill.__table__.alias("f")
        stored = FillMarkout.__table__.alias("stored")
        where: list[ColumnElement[bool]] = [
            f.c.counterparty.in_(("client", "dealer")),
            stored.c.fill_id.is_(None),
        ]
        if since is not None:
            where.append(f.c.filled_at >= since)
        first: datetime | None = await self.session.scalar(
            select(func.min(f.c.filled_at))
            .select_from(f.join(stored, stored.c.fill_id == f.c.id, isouter=True))
            .where(*where)
        )
        return first

    async def store_markouts(
        self, fills: Sequence[MarkoutFill], per_unit: np.ndarray, now: datetime
    ) -> None:
        """Store the fills' per-unit markouts (NaN as NULL); a fill stored meanwhile by
        another process is left as it is."""
        if not fills:
            return
        if self.pg:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert: Any = pg_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = sqlite_insert
        rows = [
            {
                "fill_id": f.fill_id,
                "filled_at": f.filled_at,
                "markout_1m_usd": _finite(values[0]),
                "markout_5m_usd": _finite(values[1]),
                "markout_30m_usd": _finite(values[2]),
                "computed_at": now,
            }
            for f, values in zip(fills, per_unit, strict=True)
        ]
        stmt = insert(FillMarkout).on_conflict_do_nothing(index_elements=["fill_id"])
        for batch in _chunks(rows, 5_000 if self.pg else 500):
            await self.session.execute(stmt, batch)

    async def try_lock(self, key: int) -> bool:
        """PostgreSQL: a transaction-level advisory lock, so that one process of several does
        a job at a time (SQLite: one writer anyway)."""
        if not self.pg:
            return True
        got = await self.session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
        return bool(got.scalar())

    async def later_snapshots(
        self, fill_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID | None, ...]]:
        """Per fill and horizon h, the first snapshot of its underlying taken in
        ``[filled_at + h, filled_at + 2h)`` (None when the market was not recorded then, or
        not yet)."""
        f = Fill.__table__.alias("f")
        r = Rfq.__table__.alias("r")
        ms = MarketSnapshot.__table__.alias("later")
        snaps = [
            select(ms.c.id)
            .where(
                ms.c.underlying == r.c.underlying,
                ms.c.taken_at >= self._plus(f.c.filled_at, h),
                ms.c.taken_at < self._plus(f.c.filled_at, 2 * h),
            )
            .order_by(ms.c.taken_at)
            .limit(1)
            .scalar_subquery()
            for h in MARKOUT_HORIZONS_S
        ]
        out: dict[uuid.UUID, tuple[uuid.UUID | None, ...]] = {}
        for batch in self._batches(fill_ids):
            rows = await self.session.execute(
                select(f.c.id, *snaps)
                .select_from(f.join(r, r.c.id == f.c.rfq_id))
                .where(self._in(f.c.id, batch))
            )
            for fid, *ids in rows.all():
                out[fid] = tuple(_uuid(x) for x in ids)
        return out

    def _in(self, col: Any, ids: list[uuid.UUID]) -> ColumnElement[bool]:
        """``col`` in ``ids``: one array parameter on PostgreSQL (any length)."""
        cond: ColumnElement[bool] = (
            col == any_(bindparam("ids", ids, type_=ARRAY(Uuid()))) if self.pg else col.in_(ids)
        )
        return cond

    def _batches(self, ids: Iterable[uuid.UUID]) -> Iterable[list[uuid.UUID]]:
        # SQLite binds each element of an IN list as a parameter: at most 32766
        return _chunks(sorted(set(ids)), 1_000_000 if self.pg else 5_000)

    async def legs(self, rfq_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[MarkoutLeg]]:
        leg = RfqLeg.__table__.alias("leg")
        out: dict[uuid.UUID, list[MarkoutLeg]] = defaultdict(list)
        for batch in self._batches(rfq_ids):
            rows = await self.session.execute(
                select(
                    leg.c.rfq_id,
                    leg.c.expiry,
                    _f(leg.c.strike),
                    leg.c.option_type,
                    leg.c.ratio,
                    leg.c.direction,
                )
                .where(self._in(leg.c.rfq_id, batch))
                .order_by(leg.c.rfq_id, leg.c.leg_index)
            )
            for rid, expiry, strike, kind, ratio, direction in rows.all():
                out[rid].append(
                    MarkoutLeg(
                        rfq_id=rid,
                        expiry=expiry,
                        strike=float(strike),
                        is_call=kind == "call",
                        signed_ratio=ratio if direction == "buy" else -ratio,
                    )
                )
        return out

    async def snapshot_data(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Stored snapshot documents by id, as JSON text (the caller decodes what it needs)."""
        ms = MarketSnapshot.__table__.alias("ms")
        out: dict[uuid.UUID, str] = {}
        for batch in self._batches(ids):
            rows = await self.session.execute(
                select(ms.c.id, cast(ms.c.data, Text())).where(self._in(ms.c.id, batch))
            )
            for sid, doc in rows.all():
                out[sid] = doc
        return out


_HIT_AGGS = [
    Agg("requests", "count"),
    Agg("quoted", "sum", "quoted"),
    Agg("traded", "sum", "traded"),
    Agg("open", "sum", "open"),
    Agg("traded_quantity", "sum", "qty"),
]
#: the mean is taken as the exact integer sum over the count (on every path)
_RESPONSE_AGGS = [
    Agg("answered", "count"),
    Agg("ttfq_p50_ms", "p50", "ms"),
    Agg("ttfq_p95_ms", "p95", "ms"),
    Agg("ttfq_sum_ms", "sum", "ms"),
]
#: widths in whole ticks and cents; means as the exact integer sums over the counts
_WIDTH_AGGS = [
    Agg("quotes", "count"),
    Agg("width_p50", "p50", "width"),
    Agg("width_sum", "sum", "width"),
    Agg("width_cents_n", "count_nonnull", "width_cents"),
    Agg("width_cents_sum", "sum", "width_cents"),
]


def units_mean(total: Any, n: int, per: int) -> float | None:
    """The mean of ``n`` whole ``1/per`` units summing to ``total``, in whole units: the
    exact quotient, correctly rounded (Python's integer true division)."""
    if total is None or not n:
        return None
    return int(total) / (n * per)


def _width_rows(rows: list[AggRow]) -> list[AggRow]:
    """The quote-width report's values from the raw rows' aggregates of ticks and cents."""
    for _, v in rows:
        n = int(v.pop("quotes") or 0)
        p50 = v.pop("width_p50")
        total, usd_n = v.pop("width_sum"), v.pop("width_cents_n")
        usd_total = v.pop("width_cents_sum")
        v.update(
            quotes=n,
            width_coin_mean=units_mean(total, n, TICKS_PER_COIN),
            width_coin_p50=None if p50 is None else float(p50) / TICKS_PER_COIN,
            width_usd_mean=units_mean(usd_total, int(usd_n or 0), CENTS_PER_USD),
        )
    return rows


def _markout_fill_columns(f: FromClause, r: FromClause) -> list[ColumnElement[Any]]:
    return [
        f.c.id,
        f.c.filled_at,
        f.c.rfq_id,
        f.c.side,
        _f(f.c.quantity),
        _f(f.c.price_usd),
        _f(r.c.hedge_reference),
    ]


def _markout_fill(row: Sequence[Any], group: tuple[Any, ...]) -> MarkoutFill:
    fid, at, rid, side, qty, px, hedge, has, m1, m5, m30 = row
    return MarkoutFill(
        fill_id=fid,
        filled_at=at,
        group=group,
        rfq_id=rid,
        desk_buys=side == "buy",
        quantity=float(qty),
        price_usd=float(px),
        hedge_reference=None if hedge is None else float(hedge),
        stored=tuple(np.nan if v is None else float(v) for v in (m1, m5, m30)) if has else None,
    )


def _finite(value: Any) -> float | None:
    x = float(value)
    return x if np.isfinite(x) else None


def _plus_slack(t: datetime) -> datetime:
    latest = datetime.max.replace(tzinfo=t.tzinfo)
    return t + SLACK if t < latest - SLACK else latest


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return float(value)


def _aggregate_rows(
    rows: Sequence[Any], n_dims: int, cols: list[str], aggs: Sequence[Agg]
) -> list[AggRow]:
    """The SQL aggregates, in Python (SQLite's missing percentile_cont)."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[:n_dims])].append(row[n_dims:])
    index = {c: i for i, c in enumerate(cols)}
    out: list[AggRow] = []
    for key, members in groups.items():
        values: dict[str, float | int | None] = {}
        for a in aggs:
            if a.kind == "count":
                values[a.name] = len(members)
                continue
            xs = np.array(
                [float(m[index[a.column]]) for m in members if m[index[a.column]] is not None],
                dtype=np.float64,
            )
            if a.kind == "count_nonnull":
                values[a.name] = len(xs)
            elif not len(xs):
                values[a.name] = None
            elif a.kind == "sum":
                values[a.name] = float(xs.sum())
            elif a.kind == "mean":
                values[a.name] = float(xs.mean())
            else:
                ordered = [float(x) for x in np.sort(xs)]
                values[a.name] = percentile_cont(
                    0.5 if a.kind == "p50" else 0.95, len(ordered), ordered.__getitem__
                )
        out.append((key, values))
    return out


def percentile_cont(fraction: float, n: int, at: Callable[[int], float]) -> float:
    """PostgreSQL's ``percentile_cont(fraction)`` of ``n`` ordered values, ``at(i)`` the
    ``i``-th (from 0), with its float8 arithmetic step by step (orderedsetaggs.c:
    ``percentile_cont_final_common`` and ``float8_lerp``), so the same values give the same
    double on every path: rows ``floor(f·(n−1))`` and ``ceil(f·(n−1))``, and
    ``lo + (f·(n−1) − first) · (hi − lo)``."""
    pos = fraction * (n - 1)
    first, second = math.floor(pos), math.ceil(pos)
    lo = at(first)
    if second == first:
        return lo
    hi = at(second)
    return lo + ((pos - first) * (hi - lo))
