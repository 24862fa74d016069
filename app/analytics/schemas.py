"""Analytics query parameters and reports (JSON bodies; the CSV form flattens the same rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from app.analytics.dimensions import Dim

GroupValue = str | int | None


class OutputFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class Counterparty(StrEnum):
    CLIENT = "client"
    DEALER = "dealer"


class QuoteSource(StrEnum):
    DEALER = "dealer"
    CLIENT = "client"


class CalibratedModel(StrEnum):
    HIT = "hit"
    FILL = "fill"
    WIN = "win"


@dataclass(frozen=True)
class AnalyticsQuery:
    """One report's window ``[since, until)``, grouping and filters (validated)."""

    since: datetime
    until: datetime
    group_by: tuple[Dim, ...] = ()
    underlying: str | None = None
    dealer: str | None = None
    client: str | None = None

    @property
    def filters(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("underlying", self.underlying),
                ("dealer", self.dealer),
                ("client", self.client),
            )
            if v is not None
        }


class Row(BaseModel):
    group: dict[str, GroupValue] = Field(
        description="The row's value of each group_by dimension (day: YYYY-MM-DD, hour: 0-23)"
    )


class Report(BaseModel):
    metric: str
    unit: str = Field(description="What one observation counted in the rows is")
    since: datetime
    until: datetime
    group_by: list[Dim]
    filters: dict[str, str]
    notes: list[str] = Field(default_factory=list, description="How the figures are defined")


class HitRatioRow(Row):
    requests: int = Field(description="RFQs received (dealer unit: quote requests sent)")
    quoted: int = Field(
        description="RFQs quoted to the client and decided (dealer unit: requests answered "
        "with a firm price)"
    )
    traded: int = Field(description="RFQs traded (dealer unit: requests won, i.e. filled)")
    open: int = Field(description="RFQs still live (dealer unit: requests still pending)")
    hit_ratio: float | None = Field(description="traded / quoted")
    traded_quantity: float = Field(description="Structure units filled")


class HitRatioReport(Report):
    rows: list[HitRatioRow]


class FunnelRow(Row):
    asked: int = Field(description="Quote requests sent to dealers (skipped ones excluded)")
    answered: int = Field(description="… answered with a firm price")
    best: int = Field(description="… whose price was the best the desk received")
    won: int = Field(description="… that traded (the desk filled from them)")
    declined: int
    no_response: int
    error: int
    response_rate: float | None = Field(description="answered / asked")
    best_rate: float | None = Field(description="best / answered")
    win_rate: float | None = Field(description="won / asked")
    hit_ratio: float | None = Field(description="won / answered")


class FunnelReport(Report):
    rows: list[FunnelRow]


class ResponseTimeRow(Row):
    answered: int
    ttfq_p50_ms: float | None = Field(description="Median time to first firm quote (ms)")
    ttfq_p95_ms: float | None
    ttfq_mean_ms: float | None


class ResponseTimeReport(Report):
    rows: list[ResponseTimeRow]


class QuoteWidthRow(Row):
    quotes: int = Field(description="Two-sided quotes")
    width_coin_mean: float | None = Field(description="ask − bid, coin per structure unit")
    width_coin_p50: float | None
    width_usd_mean: float | None = Field(description="ask − bid in USD (client quotes only)")


class QuoteWidthReport(Report):
    rows: list[QuoteWidthRow]


class CoverRow(Row):
    observations: int = Field(description="RFQ sides with at least two dealer prices")
    cover_coin_mean: float | None = Field(
        description="|best − second best| dealer price, coin per structure unit"
    )
    cover_coin_p50: float | None


class CoverReport(Report):
    rows: list[CoverRow]


class PriceImprovementRow(Row):
    fills: int
    quantity: float
    vs_theo_usd: float | None = Field(description="Σ improvement × quantity against theo, USD")
    vs_mid_usd: float | None = Field(description="Σ improvement × quantity against mid, USD")
    vs_theo_usd_per_unit: float | None
    vs_mid_usd_per_unit: float | None
    screen_mid_fills: int = Field(description="Fills whose quote stored a screen mid")


class PriceImprovementReport(Report):
    rows: list[PriceImprovementRow]


class MarkoutRow(Row):
    fills: int
    quantity: float
    markout_1m_usd: float | None = Field(description="Desk P&L at +1 min, USD (Σ over fills)")
    markout_5m_usd: float | None
    markout_30m_usd: float | None
    markout_1m_usd_per_unit: float | None
    markout_5m_usd_per_unit: float | None
    markout_30m_usd_per_unit: float | None
    priced_1m: int = Field(description="Fills with a snapshot at that horizon")
    priced_5m: int
    priced_30m: int


class MarkoutReport(Report):
    rows: list[MarkoutRow]


class CalibrationRow(Row):
    bucket: str = Field(description="Predicted probability bucket")
    bucket_lower: float
    bucket_upper: float
    n: int
    predicted: float | None = Field(description="Mean predicted probability")
    realised: float | None = Field(description="Observed frequency")
    brier: float | None = Field(description="Mean squared error of the prediction")


class CalibrationReport(Report):
    model: CalibratedModel
    rows: list[CalibrationRow]


class DimensionInfo(BaseModel):
    name: Dim
    unit: str | None = None
    buckets: list[str] | None = None


class DimensionsRead(BaseModel):
    dimensions: list[DimensionInfo]
