"""Analytics use cases: check what a report can be grouped by, run its query, label the groups,
derive the ratios, and (markouts) re-price the traded packages."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, ParamSpec, TypeVar

import numpy as np
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics import markouts as mk
from app.analytics import rollup as ru
from app.analytics.dimensions import BUCKET_UNITS, BUCKETS, Dim, bucket_label, bucket_labels
from app.analytics.jobs import FINAL_AFTER, price_fills
from app.analytics.markouts import MARKOUT_HORIZONS_S, markout_aggregates
from app.analytics.repository import (
    CENTS_PER_USD,
    TICKS_PER_COIN,
    AggRow,
    AnalyticsRepository,
    units_mean,
)
from app.analytics.schemas import (
    AnalyticsQuery,
    CalibratedModel,
    CalibrationReport,
    CalibrationRow,
    Counterparty,
    CoverReport,
    CoverRow,
    DimensionInfo,
    DimensionsRead,
    FunnelReport,
    FunnelRow,
    GroupValue,
    HitRatioReport,
    HitRatioRow,
    MarkoutReport,
    MarkoutRow,
    PriceImprovementReport,
    PriceImprovementRow,
    QuoteSource,
    QuoteWidthReport,
    QuoteWidthRow,
    ResponseTimeReport,
    ResponseTimeRow,
)
from app.errors import AppError, Unprocessable

R = TypeVar("R")
P = ParamSpec("P")

TIME_NOTE = (
    "every report covers the RFQs created in [since, until) and what was logged about them; "
    "day and hour are UTC, of {}"
)
PRICE_TICK_NOTE = (
    "resolution: every coin price is taken as a whole number of ticks of 1e-4 coin, and every "
    "USD price as whole cents, rounded half away from zero, before it is subtracted; medians "
    "interpolate linearly between those values (percentile_cont) and means are the exact sums "
    "over the counts, exactly also where whole days are read from the daily histograms"
)
DEALER_FIRM = (
    "a dealer's price is its final firm quote (status live, won, lost or expired; replaced, "
    "withdrawn and refused quotes are not prices)"
)


def _ratio(num: Any, den: Any) -> float | None:
    return float(num) / float(den) if den else None


def _label(dim: Dim, value: Any) -> GroupValue:
    if value is None:
        return None
    if dim in BUCKETS:
        return bucket_label(dim, int(value))
    if dim is Dim.DAY:
        return value.isoformat() if isinstance(value, date | datetime) else str(value)[:10]
    if dim is Dim.HOUR:
        return int(value)
    return str(value)


def _labeler(dim: Dim) -> Callable[[Any], GroupValue]:
    """:func:`_label` for one dimension (a year of days by client is ~30,000 rows)."""
    if dim in BUCKETS:
        labels = bucket_labels(BUCKETS[dim])
        return lambda v: None if v is None else labels[int(v)]
    return lambda v: _label(dim, v)


def _sort_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    # bucket indexes, hours and ISO days sort as they are; missing values last
    return tuple([(v is None, "" if v is None else (str(v) if isinstance(v, date) else v))
                  for v in values])  # fmt: skip


def _rows(
    q: AnalyticsQuery,
    rows: Sequence[AggRow],
    build: Callable[[dict[str, GroupValue], dict[str, Any]], R],
) -> list[R]:
    out = []
    labelers = [(d.value, _labeler(d)) for d in q.group_by]
    with ru.gc_paused():  # tens of thousands of rows for a year by client × day
        for key, values in sorted(rows, key=lambda kv: _sort_key(kv[0])):
            group = {name: f(v) for (name, f), v in zip(labelers, key, strict=False)}
            out.append(build(group, values))
    return out


def _response_time_rows(
    q: AnalyticsQuery, hists: Sequence[tuple[tuple[Any, ...], ru.Histogram]]
) -> list[AggRow]:
    """The response-time aggregates of each group's histogram of whole milliseconds (as the
    raw rows' ``percentile_cont`` and integer sum give them)."""
    out: list[AggRow] = []
    for key, h in hists:
        n = int(h[1].sum())
        if not n:
            continue
        total = int((h[0] * h[1]).sum())
        values: dict[str, float | int | None] = {
            "answered": n,
            "ttfq_p50_ms": ru.histogram_percentile(h, 0.5),
            "ttfq_p95_ms": ru.histogram_percentile(h, 0.95),
            "ttfq_mean_ms": float(total) / n,
        }
        out.append((key, values))
    if not out and not q.group_by:  # as the raw rows' ungrouped aggregate: one empty row
        out.append(((), {"answered": 0, "ttfq_p50_ms": None, "ttfq_p95_ms": None,
                         "ttfq_mean_ms": None}))  # fmt: skip
    return out


def _tick_stats(h: ru.Histogram, per: int) -> tuple[int, float | None, float | None]:
    """(count, mean, median) of a histogram of whole ``1/per`` units, in whole units: as the
    raw rows' ``percentile_cont`` and exact integer sum give them."""
    n = int(h[1].sum())
    p50 = ru.histogram_percentile(h, 0.5)
    total = int((h[0] * h[1]).sum())
    return n, units_mean(total, n, per), None if p50 is None else p50 / per


def _width_hist_rows(
    q: AnalyticsQuery,
    hists: Sequence[tuple[tuple[Any, ...], ru.Histogram]],
    usd: Sequence[tuple[tuple[Any, ...], ru.Histogram]] | None,
) -> list[AggRow]:
    """The quote-width aggregates of each group's histograms of ticks (and of cents)."""
    usd_mean = {k: _tick_stats(h, CENTS_PER_USD)[1] for k, h in usd or ()}
    out: list[AggRow] = []
    for key, h in hists:
        n, mean, p50 = _tick_stats(h, TICKS_PER_COIN)
        if n:
            out.append((key, {"quotes": n, "width_coin_mean": mean, "width_coin_p50": p50,
                              "width_usd_mean": usd_mean.get(key)}))  # fmt: skip
    if not out and not q.group_by:  # as the raw rows' ungrouped aggregate: one empty row
        out.append(((), {"quotes": 0, "width_coin_mean": None, "width_coin_p50": None,
                         "width_usd_mean": None}))  # fmt: skip
    return out


def _cover_hist_rows(
    q: AnalyticsQuery, hists: Sequence[tuple[tuple[Any, ...], ru.Histogram]]
) -> list[AggRow]:
    """The cover aggregates of each group's histogram of ticks."""
    out: list[AggRow] = []
    for key, h in hists:
        n, mean, p50 = _tick_stats(h, TICKS_PER_COIN)
        if n:
            out.append((key, {"observations": n, "cover_coin_mean": mean,
                              "cover_coin_p50": p50}))  # fmt: skip
    if not out and not q.group_by:  # as the raw rows' ungrouped aggregate: one empty row
        out.append(((), {"observations": 0, "cover_coin_mean": None, "cover_coin_p50": None}))
    return out


def _int(v: Any) -> int:
    return int(v or 0)


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


class ReportTooSlow(AppError):
    status_code = 503
    code = "report_timeout"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "60"}


def report(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A report whose statement ran out of time answers 503 ``report_timeout``, not 500."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (DBAPIError, TimeoutError) as exc:
            orig = getattr(exc, "orig", None)
            if not isinstance(exc, TimeoutError) and getattr(orig, "sqlstate", None) != "57014":
                raise
            raise ReportTooSlow(
                "the report took too long to compute: narrow the window or the grouping"
            ) from exc

    return run


class AnalyticsService:
    #: PostgreSQL cancels a report's statement after this long (below the driver's own
    #: 10 s command timeout, so that the answer says what happened)
    statement_timeout_s = 9.0

    def __init__(self) -> None:
        self.markout_cache = mk.MarkoutCache()
        #: read whole days from the daily rollups where they cover the query (off: raw rows)
        self.use_rollups = True
        #: read the markouts the job stored (off: price every fill)
        self.use_stored_markouts = True

    async def _rows(self, repo: AnalyticsRepository, name: str, q: AnalyticsQuery) -> list[AggRow]:
        return await ru.report_rows(repo, name, q, use_rollups=self.use_rollups)

    async def _repo(self, session: AsyncSession) -> AnalyticsRepository:
        repo = AnalyticsRepository(session)
        await repo.prepare(self.statement_timeout_s)
        return repo

    @staticmethod
    def _no_dealer(q: AnalyticsQuery, why: str) -> None:
        if Dim.DEALER in q.group_by:
            raise Unprocessable(f"group_by=dealer does not apply: {why}", field="group_by")
        if q.dealer is not None:
            raise Unprocessable(f"the dealer filter does not apply: {why}", field="dealer")

    def _meta(self, q: AnalyticsQuery, metric: str, unit: str, notes: list[str]) -> dict[str, Any]:
        return {
            "metric": metric,
            "unit": unit,
            "since": q.since,
            "until": q.until,
            "group_by": list(q.group_by),
            "filters": q.filters,
            "notes": notes,
        }

    # ----------------------------------------------------------------------- reports
    @report
    async def hit_ratio(self, session: AsyncSession, q: AnalyticsQuery) -> HitRatioReport:
        repo = await self._repo(session)
        if Dim.DEALER in q.group_by or q.dealer is not None:
            rows = await self._rows(repo, "dealer_hit", q)
            unit = "dealer_request"
            notes = [
                "grouped or filtered by dealer, the unit is the quote request sent to a dealer "
                "and hit_ratio is the dealer's: requests won / requests answered with a firm "
                "price",
                "requests: sent for the window's RFQs (skipped ones excluded); quoted: "
                "outcome quoted, won or lost; traded: won; open: pending",
                TIME_NOTE.format("the RFQ's creation"),
            ]
        else:
            rows = await self._rows(repo, "rfq_hit", q)
            unit = "rfq"
            notes = [
                "hit_ratio is the clients': RFQs traded / RFQs quoted",
                "requests: RFQs created in the window; quoted: shown a client quote and final "
                "(traded, passed, expired or cancelled); traded: filled or partially filled; "
                "open: not final yet",
                TIME_NOTE.format("the RFQ's creation"),
            ]

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> HitRatioRow:
            return HitRatioRow(
                group=group,
                requests=_int(v["requests"]),
                quoted=_int(v["quoted"]),
                traded=_int(v["traded"]),
                open=_int(v["open"]),
                hit_ratio=_ratio(v["traded"], v["quoted"]),
                traded_quantity=float(v["traded_quantity"] or 0.0),
            )

        return HitRatioReport(**self._meta(q, "hit_ratio", unit, notes), rows=_rows(q, rows, build))

    @report
    async def funnel(self, session: AsyncSession, q: AnalyticsQuery) -> FunnelReport:
        repo = await self._repo(session)
        rows = await self._rows(repo, "funnel_counts", q)
        best = {key: v["best"] for key, v in await self._rows(repo, "funnel_best", q)}
        for key, v in rows:
            v["best"] = best.get(key, 0)

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> FunnelRow:
            asked, answered = _int(v["asked"]), _int(v["answered"])
            return FunnelRow(
                group=group,
                asked=asked,
                answered=answered,
                best=_int(v["best"]),
                won=_int(v["won"]),
                declined=_int(v["declined"]),
                no_response=_int(v["no_response"]),
                error=_int(v["error"]),
                response_rate=_ratio(answered, asked),
                best_rate=_ratio(v["best"], answered),
                win_rate=_ratio(v["won"], asked),
                hit_ratio=_ratio(v["won"], answered),
            )

        notes = [
            "asked: quote requests sent to dealers (skipped ones excluded); answered: outcome "
            "quoted, won or lost; won: the desk filled from the dealer",
            "best: the dealer's price equals the best firm price among all dealers asked, on the "
            "side the client traded (else the side it asked for; either side of an untraded "
            "two-way RFQ); ties count for every tied dealer",
            "the dealer requests of the RFQs created in the window",
            DEALER_FIRM,
            TIME_NOTE.format("the RFQ's creation"),
        ]
        return FunnelReport(
            **self._meta(q, "funnel", "dealer_request", notes), rows=_rows(q, rows, build)
        )

    @report
    async def response_times(self, session: AsyncSession, q: AnalyticsQuery) -> ResponseTimeReport:
        repo = await self._repo(session)
        hists = await ru.histogram_rows(repo, "response_times", q, use_rollups=self.use_rollups)
        rows = await repo.response_times(q) if hists is None else _response_time_rows(q, hists)

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> ResponseTimeRow:
            return ResponseTimeRow(
                group=group,
                answered=_int(v["answered"]),
                ttfq_p50_ms=_float(v["ttfq_p50_ms"]),
                ttfq_p95_ms=_float(v["ttfq_p95_ms"]),
                ttfq_mean_ms=_float(v["ttfq_mean_ms"]),
            )

        notes = [
            "time to first quote: first_quote_at − sent_at of requests answered with a firm "
            "price, in whole milliseconds (rounded down: the report's resolution); "
            "percentiles interpolate linearly between those values (percentile_cont), exactly "
            "also where whole days are read from the daily histograms",
            TIME_NOTE.format("the RFQ's creation"),
        ]
        return ResponseTimeReport(
            **self._meta(q, "response_times", "dealer_request", notes),
            rows=_rows(q, rows, build),
        )

    @report
    async def quote_width(
        self, session: AsyncSession, q: AnalyticsQuery, source: QuoteSource
    ) -> QuoteWidthReport:
        repo = await self._repo(session)
        fast = self.use_rollups
        if source is QuoteSource.DEALER:
            hists = await ru.histogram_rows(repo, "quote_width_dealer", q, use_rollups=fast)
            if hists is None:
                rows = await repo.dealer_quote_width(q)
            else:
                rows = _width_hist_rows(q, hists, None)
            unit = "dealer_request"
            notes = [
                "dealer quotes with both a bid and an ask: ask − bid in coin per structure unit",
                DEALER_FIRM,
            ]
        else:
            self._no_dealer(q, "client quotes are the desk's; use source=dealer")
            hists = await ru.histogram_rows(repo, "quote_width_client", q, use_rollups=fast)
            usd = await ru.histogram_rows(repo, "quote_width_client_usd", q, use_rollups=fast)
            if hists is None or usd is None:
                rows = await repo.client_quote_width(q)
            else:
                rows = _width_hist_rows(q, hists, usd)
            unit = "client_quote"
            notes = [
                "the desk's two-way client quotes (the RFQ's quote that was not superseded): "
                "ask − bid in coin and in USD per structure unit",
            ]
        notes += [PRICE_TICK_NOTE, TIME_NOTE.format("the RFQ's creation")]

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> QuoteWidthRow:
            return QuoteWidthRow(
                group=group,
                quotes=_int(v["quotes"]),
                width_coin_mean=_float(v["width_coin_mean"]),
                width_coin_p50=_float(v["width_coin_p50"]),
                width_usd_mean=_float(v["width_usd_mean"]),
            )

        return QuoteWidthReport(
            **self._meta(q, f"quote_width_{source.value}", unit, notes),
            rows=_rows(q, rows, build),
        )

    @report
    async def cover(self, session: AsyncSession, q: AnalyticsQuery) -> CoverReport:
        repo = await self._repo(session)
        hists = await ru.histogram_rows(repo, "cover", q, use_rollups=self.use_rollups)
        rows = await repo.cover(q) if hists is None else _cover_hist_rows(q, hists)

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> CoverRow:
            return CoverRow(
                group=group,
                observations=_int(v["observations"]),
                cover_coin_mean=_float(v["cover_coin_mean"]),
                cover_coin_p50=_float(v["cover_coin_p50"]),
            )

        notes = [
            "cover: |best − second best| dealer price on one side of one RFQ (coin per "
            "structure unit), on the side the client traded (else the side it asked for; both "
            "sides of an untraded two-way RFQ), where at least two dealers priced that side",
            "grouped by dealer, a cover counts for the dealer with the best price (earliest "
            "quote first among equal prices)",
            DEALER_FIRM,
            PRICE_TICK_NOTE,
            TIME_NOTE.format("the RFQ's creation"),
        ]
        return CoverReport(**self._meta(q, "cover", "rfq_side", notes), rows=_rows(q, rows, build))

    @report
    async def price_improvement(
        self, session: AsyncSession, q: AnalyticsQuery, counterparty: Counterparty
    ) -> PriceImprovementReport:
        if counterparty is Counterparty.CLIENT:
            self._no_dealer(q, "client fills have no dealer; use counterparty=dealer")
        repo = await self._repo(session)
        rows = await self._rows(repo, f"price_improvement_{counterparty.value}", q)

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> PriceImprovementRow:
            qty = float(v["quantity"] or 0.0)
            return PriceImprovementRow(
                group=group,
                fills=_int(v["fills"]),
                quantity=qty,
                vs_theo_usd=_float(v["vs_theo_usd"]),
                vs_mid_usd=_float(v["vs_mid_usd"]),
                vs_theo_usd_per_unit=_ratio(v["vs_theo_usd"], qty),
                vs_mid_usd_per_unit=_ratio(v["vs_mid_usd"], qty),
                screen_mid_fills=_int(v["screen_mid_fills"]),
            )

        notes = [
            "improvement of a fill, per structure unit: benchmark − price when the taker buys, "
            "price − benchmark when it sells; positive = the taker did better than the "
            "benchmark. The taker is the client on client fills, the desk on dealer fills",
            "theo: the RFQ's client quote's theo_usd (the quote the client traded on)",
            "mid: the venue's screen mid of the package stored with the quote "
            "(client_quote.greeks.screen_mid_usd, USD per unit); when none is stored, theo "
            "(screen_mid_fills counts the fills that had one)",
            TIME_NOTE.format("the RFQ's creation"),
        ]
        return PriceImprovementReport(
            **self._meta(q, f"price_improvement_{counterparty.value}", "fill", notes),
            rows=_rows(q, rows, build),
        )

    @report
    async def markouts(
        self, session: AsyncSession, q: AnalyticsQuery, counterparty: Counterparty
    ) -> MarkoutReport:
        if counterparty is Counterparty.CLIENT:
            self._no_dealer(q, "client fills have no dealer; use counterparty=dealer")
        repo = await self._repo(session)

        async def priced(w: AnalyticsQuery) -> list[AggRow]:
            return await self._markout_rows(repo, w, counterparty.value)

        rows = await ru.report_rows(
            repo,
            f"markouts_{counterparty.value}",
            q,
            use_rollups=self.use_rollups and self.use_stored_markouts,
            raw=priced,
        )
        # an ungrouped sum over days without fills is one empty row: no fills, no row
        rows = [(key, v) for key, v in rows if v["fills"]]

        def build(group: dict[str, GroupValue], v: dict[str, Any]) -> MarkoutRow:
            qty = float(v["quantity"])
            extra: dict[str, Any] = {}
            for h in ("1m", "5m", "30m"):
                total, priced_qty = v[f"markout_{h}_usd"], v[f"qty_{h}"]
                extra[f"markout_{h}_usd"] = total
                extra[f"markout_{h}_usd_per_unit"] = _ratio(total, priced_qty)
                extra[f"priced_{h}"] = int(v[f"priced_{h}"])
            return MarkoutRow(group=group, fills=int(v["fills"]), quantity=qty, **extra)

        notes = [
            "markout at +h: the desk's P&L s·(V − P)·quantity in USD, where V is the package "
            "re-priced (Black-76, each leg on the later snapshot's forward, time and SVI vol; "
            "a package traded vs a hedge reference H valued vs H) on the first snapshot of the "
            "underlying taken in [filled_at + h, filled_at + 2h), P the fill's price and s = "
            "+1 when the desk bought; positive = the trade moved in the desk's favour",
            "priced_h counts the fills that had such a snapshot (and no leg expired by then); "
            "the totals and per-unit figures are over those",
            TIME_NOTE.format("the RFQ's creation"),
        ]
        return MarkoutReport(
            **self._meta(q, f"markouts_{counterparty.value}", "fill", notes),
            rows=_rows(q, rows, build),
        )

    async def _markout_rows(
        self, repo: AnalyticsRepository, q: AnalyticsQuery, counterparty: str
    ) -> list[AggRow]:
        """Markout sums per group from the fills: their stored markouts, else priced now."""
        fills = await repo.markout_fills(q, counterparty)
        per_unit = np.full((len(fills), len(MARKOUT_HORIZONS_S)), np.nan)
        todo = []
        for i, f in enumerate(fills):
            if f.stored is not None and self.use_stored_markouts:
                per_unit[i] = f.stored
                continue
            hit = self.markout_cache.get(f.fill_id)
            if hit is None:
                todo.append(i)
            else:
                per_unit[i] = hit
        if todo:
            # not stored yet (recent, or the job has not run): priced now
            new = [fills[i] for i in todo]
            priced = await price_fills(repo, new)
            per_unit[todo] = priced
            final_before = datetime.now(UTC) - FINAL_AFTER
            for f, values in zip(new, priced, strict=True):
                if f.filled_at < final_before:
                    self.markout_cache.put(f.fill_id, tuple(float(x) for x in values))
        return markout_aggregates(fills, per_unit)

    @report
    async def calibration(
        self, session: AsyncSession, q: AnalyticsQuery, model: CalibratedModel, buckets: int
    ) -> CalibrationReport:
        if model is CalibratedModel.HIT:
            self._no_dealer(q, "the hit model predicts the client; use model=fill or win")
        repo = await self._repo(session)
        if buckets == ru.CALIBRATION_BUCKETS:
            rows = await self._rows(repo, f"calibration_{model.value}", q)
        else:
            rows = await repo.calibration(q, model.value, buckets)
        n = len(q.group_by)
        edges = [i / buckets for i in range(buckets + 1)]
        out: list[CalibrationRow] = []
        for key, v in sorted(rows, key=lambda kv: _sort_key(kv[0])):
            b = int(key[n])
            out.append(
                CalibrationRow(
                    group={d.value: _label(d, x) for d, x in zip(q.group_by, key, strict=False)},
                    bucket=f"{edges[b]:.2f}-{edges[b + 1]:.2f}",
                    bucket_lower=edges[b],
                    bucket_upper=edges[b + 1],
                    n=_int(v["n"]),
                    predicted=_float(v["predicted"]),
                    realised=_float(v["realised"]),
                    brier=_float(v["brier"]),
                )
            )
        notes = {
            CalibratedModel.HIT: "each side of a decided client quote (accepted, passed or "
            "expired) is one observation: predicted client_quote.p_hit_bid / p_hit_ask, "
            "realised 1 when the client traded that side",
            CalibratedModel.FILL: "each quote request with a prediction and a final outcome: "
            "predicted dealer_request.p_answer, realised 1 when the dealer answered with a "
            "firm price",
            CalibratedModel.WIN: "each quote request with a prediction and a final outcome: "
            "predicted dealer_request.p_win, realised 1 when the desk filled from the dealer",
        }
        unit = "client_quote_side" if model is CalibratedModel.HIT else "dealer_request"
        return CalibrationReport(
            **self._meta(
                q,
                f"calibration_{model.value}",
                unit,
                [
                    notes[model],
                    f"buckets of width 1/{buckets} on the predicted probability; brier is the "
                    "mean of (predicted − realised)²",
                ],
            ),
            model=model,
            rows=out,
        )

    def dimensions(self) -> DimensionsRead:
        return DimensionsRead(
            dimensions=[
                DimensionInfo(
                    name=d,
                    unit=BUCKET_UNITS.get(d),
                    buckets=bucket_labels(BUCKETS[d]) if d in BUCKETS else None,
                )
                for d in Dim
            ]
        )


analytics_service = AnalyticsService()
