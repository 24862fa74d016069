"""What the analytics keep beside the log: each fill's markouts once they are final, and daily
rollups of the reports' additive measures up to a watermark of complete days."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.models._mixins import IdMixin


class FillMarkout(Base):
    """A fill's markouts per structure unit (USD, the desk's P&L) at +1, +5 and +30 min,
    written once the last horizon's interval has closed; NULL where it could not be priced
    (no snapshot in the interval, or a leg expired by then)."""

    __tablename__ = "fill_markout"

    fill_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("fill.id", ondelete="CASCADE"), primary_key=True
    )
    # the fill's own time, copied: the job resumes from the latest one it stored
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    markout_1m_usd: Mapped[float | None] = mapped_column(Float, default=None)
    markout_5m_usd: Mapped[float | None] = mapped_column(Float, default=None)
    markout_30m_usd: Mapped[float | None] = mapped_column(Float, default=None)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class _DayGroup:
    """What identifies a rollup row: the report, the cube (its grouping dimensions), the UTC day
    of the RFQs' creation and the group's values ``k0…k3`` (as text, in the cube's order)."""

    report: Mapped[str] = mapped_column(String(40))
    cube: Mapped[str] = mapped_column(String(120))
    day: Mapped[date] = mapped_column(Date)
    k0: Mapped[str | None] = mapped_column(String(200), default=None)
    k1: Mapped[str | None] = mapped_column(String(200), default=None)
    k2: Mapped[str | None] = mapped_column(String(200), default=None)
    k3: Mapped[str | None] = mapped_column(String(200), default=None)


class AnalyticsRollup(IdMixin, _DayGroup, Base):
    """One group of one report's additive measures over the RFQs created on one UTC day.

    ``report`` names the observation query, ``cube`` its grouping dimensions (comma-separated,
    stored in ``k0…k3`` in that order, as text); ``m0…m11`` are the report's measures in the
    order :mod:`app.analytics.rollup` lists them."""

    __tablename__ = "analytics_rollup"
    __table_args__ = (Index("ix_analytics_rollup_report_cube_day", "report", "cube", "day"),)

    m0: Mapped[float | None] = mapped_column(Float, default=None)
    m1: Mapped[float | None] = mapped_column(Float, default=None)
    m2: Mapped[float | None] = mapped_column(Float, default=None)
    m3: Mapped[float | None] = mapped_column(Float, default=None)
    m4: Mapped[float | None] = mapped_column(Float, default=None)
    m5: Mapped[float | None] = mapped_column(Float, default=None)
    m6: Mapped[float | None] = mapped_column(Float, default=None)
    m7: Mapped[float | None] = mapped_column(Float, default=None)
    m8: Mapped[float | None] = mapped_column(Float, default=None)
    m9: Mapped[float | None] = mapped_column(Float, default=None)
    m10: Mapped[float | None] = mapped_column(Float, default=None)
    m11: Mapped[float | None] = mapped_column(Float, default=None)


class AnalyticsHistogram(IdMixin, _DayGroup, Base):
    """One group's histogram of a report's integer observation (response times in whole
    milliseconds) over the RFQs created on one UTC day: exact percentiles of any run of days
    from the merged counts.

    ``report``, ``cube``, ``day`` and ``k0…k3`` as in :class:`AnalyticsRollup`; ``obs_values``
    the distinct values, ascending, and ``obs_counts`` how many observations had each, both
    little-endian int64 arrays (``numpy`` ``<i8`` bytes); ``n`` the sum of the counts."""

    __tablename__ = "analytics_histogram"
    __table_args__ = (Index("ix_analytics_histogram_report_cube_day", "report", "cube", "day"),)

    n: Mapped[int] = mapped_column(BigInteger)
    obs_values: Mapped[bytes] = mapped_column(LargeBinary)
    obs_counts: Mapped[bytes] = mapped_column(LargeBinary)


class AnalyticsRollupState(Base):
    """The watermark of one rollup: every UTC day before ``through`` is rolled up."""

    __tablename__ = "analytics_rollup_state"

    report: Mapped[str] = mapped_column(String(40), primary_key=True)
    cube: Mapped[str] = mapped_column(String(120), primary_key=True)
    through: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
