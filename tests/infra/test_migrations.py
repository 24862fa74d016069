"""Migrations build the schema on SQLite and PostgreSQL, reverse cleanly, match the models."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from app import migrate
from app.config import Settings
from app.db import Base, create_engine


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_engine(Settings(database_url=url))
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await engine.dispose()
        return names - {"alembic_version"}

    return asyncio.run(run())


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def test_upgrade_downgrade_upgrade_has_no_drift(
    backend: str, request: pytest.FixtureRequest, tmp_path
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        migrate.upgrade(url)
    else:
        url = request.getfixturevalue("postgres_url")
    assert _tables(url) == set(Base.metadata.tables)
    migrate.check(url)  # raises on any difference between models and schema
    migrate.downgrade(url, "base")
    assert _tables(url) == set()
    migrate.upgrade(url)
    migrate.check(url)
