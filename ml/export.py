"""The log tables as columnar data: one schema for the export, the simulator and training.

Training reads the log either from the database (:func:`read_log_db`) or from a Parquet export
of it (:func:`read_log_parquet`, written by :func:`export_log` / ``rfqdesk export``); both
give a :class:`LogData` with the columns and Arrow types of :data:`SCHEMA`, so that feature
code sees one format whatever the source. The simulator builds the same tables in memory.

Conversions from the database (documented for users in ``ml/EXPORT.md``): ids are UUID
strings, times are UTC timestamps (microseconds), exact decimals (``Money``) become float64,
JSON columns are JSON text. Secrets (``dealer.webhook_secret``) and endpoints are never
exported.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "FORMAT_VERSION",
    "LOG_TABLES",
    "SCHEMA",
    "LogData",
    "export_log",
    "read_log",
    "read_log_db",
    "read_log_parquet",
]

FORMAT_VERSION = 1
"""Bumped when a column is added, removed or changes meaning."""

_TS = pa.timestamp("us", tz="UTC")
_S = pa.string()
_F = pa.float64()
_I = pa.int64()
_B = pa.bool_()

SCHEMA: dict[str, pa.Schema] = {
    "rfq": pa.schema(
        [
            ("id", _S),
            ("created_at", _TS),
            ("updated_at", _TS),
            ("expires_at", _TS),
            ("state", _S),
            ("client", _S),
            ("channel", _S),
            ("underlying", _S),
            ("structure", _S),
            ("side", _S),
            ("quantity", _F),
            ("hedge_reference", _F),
            ("state_reason", _S),
            ("accepted_side", _S),
            ("filled_quantity", _F),
            ("version", _I),
        ]
    ),
    "rfq_leg": pa.schema(
        [
            ("id", _S),
            ("rfq_id", _S),
            ("leg_index", _I),
            ("instrument", _S),
            ("expiry", pa.date32()),
            ("strike", _F),
            ("option_type", _S),
            ("ratio", _I),
            ("direction", _S),
        ]
    ),
    "rfq_event": pa.schema(
        [
            ("id", _S),
            ("rfq_id", _S),
            ("seq", _I),
            ("at", _TS),
            ("from_state", _S),
            ("to_state", _S),
            ("reason", _S),
            ("actor", _S),
        ]
    ),
    "dealer": pa.schema(
        [("id", _S), ("name", _S), ("underlyings", _S), ("enabled", _B), ("created_at", _TS)]
    ),
    "dealer_request": pa.schema(
        [
            ("id", _S),
            ("rfq_id", _S),
            ("dealer_id", _S),
            ("created_at", _TS),
            ("rank", _I),
            ("selected", _B),
            ("p_answer", _F),
            ("p_win", _F),
            ("model_version", _S),
            ("disclosed_side", _S),
            ("sent_at", _TS),
            ("deadline_at", _TS),
            ("first_quote_at", _TS),
            ("outcome", _S),
            ("error", _S),
            ("fill_quantity", _F),
        ]
    ),
    "dealer_quote": pa.schema(
        [
            ("id", _S),
            ("dealer_request_id", _S),
            ("rfq_id", _S),
            ("dealer_id", _S),
            ("received_at", _TS),
            ("bid_coin", _F),
            ("ask_coin", _F),
            ("size", _F),
            ("firm", _B),
            ("status", _S),
            ("refusal_reason", _S),
        ]
    ),
    "client_quote": pa.schema(
        [
            ("id", _S),
            ("rfq_id", _S),
            ("snapshot_id", _S),
            ("created_at", _TS),
            ("valid_until", _TS),
            ("theo_usd", _F),
            ("theo_coin", _F),
            ("bid_coin", _F),
            ("ask_coin", _F),
            ("bid_usd", _F),
            ("ask_usd", _F),
            ("p_hit_bid", _F),
            ("p_hit_ask", _F),
            ("model_version", _S),
            ("status", _S),
            ("greeks", _S),
            ("explanation", _S),
        ]
    ),
    "fill": pa.schema(
        [
            ("id", _S),
            ("rfq_id", _S),
            ("filled_at", _TS),
            ("counterparty", _S),
            ("dealer_id", _S),
            ("dealer_quote_id", _S),
            ("side", _S),
            ("quantity", _F),
            ("price_coin", _F),
            ("price_usd", _F),
        ]
    ),
    "market_snapshot": pa.schema(
        [
            ("id", _S),
            ("underlying", _S),
            ("taken_at", _TS),
            ("source", _S),
            ("spot", _F),
            ("data", _S),
        ]
    ),
}
LOG_TABLES: tuple[str, ...] = tuple(SCHEMA)
"""Export order; parents before children."""

#: tables whose rows belong to one RFQ (windowed through ``rfq_id``)
_BY_RFQ = ("rfq_leg", "rfq_event", "dealer_request", "dealer_quote", "client_quote", "fill")


@dataclass
class LogData:
    """The log tables (Arrow tables in :data:`SCHEMA`), possibly restricted to a window.

    Attributes
    ----------
    tables
        Table name → Arrow table.
    since, until
        The window on ``rfq.created_at`` it was read with (None: open).
    source
        Where it came from (a redacted database URL or a directory), for manifests.
    """

    tables: dict[str, pa.Table]
    since: datetime | None = None
    until: datetime | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pa.Table:
        return self.tables[name]

    def column(self, table: str, name: str) -> np.ndarray:
        """One column as numpy (timestamps as float seconds since the epoch, UTC)."""
        return column_numpy(self.tables[table], name)

    def window(self) -> tuple[datetime | None, datetime | None]:
        """First and last ``rfq.created_at`` actually present."""
        t = self.tables["rfq"]
        if t.num_rows == 0:
            return None, None
        lo, hi = pc.min_max(t["created_at"]).values()
        return lo.as_py(), hi.as_py()

    def fingerprint(self) -> str:
        """sha256 over the sorted RFQ ids and every table's row count (identifies the data)."""
        import hashlib

        h = hashlib.sha256()
        ids = self.tables["rfq"]["id"].to_pylist()
        for rid in sorted(ids):
            h.update(rid.encode())
        for name in LOG_TABLES:
            h.update(f"{name}:{self.tables[name].num_rows}".encode())
        return h.hexdigest()


def column_numpy(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: timestamps → float64 epoch seconds (NaN for null), numbers →
    float64/int64 (NaN for null floats), strings and the rest → object arrays."""
    col = table[name]
    typ = col.type
    if pa.types.is_timestamp(typ):
        us = pc.cast(col, pa.int64())
        arr = us.to_numpy(zero_copy_only=False)
        out: np.ndarray = np.asarray(arr, dtype=np.float64) / 1e6
        if col.null_count:
            out[np.asarray(pc.is_null(col))] = np.nan
        return out
    if pa.types.is_floating(typ):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if (pa.types.is_integer(typ) or pa.types.is_boolean(typ)) and not col.null_count:
        return np.asarray(col.to_numpy(zero_copy_only=False))
    return np.array(col.to_pylist(), dtype=object)


def empty_tables() -> dict[str, pa.Table]:
    return {name: schema.empty_table() for name, schema in SCHEMA.items()}


def tables_from_columns(columns: Mapping[str, Mapping[str, Sequence[Any]]]) -> dict[str, pa.Table]:
    """Arrow tables in :data:`SCHEMA` from plain Python column lists (missing tables: empty)."""
    out = empty_tables()
    for name, cols in columns.items():
        schema = SCHEMA[name]
        out[name] = pa.table(
            {f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema
        )
    return out


# --------------------------------------------------------------------------- Parquet


def export_log(log: LogData, out_dir: Path) -> dict[str, int]:
    """Write each table to ``out_dir/<table>.parquet`` plus ``export.json`` (format version,
    window, row counts). Returns the row counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in LOG_TABLES:
        table = log.tables[name].cast(SCHEMA[name])
        pq.write_table(table, out_dir / f"{name}.parquet", compression="zstd")
        counts[name] = table.num_rows
    lo, hi = log.window()
    meta = {
        "format_version": FORMAT_VERSION,
        "source": log.source,
        "since": log.since.isoformat() if log.since else None,
        "until": log.until.isoformat() if log.until else None,
        "first_rfq_at": lo.isoformat() if lo else None,
        "last_rfq_at": hi.isoformat() if hi else None,
        "rows": counts,
    }
    (out_dir / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    return counts


def read_log_parquet(
    directory: Path, since: datetime | None = None, until: datetime | None = None
) -> LogData:
    """Read an export written by :func:`export_log`, restricted to RFQs created in
    ``[since, until)``.

    Raises
    ------
    FileNotFoundError
        When a table file is missing.
    ValueError
        When a table lacks a column of :data:`SCHEMA`, or the export is of a newer format.
    """
    meta_path = directory / "export.json"
    if meta_path.exists():
        version = json.loads(meta_path.read_text()).get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{directory} is export format {version}; this code reads up to {FORMAT_VERSION}"
            )
    tables: dict[str, pa.Table] = {}
    for name, schema in SCHEMA.items():
        path = directory / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: not an rfqdesk export")
        table = pq.read_table(path)
        missing = [f.name for f in schema if f.name not in table.column_names]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}")
        tables[name] = table.select([f.name for f in schema]).cast(schema)
    return _windowed(LogData(tables, source=str(directory)), since, until)


def _windowed(log: LogData, since: datetime | None, until: datetime | None) -> LogData:
    log.since, log.until = since, until
    if since is None and until is None:
        return log
    rfq = log.tables["rfq"]
    mask = pa.chunked_array([pa.array(np.ones(rfq.num_rows, dtype=bool))])
    if since is not None:
        mask = pc.and_(mask, pc.greater_equal(rfq["created_at"], pa.scalar(since, _TS)))
    if until is not None:
        mask = pc.and_(mask, pc.less(rfq["created_at"], pa.scalar(until, _TS)))
    rfq = rfq.filter(mask)
    keep = rfq["id"].combine_chunks()
    log.tables["rfq"] = rfq
    for name in _BY_RFQ:
        t = log.tables[name]
        log.tables[name] = t.filter(pc.is_in(t["rfq_id"], value_set=keep))
    snaps = log.tables["client_quote"]["snapshot_id"].combine_chunks()
    ms = log.tables["market_snapshot"]
    log.tables["market_snapshot"] = ms.filter(pc.is_in(ms["id"], value_set=snaps))
    return log


# --------------------------------------------------------------------------- database


def _py(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


async def read_log_db(
    database_url: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    chunk_rows: int = 50_000,
    progress: Callable[[str, int], None] | None = None,
) -> LogData:
    """Read the log tables from the database at ``database_url`` (SQLite or PostgreSQL),
    restricted to RFQs created in ``[since, until)``.

    Rows are streamed in chunks of ``chunk_rows`` so that memory stays bounded by the Arrow
    tables, not by Python row objects.
    """
    from sqlalchemy import select

    from app.config import Settings
    from app.db import create_engine
    from app.models import (
        ClientQuote,
        Dealer,
        DealerQuote,
        DealerRequest,
        Fill,
        MarketSnapshot,
        Rfq,
        RfqEvent,
        RfqLeg,
    )

    models: dict[str, Any] = {
        "rfq": Rfq,
        "rfq_leg": RfqLeg,
        "rfq_event": RfqEvent,
        "dealer": Dealer,
        "dealer_request": DealerRequest,
        "dealer_quote": DealerQuote,
        "client_quote": ClientQuote,
        "fill": Fill,
        "market_snapshot": MarketSnapshot,
    }
    engine = create_engine(Settings(database_url=database_url), read_only=True)
    tables: dict[str, pa.Table] = {}
    try:
        async with engine.connect() as conn:
            rfq_window = select(Rfq.id)
            if since is not None:
                rfq_window = rfq_window.where(Rfq.created_at >= since)
            if until is not None:
                rfq_window = rfq_window.where(Rfq.created_at < until)
            windowed = since is not None or until is not None
            for name, schema in SCHEMA.items():
                model = models[name]
                cols = [getattr(model, f.name) for f in schema]
                stmt = select(*cols)
                if windowed:
                    if name == "rfq":
                        stmt = stmt.where(Rfq.id.in_(rfq_window))
                    elif name in _BY_RFQ:
                        stmt = stmt.where(model.rfq_id.in_(rfq_window))
                    elif name == "market_snapshot":
                        stmt = stmt.where(
                            MarketSnapshot.id.in_(
                                select(ClientQuote.snapshot_id).where(
                                    ClientQuote.rfq_id.in_(rfq_window)
                                )
                            )
                        )
                batches: list[pa.RecordBatch] = []
                result = await conn.stream(stmt)
                async for part in result.partitions(chunk_rows):
                    columns = list(zip(*part, strict=True)) if part else [()] * len(schema)
                    arrays = [
                        pa.array([_py(v) for v in values], type=f.type)
                        for values, f in zip(columns, schema, strict=True)
                    ]
                    batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
                    if progress is not None:
                        progress(name, len(part))
                tables[name] = (
                    pa.Table.from_batches(batches, schema=schema)
                    if batches
                    else schema.empty_table()
                )
    finally:
        await engine.dispose()
    return LogData(tables, since=since, until=until, source=_redact(database_url))


def read_log(
    *,
    database_url: str | None = None,
    from_file: Path | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LogData:
    """The log from a Parquet export when ``from_file`` is given, else from the database."""
    if from_file is not None:
        return read_log_parquet(from_file, since, until)
    if database_url is None:
        raise ValueError("give a database URL or an export directory")
    import asyncio

    return asyncio.run(read_log_db(database_url, since, until))


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def iter_rows(table: pa.Table, columns: Iterable[str]) -> Iterable[tuple[Any, ...]]:
    """Rows of selected columns as tuples of Python values."""
    lists = [table[c].to_pylist() for c in columns]
    return zip(*lists, strict=True)


def as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
