"""The operator's commands: migrate, check, create keys (printed once, stored hashed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.auth.keys import hash_key
from app.cli import cli
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.models import ApiKey


@pytest.fixture
def db_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RFQDESK_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _stored(url: str) -> list[ApiKey]:
    async def run() -> list[ApiKey]:
        engine = create_engine(Settings(database_url=url))
        async with create_sessionmaker(engine)() as s:
            rows = list((await s.scalars(select(ApiKey))).all())
        await engine.dispose()
        return rows

    return asyncio.run(run())


def test_upgrade_check_and_create_a_key(db_env: str) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    check = runner.invoke(cli, ["db", "check"])
    assert check.exit_code == 0, check.output
    assert "no drift" in check.output
    made = runner.invoke(cli, ["keys", "create", "--role", "analyst", "--name", "ann"])
    assert made.exit_code == 0, made.output
    key = made.output.strip()
    (row,) = _stored(db_env)
    assert row.role == "analyst"
    assert row.key_hash == hash_key(key)
    assert key not in (row.key_hash, row.prefix)  # only the hash and a short prefix are kept


def test_unknown_role_is_refused(db_env: str) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["db", "upgrade"])
    res = runner.invoke(cli, ["keys", "create", "--role", "king", "--name", "x"])
    assert res.exit_code != 0
    assert _stored(db_env) == []
