"""Analytics endpoints (analyst role): hit ratios and TCA over a time window, as JSON or CSV;
and the analysts' dashboard page, which reads them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, JSONResponse, Response

from app.analytics.dimensions import Dim
from app.analytics.schemas import (
    AnalyticsQuery,
    CalibratedModel,
    CalibrationReport,
    CalibrationRow,
    Counterparty,
    CoverReport,
    CoverRow,
    DimensionsRead,
    FunnelReport,
    FunnelRow,
    HitRatioReport,
    HitRatioRow,
    MarkoutReport,
    MarkoutRow,
    OutputFormat,
    PriceImprovementReport,
    PriceImprovementRow,
    QuoteSource,
    QuoteWidthReport,
    QuoteWidthRow,
    Report,
    ResponseTimeReport,
    ResponseTimeRow,
    Row,
)
from app.analytics.service import analytics_service
from app.auth.keys import Role
from app.auth.service import Principal
from app.deps import SessionDep, require
from app.errors import COMMON_ERRORS, NotFound, Unprocessable
from app.query_time import utc_bound

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], responses=COMMON_ERRORS)
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]

DEFAULT_WINDOW = timedelta(days=30)
MAX_GROUP_BY = 4


def _text(value: str | None, field: str) -> str | None:
    if value is not None and "\x00" in value:
        raise Unprocessable(f"{field} must not contain NUL characters", field=field)
    return value


def analytics_query(
    since: Annotated[
        datetime | None,
        Query(
            description="Start of the window, inclusive (ISO 8601; without an offset, UTC). "
            "Default: 30 days before `until`."
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(description="End of the window, exclusive (ISO 8601). Default: now."),
    ] = None,
    group_by: Annotated[
        list[Dim] | None,
        Query(
            description="Dimension to group by; repeat for several (at most 4), e.g. "
            "`group_by=dealer&group_by=day`. Sizes and tenor are buckets (see "
            "`/v1/analytics/dimensions`); day and hour are UTC."
        ),
    ] = None,
    underlying: Annotated[
        str | None,
        Query(min_length=2, max_length=16, pattern=r"^[A-Za-z]+$", description="e.g. BTC"),
    ] = None,
    dealer: Annotated[str | None, Query(max_length=120, description="Dealer name")] = None,
    client: Annotated[str | None, Query(max_length=120, description="Client name")] = None,
) -> AnalyticsQuery:
    end = utc_bound(until, "until") or datetime.now(UTC)
    start = utc_bound(since, "since") or end - DEFAULT_WINDOW
    if start >= end:
        raise Unprocessable("since must be before until", field="since")
    dims = tuple(dict.fromkeys(group_by or ()))
    if len(dims) > MAX_GROUP_BY:
        raise Unprocessable(
            f"at most {MAX_GROUP_BY} group_by dimensions, got {len(dims)}", field="group_by"
        )
    return AnalyticsQuery(
        since=start,
        until=end,
        group_by=dims,
        underlying=underlying.upper() if underlying else None,
        dealer=_text(dealer, "dealer"),
        client=_text(client, "client"),
    )


Q = Annotated[AnalyticsQuery, Depends(analytics_query)]
Fmt = Annotated[
    OutputFormat,
    Query(
        alias="format",
        description="`json` (default) or `csv`: text/csv, a header row, then one row per group "
        "(the group_by columns first)",
    ),
]
CSV_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def render(report: Report, row_type: type[Row], fmt: OutputFormat) -> Response:
    if fmt is OutputFormat.JSON:
        return JSONResponse(report.model_dump(mode="json"))
    fields = [f for f in row_type.model_fields if f != "group"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([d.value for d in report.group_by] + fields)
    for row in getattr(report, "rows", []):
        data = row.model_dump(mode="json")
        group = data.pop("group")
        writer.writerow(
            ["" if group.get(d.value) is None else group[d.value] for d in report.group_by]
            + ["" if data[f] is None else data[f] for f in fields]
        )
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{report.metric}.csv"'},
    )


@router.get("/dimensions")
async def dimensions(_: Analyst) -> DimensionsRead:
    """The group_by dimensions, with the buckets of sizes and tenor."""
    return analytics_service.dimensions()


@router.get("/hit-ratio", response_model=HitRatioReport, responses=CSV_CONTENT)
async def hit_ratio(
    session: SessionDep, _: Analyst, q: Q, fmt: Fmt = OutputFormat.JSON
) -> Response:
    """Client hit ratio (traded / quoted RFQs); grouped by dealer, each dealer's hit ratio."""
    return render(await analytics_service.hit_ratio(session, q), HitRatioRow, fmt)


@router.get("/funnel", response_model=FunnelReport, responses=CSV_CONTENT)
async def funnel(session: SessionDep, _: Analyst, q: Q, fmt: Fmt = OutputFormat.JSON) -> Response:
    """Dealer funnel: asked → answered → best price → won, with response and win rates."""
    return render(await analytics_service.funnel(session, q), FunnelRow, fmt)


@router.get("/response-times", response_model=ResponseTimeReport, responses=CSV_CONTENT)
async def response_times(
    session: SessionDep, _: Analyst, q: Q, fmt: Fmt = OutputFormat.JSON
) -> Response:
    """Dealers' time to first firm quote: median, 95th percentile and mean (ms)."""
    return render(await analytics_service.response_times(session, q), ResponseTimeRow, fmt)


@router.get("/quote-width", response_model=QuoteWidthReport, responses=CSV_CONTENT)
async def quote_width(
    session: SessionDep,
    _: Analyst,
    q: Q,
    source: Annotated[
        QuoteSource, Query(description="`dealer` quotes (default) or the desk's `client` quotes")
    ] = QuoteSource.DEALER,
    fmt: Fmt = OutputFormat.JSON,
) -> Response:
    """Width (ask − bid) of two-sided dealer quotes or of the desk's two-way client quotes."""
    return render(await analytics_service.quote_width(session, q, source), QuoteWidthRow, fmt)


@router.get("/cover", response_model=CoverReport, responses=CSV_CONTENT)
async def cover(session: SessionDep, _: Analyst, q: Q, fmt: Fmt = OutputFormat.JSON) -> Response:
    """Cover: best minus second-best dealer price per RFQ side."""
    return render(await analytics_service.cover(session, q), CoverRow, fmt)


CounterpartyQ = Annotated[
    Counterparty,
    Query(description="`client` fills (default) or the desk's `dealer` fills (cover trades)"),
]


@router.get("/price-improvement", response_model=PriceImprovementReport, responses=CSV_CONTENT)
async def price_improvement(
    session: SessionDep,
    _: Analyst,
    q: Q,
    counterparty: CounterpartyQ = Counterparty.CLIENT,
    fmt: Fmt = OutputFormat.JSON,
) -> Response:
    """Price improvement of fills against theo and against the venue's screen mid."""
    report = await analytics_service.price_improvement(session, q, counterparty)
    return render(report, PriceImprovementRow, fmt)


@router.get("/markouts", response_model=MarkoutReport, responses=CSV_CONTENT)
async def markouts(
    session: SessionDep,
    _: Analyst,
    q: Q,
    counterparty: CounterpartyQ = Counterparty.CLIENT,
    fmt: Fmt = OutputFormat.JSON,
) -> Response:
    """Markouts of traded packages at +1, +5 and +30 minutes, re-priced on stored snapshots."""
    return render(await analytics_service.markouts(session, q, counterparty), MarkoutRow, fmt)


@router.get("/calibration", response_model=CalibrationReport, responses=CSV_CONTENT)
async def calibration(
    session: SessionDep,
    _: Analyst,
    q: Q,
    model: Annotated[
        CalibratedModel,
        Query(
            description="`hit`: client_quote.p_hit_* vs traded; `fill`: dealer_request."
            "p_answer vs answered; `win`: dealer_request.p_win vs won"
        ),
    ] = CalibratedModel.HIT,
    buckets: Annotated[int, Query(ge=2, le=50, description="Probability buckets")] = 10,
    fmt: Fmt = OutputFormat.JSON,
) -> Response:
    """Model calibration: predicted against realised probability, by probability bucket."""
    report = await analytics_service.calibration(session, q, model, buckets)
    return render(report, CalibrationRow, fmt)


# ------------------------------------------------------------------------------ dashboard

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
PAGE_HEADERS = {
    # the page loads nothing but its own files and talks to nothing but this service
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

dashboard_router = APIRouter(tags=["dashboard"], include_in_schema=False)


@dashboard_router.get("/dashboard")
async def dashboard() -> FileResponse:
    """The analysts' page: it asks for an analyst key and reads /v1/analytics with it."""
    return FileResponse(STATIC / "dashboard.html", media_type="text/html", headers=PAGE_HEADERS)


@dashboard_router.get("/dashboard/{name}")
async def dashboard_asset(name: str) -> FileResponse:
    media = ASSETS.get(name)
    if media is None:
        raise NotFound(f"no dashboard file {name!r}")
    return FileResponse(STATIC / name, media_type=media, headers=PAGE_HEADERS)
