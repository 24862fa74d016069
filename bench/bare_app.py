"""The baseline of the HTTP benchmarks: FastAPI validating an RFQ-like body and doing one INSERT.

Same database, same driver, same server; no domain logic, pricing or auth. Started by
``bench/bench_http.py`` as ``uvicorn bench.bare_app:app``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal

from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import Column, MetaData, String, Table, Uuid
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings

URL = os.environ.get("BENCH_DATABASE_URL", "sqlite+aiosqlite:///./var/bench_bare.db")
metadata = MetaData()
bare = Table("bench_bare", metadata, Column("id", Uuid, primary_key=True), Column("body", String))
# the service's pool settings (and defaults): the baseline must not pay for connections that
# the service keeps open, nor the other way round
_pool = Settings(database_url=URL)
engine = (
    create_async_engine(URL)
    if URL.startswith("sqlite")
    else create_async_engine(
        URL, pool_size=_pool.db_pool_size, max_overflow=_pool.db_pool_max_overflow
    )
)


class Body(BaseModel):
    underlying: str = Field(min_length=2, max_length=10)
    structure: str
    strikes: list[Decimal]
    expiries: list[date]
    side: str
    quantity: Decimal = Field(gt=0)
    hedge_reference: Decimal | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.post("/bare", status_code=201)
async def create(body: Body) -> dict[str, str]:
    rid = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(bare.insert().values(id=rid, body=body.model_dump_json()))
    return {"id": str(rid)}
