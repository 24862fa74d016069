"""Daily rollups: the additive measures of a report per UTC day of the RFQs' creation and per
group of a *cube* (a few of the report's dimensions), so that long windows read a few rows
per day instead of every RFQ and dealer request.

A rollup row is the report's own observation query (:class:`app.analytics.repository.Spec`)
run over whole days, grouped by day and the cube's dimensions, with its measures made
additive: counts and sums as they are, a mean as its sum and its count of values.

A percentile is not additive; a histogram is. Response times are observed at the resolution
the report defines, whole milliseconds (an integer), quote widths and cover at the price tick,
whole 1e-4 coin (and the client quotes' USD width at whole cents; every price rounded half
away from zero to the tick first, on every path): their rollups keep, per day and group,
the histogram of those values (``analytics_histogram``: each distinct value and its count).
A window's histogram is the merged counts of its rollup days and of its edges' raw rows
(counted by value in SQL), and ``percentile_cont`` is computed from it with PostgreSQL's own
float8 steps (:func:`app.analytics.repository.percentile_cont`): the same multiset of values
gives the same order statistics, so the same doubles as ``percentile_cont`` over the raw rows;
the mean is the exact integer sum over the count on both paths.

A report over ``[since, until)`` grouped by dimensions a cube has (and filtered only by
dimensions it has) reads

* the raw rows of the partial day at the window's start, ``[since, d0)``;
* the rollup rows of the whole days ``[d0, d1)``, ``d1`` the smaller of the window's last
  midnight and the rollup's watermark;
* the raw rows from ``d1`` to ``until`` (the partial last day, and the days not rolled up),

and adds them up by group. Every observation belongs to exactly one RFQ and each RFQ to
exactly one UTC day, so the sum is the raw computation over the window: counts exactly,
sums and means up to the order of floating-point additions.

The watermark only passes a day once it is complete: it ended at least ``SLACK`` ago (what is
logged about an RFQ is logged within that, the assumption every report makes), and no RFQ
created that day is still open and no quote request for it still pending. The job
(:mod:`app.analytics.jobs`) rolls up from the watermark on; RFQs written with past creation
times (an import, a simulation) need ``rfqdesk analytics refresh --rebuild``, and so does
renaming a dealer (rollups keep the name it had). Grouping by hour, or by or filtered by a
dimension no cube of the report has, reads the raw rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics.dimensions import BUCKETS, Dim
from app.analytics.repository import (
    OPEN,
    SLACK,
    Agg,
    AggRow,
    AnalyticsRepository,
    Spec,
    percentile_cont,
)
from app.analytics.schemas import AnalyticsQuery
from app.models import (
    AnalyticsHistogram,
    AnalyticsRollup,
    AnalyticsRollupState,
    DealerRequest,
    Rfq,
)
from app.models._mixins import new_id

D = Dim
#: RFQ-unit reports (one row per RFQ or per client fill / quote side of it)
RFQ_CUBES: tuple[tuple[Dim, ...], ...] = (
    (D.UNDERLYING, D.CLIENT, D.CHANNEL),
    (D.UNDERLYING, D.STRUCTURE, D.SIDE, D.CHANNEL),
    (D.UNDERLYING, D.SIZE_CONTRACTS, D.TENOR),
    (D.UNDERLYING, D.SIZE_NOTIONAL, D.SIZE_VEGA),
)
#: dealer-unit reports (quote requests, dealer quotes, dealer fills)
DEALER_CUBES: tuple[tuple[Dim, ...], ...] = (
    (D.DEALER, D.UNDERLYING, D.CHANNEL),
    (D.DEALER, D.UNDERLYING, D.STRUCTURE, D.SIDE),
    (D.DEALER, D.CLIENT),
)
#: the calibration report's probability buckets that are rolled up (its default)
CALIBRATION_BUCKETS = 10
MAX_KEYS = 4
MAX_MEASURES = 12

SpecFn = Callable[[AnalyticsRepository, AnalyticsQuery], Spec]
RawFn = Callable[[AnalyticsQuery], Awaitable[list[AggRow]]]


@dataclass(frozen=True)
class Rollup:
    """A report's observation query and the cubes it is rolled up by; ``extra`` group
    columns follow the query's dimensions (the calibration's probability bucket)."""

    name: str
    spec: SpecFn
    cubes: tuple[tuple[Dim, ...], ...]
    extra: int = 0
    #: reads stored markouts: rolled up only where every fill has them
    markouts: bool = False
    #: a histogram of this integer column of the observation query (analytics_histogram)
    #: instead of additive measures
    value: str = ""


ROLLUPS: dict[str, Rollup] = {
    r.name: r
    for r in (
        Rollup("rfq_hit", lambda repo, q: repo.obs_rfq_hit(q), RFQ_CUBES),
        Rollup("dealer_hit", lambda repo, q: repo.obs_dealer_hit(q), DEALER_CUBES),
        Rollup("funnel_counts", lambda repo, q: repo.obs_funnel_counts(q), DEALER_CUBES),
        Rollup("funnel_best", lambda repo, q: repo.obs_funnel_best(q), DEALER_CUBES),
        Rollup(
            "price_improvement_client",
            lambda repo, q: repo.obs_price_improvement(q, "client"),
            RFQ_CUBES,
        ),
        Rollup(
            "price_improvement_dealer",
            lambda repo, q: repo.obs_price_improvement(q, "dealer"),
            DEALER_CUBES,
        ),
        Rollup(
            "markouts_client",
            lambda repo, q: repo.obs_markouts(q, "client"),
            RFQ_CUBES,
            markouts=True,
        ),
        Rollup(
            "markouts_dealer",
            lambda repo, q: repo.obs_markouts(q, "dealer"),
            DEALER_CUBES,
            markouts=True,
        ),
        Rollup(
            "calibration_hit",
            lambda repo, q: repo.obs_calibration(q, "hit", CALIBRATION_BUCKETS),
            RFQ_CUBES[:1],
            extra=1,
        ),
        Rollup(
            "calibration_fill",
            lambda repo, q: repo.obs_calibration(q, "fill", CALIBRATION_BUCKETS),
            DEALER_CUBES[:1],
            extra=1,
        ),
        Rollup(
            "calibration_win",
            lambda repo, q: repo.obs_calibration(q, "win", CALIBRATION_BUCKETS),
            DEALER_CUBES[:1],
            extra=1,
        ),
        Rollup(
            "response_times",
            lambda repo, q: repo.obs_response_times(q),
            DEALER_CUBES,
            value="ms",
        ),
        Rollup(
            "quote_width_dealer",
            lambda repo, q: repo.obs_quote_width_dealer(q),
            DEALER_CUBES,
            value="width",
        ),
        Rollup(
            "quote_width_client",
            lambda repo, q: repo.obs_quote_width_client(q),
            RFQ_CUBES,
            value="width",
        ),
        Rollup(
            "quote_width_client_usd",
            lambda repo, q: repo.obs_quote_width_client(q),
            RFQ_CUBES,
            value="width_cents",
        ),
        Rollup("cover", lambda repo, q: repo.obs_cover(q), DEALER_CUBES, value="cover"),
    )
}


def cube_name(cube: Sequence[Dim]) -> str:
    return ",".join(d.value for d in cube)


def additive(aggs: Sequence[Agg]) -> list[Agg]:
    """The aggregates as sums and counts (a mean as its sum and its count of values)."""
    out: list[Agg] = []
    for a in aggs:
        if a.kind in ("count", "sum", "count_nonnull"):
            out.append(a)
        elif a.kind == "mean":
            out += [
                Agg(f"{a.name}__sum", "sum", a.column),
                Agg(f"{a.name}__n", "count_nonnull", a.column),
            ]
        else:
            raise ValueError(f"{a.kind} cannot be rolled up")
    return out


def _norm(dim: Dim | None, value: Any) -> Any:
    """A group value in one form, however it was read: day as ``YYYY-MM-DD``, bucket indexes
    (``dim`` None: an extra, the calibration's bucket) and hours as ints, the rest as text."""
    return _normalizer(dim)(value)


def floor_day(t: datetime) -> date:
    return t.astimezone(UTC).date()


def ceil_day(t: datetime) -> date:
    d = floor_day(t)
    return d if _midnight(d) == t else d + timedelta(days=1)


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def choose_cube(rollup: Rollup, q: AnalyticsQuery) -> tuple[Dim, ...] | None:
    """The first cube with every grouping (but day) and filter dimension of the query."""
    if Dim.HOUR in q.group_by:
        return None
    need: set[Dim] = {d for d in q.group_by if d is not Dim.DAY}
    need |= {
        dim
        for dim, value in ((Dim.UNDERLYING, q.underlying), (Dim.CLIENT, q.client),
                           (Dim.DEALER, q.dealer))
        if value is not None
    }  # fmt: skip
    for cube in rollup.cubes:
        if need <= set(cube):
            return cube
    return None


async def watermark(session: AsyncSession, name: str, cube: Sequence[Dim]) -> date | None:
    state = await session.get(AnalyticsRollupState, (name, cube_name(cube)))
    return None if state is None else state.through


async def markouts_watermark(session: AsyncSession) -> datetime | None:
    """The earliest watermark of the markouts' rollups (None while one has none): every fill
    of the RFQs before it has stored markouts."""
    names = [r.name for r in ROLLUPS.values() if r.markouts]
    cubes = sum(len(ROLLUPS[n].cubes) for n in names)
    got = (
        await session.execute(
            select(func.count(), func.min(AnalyticsRollupState.through)).where(
                AnalyticsRollupState.report.in_(names)
            )
        )
    ).one()
    return _midnight(got[1]) if got[0] == cubes and got[1] is not None else None


# ------------------------------------------------------------------------------ reading


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a synchronous block (no ``await`` inside) that
    makes tens of thousands of small objects: with the service's ~250,000 long-lived objects,
    the collections it would trigger cost more than the block (a year by client × day:
    ~0.8 s with, ~0.35 s without). Reference counting still frees what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def report_rows(
    repo: AnalyticsRepository,
    name: str,
    q: AnalyticsQuery,
    *,
    use_rollups: bool = True,
    raw: RawFn | None = None,
) -> list[AggRow]:
    """The report's rows over the window: from the rollups where they cover whole days, else
    from the raw rows (see the module's docstring). ``raw``: how the report computes a
    window from the raw rows, when not with its observation query (its rows then carry the
    additive measures, as :func:`additive` names them)."""
    rollup = ROLLUPS[name]
    spec = rollup.spec(repo, q)
    add = additive(spec.aggs)

    async def from_raw(w: AnalyticsQuery, aggs: Sequence[Agg]) -> list[AggRow]:
        if raw is not None:
            return await raw(w)
        return await repo.run(dataclasses.replace(rollup.spec(repo, w), aggs=aggs))

    cube = choose_cube(rollup, q) if use_rollups else None
    through = await watermark(repo.session, name, cube) if cube is not None else None
    d0 = ceil_day(q.since)
    d1 = min(floor_day(q.until), through) if through is not None else d0
    dims: list[Dim | None] = [*q.group_by, *([None] * rollup.extra)]
    if cube is None or d0 >= d1:
        # the group values in the same form whichever way a report's rows came (the funnel
        # matches two queries' rows by group, which may take different ways)
        rows = await from_raw(q, spec.aggs)
        norms = [_normalizer(d) for d in dims]
        with gc_paused():
            return [(tuple([f(v) for f, v in zip(norms, k, strict=True)]), v) for k, v in rows]
    parts: list[Sequence[tuple[tuple[Any, ...], Any]]] = []
    for since, until in ((q.since, _midnight(d0)), (_midnight(d1), q.until)):
        if since < until:
            parts.append(await from_raw(dataclasses.replace(q, since=since, until=until), add))
    parts.append(await _read(repo.session, rollup, cube, q, d0, d1, add))
    with gc_paused():
        return _finish(_merge(parts, dims, add), spec.aggs, add)


async def _read(
    session: AsyncSession,
    rollup: Rollup,
    cube: tuple[Dim, ...],
    q: AnalyticsQuery,
    d0: date,
    d1: date,
    add: Sequence[Agg],
) -> list[tuple[tuple[Any, ...], list[Any]]]:
    t = AnalyticsRollup.__table__
    key = {dim: t.c[f"k{i}"] for i, dim in enumerate(cube)}
    cols = [t.c.day if d is Dim.DAY else key[d] for d in q.group_by]
    cols += [t.c[f"k{len(cube) + i}"] for i in range(rollup.extra)]
    where = [t.c.report == rollup.name, t.c.cube == cube_name(cube), t.c.day >= d0, t.c.day < d1]
    for dim, value in ((Dim.UNDERLYING, q.underlying), (Dim.CLIENT, q.client),
                       (Dim.DEALER, q.dealer)):  # fmt: skip
        if value is not None:
            where.append(key[dim] == value)
    stmt = select(*cols, *(func.sum(t.c[f"m{j}"]) for j in range(len(add)))).where(*where)
    if cols:
        stmt = stmt.group_by(*cols)
    n = len(cols)
    # the measures as a list in ``add``'s order (what _merge adds up)
    result = await session.execute(stmt)
    with gc_paused():
        return [(tuple(row[:n]), list(row[n:])) for row in result.all()]


def _merge(
    parts: Sequence[Sequence[tuple[tuple[Any, ...], Any]]],
    dims: Sequence[Dim | None],
    add: Sequence[Agg],
) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """The parts' rows added up by group; a row's measures by name, or as a list in
    ``add``'s order (the rollup table's); the result's as lists."""
    names = [a.name for a in add]
    norms = [_normalizer(d) for d in dims]
    if len(parts) == 1:  # nothing to add up (the rollup rows' groups are distinct)
        return [
            (
                tuple([f(v) for f, v in zip(norms, key, strict=True)]),
                list(values) if isinstance(values, list) else [values.get(n) for n in names],
            )
            for key, values in parts[0]
        ]
    out: dict[tuple[Any, ...], list[Any]] = {}
    for rows in parts:
        for key, values in rows:
            k = tuple([f(v) for f, v in zip(norms, key, strict=True)])
            new = list(values) if isinstance(values, list) else [values.get(n) for n in names]
            acc = out.get(k)
            if acc is None:
                out[k] = new
                continue
            for j, v in enumerate(new):
                if v is not None:
                    acc[j] = v if acc[j] is None else acc[j] + v
    return list(out.items())


def _normalizer(dim: Dim | None) -> Callable[[Any], Any]:
    if dim is Dim.DAY:
        return lambda v: (
            None if v is None else (v.isoformat() if isinstance(v, date) else str(v)[:10])
        )
    if dim is None or dim in BUCKETS or dim is Dim.HOUR:
        return lambda v: None if v is None else int(v)
    return lambda v: None if v is None else str(v)


def _finish(
    rows: Sequence[tuple[tuple[Any, ...], list[Any]]], aggs: Sequence[Agg], add: Sequence[Agg]
) -> list[AggRow]:
    at = {a.name: j for j, a in enumerate(add)}
    out: list[AggRow] = []
    for key, v in rows:
        values: dict[str, float | int | None] = {}
        for a in aggs:
            if a.kind in ("count", "count_nonnull"):
                values[a.name] = round(v[at[a.name]] or 0)
            elif a.kind == "sum":
                x = v[at[a.name]]
                values[a.name] = None if x is None else float(x)
            else:  # mean
                s, n = v[at[f"{a.name}__sum"]], v[at[f"{a.name}__n"]]
                values[a.name] = float(s) / float(n) if s is not None and n else None
        out.append((key, values))
    return out


# ------------------------------------------------------------------------------ histograms

#: a histogram's values and counts as stored (little-endian int64)
HIST_DTYPE = np.dtype("<i8")
Histogram = tuple[np.ndarray, np.ndarray]
"""distinct values ascending, and their counts (int64)"""


async def histogram_rows(
    repo: AnalyticsRepository,
    name: str,
    q: AnalyticsQuery,
    *,
    use_rollups: bool = True,
) -> list[tuple[tuple[Any, ...], Histogram]] | None:
    """Per group, the histogram of the report's value over the window: the rollup's days and
    the raw rows of the edges, merged (see the module's docstring). None where the rollup
    does not apply (the caller computes the report from the raw rows)."""
    rollup = ROLLUPS[name]
    cube = choose_cube(rollup, q) if use_rollups else None
    through = await watermark(repo.session, name, cube) if cube is not None else None
    d0 = ceil_day(q.since)
    d1 = min(floor_day(q.until), through) if through is not None else d0
    if cube is None or d0 >= d1:
        return None
    norms = [_normalizer(d) for d in q.group_by]
    n = len(q.group_by)
    parts: dict[tuple[Any, ...], list[Histogram]] = defaultdict(list)
    for since, until in ((q.since, _midnight(d0)), (_midnight(d1), q.until)):
        if since >= until:
            continue
        w = dataclasses.replace(q, since=since, until=until)
        rows = await repo.histogram(rollup.spec(repo, w), rollup.value)
        with gc_paused():
            pairs: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
            for key, v in rows:
                k = tuple([f(x) for f, x in zip(norms, key[:n], strict=True)])
                pairs[k].append((int(key[n]), int(v["n"] or 0)))
            for k, vc in pairs.items():
                arr = np.array(vc, dtype=np.int64).reshape(-1, 2)
                parts[k].append((arr[:, 0], arr[:, 1]))
    t = AnalyticsHistogram.__table__
    key_col = {dim: t.c[f"k{i}"] for i, dim in enumerate(cube)}
    cols = [t.c.day if d is Dim.DAY else key_col[d] for d in q.group_by]
    where = [t.c.report == name, t.c.cube == cube_name(cube), t.c.day >= d0, t.c.day < d1]
    for dim, value in ((Dim.UNDERLYING, q.underlying), (Dim.CLIENT, q.client),
                       (Dim.DEALER, q.dealer)):  # fmt: skip
        if value is not None:
            where.append(key_col[dim] == value)
    result = await repo.session.execute(select(*cols, t.c.obs_values, t.c.obs_counts).where(*where))
    with gc_paused():
        # the stored arrays' bytes joined per group as read (one array per group, not per row;
        # the group values normalized once per group)
        raw: dict[tuple[Any, ...], tuple[list[bytes], list[bytes]]] = {}
        for row in result.all():
            got = raw.get(row[:n])
            if got is None:
                got = raw[row[:n]] = ([], [])
            got[0].append(row[n])
            got[1].append(row[n + 1])
        for key, (vs, cs) in raw.items():
            k = tuple([f(x) for f, x in zip(norms, key, strict=True)])
            values = np.frombuffer(b"".join(vs), HIST_DTYPE)
            parts[k].append((values, np.frombuffer(b"".join(cs), HIST_DTYPE)))
        return [(k, merge_histograms(hs)) for k, hs in parts.items()]


#: value ranges up to this wide are merged by counting into an array (else by sorting)
DENSE_RANGE = 1 << 22


def merge_histograms(hs: Sequence[Histogram]) -> Histogram:
    """The histograms' counts added up by value (values ascending, no zero counts)."""
    values = np.concatenate([h[0] for h in hs]).astype(np.int64)
    counts = np.concatenate([h[1] for h in hs]).astype(np.int64)
    if not len(values):
        return values, counts
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < DENSE_RANGE:
        summed = np.zeros(hi - lo + 1, dtype=np.int64)
        np.add.at(summed, values - lo, counts)
        distinct = np.flatnonzero(summed)
        return distinct + lo, summed[distinct]
    distinct, inverse = np.unique(values, return_inverse=True)
    summed = np.zeros(len(distinct), dtype=np.int64)
    np.add.at(summed, inverse.reshape(-1), counts)
    keep = summed != 0
    return distinct[keep], summed[keep]


def histogram_percentile(h: Histogram, fraction: float) -> float | None:
    """``percentile_cont(fraction)`` of the observations the histogram counts."""
    values, counts = h
    n = int(counts.sum())
    if n == 0:
        return None
    cum = np.cumsum(counts)
    return percentile_cont(
        fraction, n, lambda i: float(values[int(np.searchsorted(cum, i, side="right"))])
    )


# ------------------------------------------------------------------------------ writing


async def complete_before(
    repo: AnalyticsRepository, now: datetime, markouts_since: datetime | None = None
) -> tuple[date, date]:
    """The first day that is not complete yet (see the module's docstring), and the first
    one for the markouts' rollups: before the day before the first fill (made from
    ``markouts_since``) that has no stored markouts yet."""
    session = repo.session
    limit = floor_day(now - SLACK)
    open_rfq = await session.scalar(select(func.min(Rfq.created_at)).where(Rfq.state.in_(OPEN)))
    pending = await session.scalar(
        select(func.min(DealerRequest.created_at)).where(DealerRequest.outcome == "pending")
    )
    for t in (open_rfq, pending):
        if t is not None:
            limit = min(limit, floor_day(t))
    unmarked = await repo.first_unmarked(markouts_since)
    # an RFQ's fills are made within a day of it: the RFQs of the day before may have some
    marked = limit if unmarked is None else min(limit, floor_day(unmarked - SLACK))
    return limit, marked


async def first_day(session: AsyncSession) -> date | None:
    first = await session.scalar(select(func.min(Rfq.created_at)))
    return None if first is None else floor_day(first)


async def roll_up(
    repo: AnalyticsRepository, rollup: Rollup, cube: tuple[Dim, ...], start: date, end: date
) -> int:
    """Replace the rollup rows of the days ``[start, end)`` and move the watermark to ``end``
    (in the caller's transaction). Returns the rows written."""
    if rollup.value:
        return await _roll_up_histograms(repo, rollup, cube, start, end)
    session = repo.session
    q = AnalyticsQuery(_midnight(start), _midnight(end), (Dim.DAY, *cube))
    spec = rollup.spec(repo, q)
    add = additive(spec.aggs)
    if len(cube) + rollup.extra > MAX_KEYS or len(add) > MAX_MEASURES:
        raise ValueError(f"rollup {rollup.name} by {cube_name(cube)} does not fit the table")
    rows = await repo.run(dataclasses.replace(spec, aggs=add))
    name = cube_name(cube)
    t = AnalyticsRollup
    await session.execute(
        delete(t).where(t.report == rollup.name, t.cube == name, t.day >= start, t.day < end)
    )
    dims: list[Dim | None] = [*cube, *([None] * rollup.extra)]
    records = []
    for key, values in rows:
        day = date.fromisoformat(_norm(Dim.DAY, key[0]))
        record: dict[str, Any] = {"id": new_id(), "report": rollup.name, "cube": name, "day": day}
        for i in range(MAX_KEYS):
            v = _norm(dims[i], key[1 + i]) if i < len(dims) else None
            record[f"k{i}"] = None if v is None else str(v)
        for j in range(MAX_MEASURES):
            v = values[add[j].name] if j < len(add) else None
            record[f"m{j}"] = None if v is None else float(v)
        records.append(record)
    for a in range(0, len(records), 5_000):
        await session.execute(insert(t), records[a : a + 5_000])
    await _move_watermark(session, rollup.name, name, end)
    return len(records)


async def _move_watermark(session: AsyncSession, report: str, name: str, end: date) -> None:
    state = await session.get(AnalyticsRollupState, (report, name))
    if state is None:
        session.add(AnalyticsRollupState(report=report, cube=name, through=end))
    else:
        state.through = end
        state.updated_at = datetime.now(UTC)
    await session.flush()


async def _roll_up_histograms(
    repo: AnalyticsRepository, rollup: Rollup, cube: tuple[Dim, ...], start: date, end: date
) -> int:
    """:func:`roll_up` for a histogram rollup: per day and group, each value's count."""
    session = repo.session
    if len(cube) > MAX_KEYS:
        raise ValueError(f"rollup {rollup.name} by {cube_name(cube)} does not fit the table")
    q = AnalyticsQuery(_midnight(start), _midnight(end), (Dim.DAY, *cube))
    rows = await repo.histogram(rollup.spec(repo, q), rollup.value)
    name = cube_name(cube)
    t = AnalyticsHistogram
    await session.execute(
        delete(t).where(t.report == rollup.name, t.cube == name, t.day >= start, t.day < end)
    )
    dims: list[Dim | None] = [Dim.DAY, *cube]
    groups: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
    for key, v in rows:
        k = tuple(_norm(d, x) for d, x in zip(dims, key[:-1], strict=True))
        groups[k].append((int(key[-1]), int(v["n"] or 0)))
    records = []
    for k, vc in groups.items():
        vc.sort()
        arr = np.array(vc, dtype=HIST_DTYPE).reshape(-1, 2)
        record: dict[str, Any] = {
            "id": new_id(),
            "report": rollup.name,
            "cube": name,
            "day": date.fromisoformat(k[0]),
            "n": int(arr[:, 1].sum()),
            "obs_values": np.ascontiguousarray(arr[:, 0]).tobytes(),
            "obs_counts": np.ascontiguousarray(arr[:, 1]).tobytes(),
        }
        for i in range(MAX_KEYS):
            kv = k[1 + i] if i < len(cube) else None
            record[f"k{i}"] = None if kv is None else str(kv)
        records.append(record)
    for a in range(0, len(records), 5_000):
        await session.execute(insert(t), records[a : a + 5_000])
    await _move_watermark(session, rollup.name, name, end)
    return len(records)
