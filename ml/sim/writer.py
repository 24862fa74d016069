"""Write a simulation's log tables into the service's database (bulk SQLAlchemy Core inserts
through the ORM tables of :mod:`app.models`, so column types and conversions are the
service's own)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
from sqlalchemy import insert, select

from ml.export import LOG_TABLES

__all__ = ["write_log_db"]

_UUID_COLUMNS = {"id", "rfq_id", "dealer_id", "snapshot_id", "dealer_request_id", "dealer_quote_id"}
_JSON_COLUMNS = {"greeks", "explanation", "data", "underlyings"}


def _convert(name: str, values: list[Any]) -> list[Any]:
    if name in _UUID_COLUMNS:
        return [uuid.UUID(v) if v is not None else None for v in values]
    if name in _JSON_COLUMNS:
        return [json.loads(v) if v is not None else None for v in values]
    return values


def _chunks(table: pa.Table, size: int, remap: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, table.num_rows, size):
        part = table.slice(start, size)
        cols = {}
        for name in part.column_names:
            values = part[name].to_pylist()
            if name == "dealer_id" and remap:
                values = [remap.get(v, v) if v is not None else None for v in values]
            cols[name] = _convert(name, values)
        names = list(cols)
        yield [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]


async def write_log_db(
    tables: dict[str, pa.Table],
    database_url: str,
    *,
    chunk_rows: int = 20_000,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Insert the log tables into the (migrated) database at ``database_url``.

    Dealers that already exist (same name) are reused: their ids replace the simulated ones
    in every table. Returns the number of rows written per table.
    """
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
    engine = create_engine(Settings(database_url=database_url))
    counts: dict[str, int] = {}
    try:
        dealers = tables["dealer"]
        async with engine.begin() as conn:
            existing = {
                name: str(did)
                for did, name in (await conn.execute(select(Dealer.id, Dealer.name))).all()
            }
            remap: dict[str, str] = {}
            new_rows = []
            for row in dealers.to_pylist():
                if row["name"] in existing:
                    remap[row["id"]] = existing[row["name"]]
                    continue
                new_rows.append(
                    {
                        "id": uuid.UUID(row["id"]),
                        "name": row["name"],
                        "endpoint_url": f"http://sim.invalid/dealers/{row['name']}",
                        "underlyings": json.loads(row["underlyings"]),
                        "enabled": row["enabled"],
                        "webhook_secret": secrets.token_hex(16),
                        "created_at": row["created_at"],
                        "updated_at": row["created_at"],
                    }
                )
            if new_rows:
                await conn.execute(insert(Dealer), new_rows)
            counts["dealer"] = len(new_rows)
        order = ["market_snapshot"] + [
            t for t in LOG_TABLES if t not in ("dealer", "market_snapshot")
        ]
        for name in order:
            table = tables[name]
            async with engine.begin() as conn:
                for rows in _chunks(table, chunk_rows, remap):
                    await conn.execute(insert(models[name]), rows)
                    if progress is not None:
                        progress(name, len(rows))
            counts[name] = table.num_rows
    finally:
        await engine.dispose()
    return counts
