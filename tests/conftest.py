"""Test fixtures: databases built by the migrations, one rolled-back transaction per test.

Every database test runs on SQLite (the embedded default) and on PostgreSQL. Locally the
Postgres and Redis variants skip when those servers are down; with CI=true they must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app import migrate
from app.auth.keys import Role
from app.auth.service import create_key
from app.config import Settings
from app.db import create_engine
from app.main import create_app

CI = os.environ.get("CI", "").lower() == "true"
PG_HOST = os.environ.get("RFQDESK_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:5432/postgres"
REDIS_URL = os.environ.get("RFQDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if CI:
        pytest.fail(f"{name} is not reachable at {host}:{port}; under CI=true it must run")
    pytest.skip(f"{name} is not running at {host}:{port}")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'rfqdesk.db'}"
    migrate.upgrade(url)
    return url


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new database built by the migrations, dropped afterwards."""
    require_server("PostgreSQL", PG_HOST, 5432)
    import asyncpg

    name = f"rfqdesk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{name}"
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Shared by the session: tests on it roll back (the ``connection`` fixture)."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    """A database for one test, for a test that commits through a running service."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=None,
        background_tasks=False,
        log_json=False,
        log_level="WARNING",
        env="test",
    )


@pytest.fixture
async def connection(settings: Settings) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(settings)
    async with engine.connect() as conn:
        trans = await conn.begin()
        yield conn
        await trans.rollback()
    await engine.dispose()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
async def app(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        # every session of the app joins the test's transaction, rolled back afterwards
        application.state.rfqdesk.sessionmaker = sessionmaker
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://rfqdesk.test") as c:
        yield c


KeyMaker = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def auth(sessionmaker: async_sessionmaker[AsyncSession]) -> KeyMaker:
    """``await auth(Role.SALES)`` → headers carrying a fresh key of that role."""

    async def make(
        role: Role,
        name: str | None = None,
        dealer_id: uuid.UUID | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> dict[str, str]:
        async with sessionmaker() as s, s.begin():
            _, key = await create_key(
                s,
                role=role,
                name=name or f"{role.value}-{uuid.uuid4().hex[:6]}",
                dealer_id=dealer_id,
                rate_limit_per_minute=rate_limit_per_minute,
            )
        return {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def redis_url() -> str:
    require_server("Redis", "127.0.0.1", 6379)
    return REDIS_URL
