"""Faults, measured: Postgres restarted under load, Redis stopped, the service SIGKILLed.

Each test runs its own servers on loopback (a private PostgreSQL cluster, a private Redis, the
service as a process) so that it can break them without touching anything else.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import CI
from tests.factories import call_spread
from tests.procs import ServiceProcess
from tests.servers import free_port

pytestmark = pytest.mark.slow
PG_VERSION = (
    next(iter(sorted(os.listdir("/etc/postgresql"))), None)
    if Path("/etc/postgresql").exists()
    else None
)


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if CI:
            pytest.fail(f"{tool} is needed for the fault tests")
        pytest.skip(f"{tool} is not installed")


@pytest.fixture
def private_pg() -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL cluster on its own port (restartable without harming others)."""
    _need("pg_createcluster")
    if PG_VERSION is None:
        pytest.skip("no PostgreSQL installation")
    name, port = f"rfqfault{uuid.uuid4().hex[:6]}", free_port()
    subprocess.run(
        ["pg_createcluster", PG_VERSION, name, "-p", str(port), "--start", "--", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    try:
        yield name, port
    finally:
        subprocess.run(["pg_dropcluster", PG_VERSION, name, "--stop"], capture_output=True)


def _pg(name: str, action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, name, action],
        check=True,
        capture_output=True,
    )


async def _load(
    url: str, headers: dict[str, str], seconds: float, conns: int = 8, idempotent: bool = False
) -> list[tuple[int, dict, dict[str, str]]]:
    """POST RFQs from ``conns`` connections for ``seconds``; (status, body, headers) of each."""
    out: list[tuple[int, dict, dict[str, str]]] = []
    end = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < end:
            h = headers | ({"Idempotency-Key": uuid.uuid4().hex} if idempotent else {})
            try:
                r = await client.post("/v1/rfqs", json=call_spread(), headers=h)
                out.append((r.status_code, r.json(), dict(r.headers)))
            except httpx.HTTPError as exc:
                out.append((0, {"error": type(exc).__name__}, {}))
            await asyncio.sleep(0.01)

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(conns)))
    return out


def test_postgres_restart_loses_no_acknowledged_rfq(private_pg: tuple[str, int]) -> None:
    name, port = private_pg
    db_url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    svc = ServiceProcess(
        {
            "RFQDESK_DATABASE_URL": db_url,
            "RFQDESK_DB_POOL_TIMEOUT_S": "1",
            "RFQDESK_API__RATE_LIMIT_PER_MINUTE": "1000000",
        },
        free_port(),
        log=Path(os.environ.get("RFQDESK_FAULT_LOG", "/dev/null")),
    )
    svc.run("db", "upgrade")
    key = svc.run("keys", "create", "--role", "sales", "--name", "load")
    headers = {"Authorization": f"Bearer {key}"}
    svc.start()
    try:

        async def scenario() -> list[tuple[int, dict, dict[str, str]]]:
            load = asyncio.create_task(_load(svc.url, headers, seconds=8))
            await asyncio.sleep(2)
            await asyncio.to_thread(_pg, name, "stop")
            await asyncio.sleep(2)
            await asyncio.to_thread(_pg, name, "start")
            return await load

        results = asyncio.run(scenario())
        statuses = [s for s, _, _ in results]
        assert 500 not in statuses, sorted(set(statuses))
        assert 0 not in statuses, sorted(set(statuses))
        assert statuses.count(503) > 0  # the outage was seen ...
        assert all(
            h.get("retry-after") for s, _, h in results if s == 503
        )  # ... and said when to retry
        acked = {b["id"] for s, b, _ in results if s == 201}
        # recovered without a restart: the last requests succeeded again
        assert statuses[-1] == 201

        async def stored() -> set[str]:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
            try:
                return {str(r["id"]) for r in await conn.fetch("SELECT id FROM rfq")}
            finally:
                await conn.close()

        assert acked <= asyncio.run(stored())
    finally:
        svc.stop()


@pytest.fixture
def private_redis() -> Iterator[int]:
    _need("redis-server")
    port = free_port()
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
    )
    time.sleep(0.3)
    yield port
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)


def test_redis_down_degrades_safely_and_recovers(private_redis: int, tmp_path: Path) -> None:
    port = private_redis
    svc = ServiceProcess(
        {
            "RFQDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/r.db",
            "RFQDESK_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        },
        free_port(),
    )
    svc.run("db", "upgrade")
    headers = {
        "Authorization": f"Bearer {svc.run('keys', 'create', '--role', 'sales', '--name', 'r')}"
    }
    svc.start()
    try:
        with httpx.Client(base_url=svc.url, timeout=10) as c:
            assert c.post("/v1/rfqs", json=call_spread(), headers=headers).status_code == 201
            subprocess.run(
                ["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True
            )
            time.sleep(0.3)
            plain = c.post("/v1/rfqs", json=call_spread(), headers=headers)
            assert plain.status_code == 201  # quoting goes on; the rate limiter fails open
            keyed = c.post(
                "/v1/rfqs", json=call_spread(), headers=headers | {"Idempotency-Key": "k1"}
            )
            assert keyed.status_code == 503  # idempotency fails closed: no risk of a double RFQ
            assert keyed.headers["retry-after"]
            ready = c.get("/readyz").json()
            assert ready["status"] == "degraded"
            subprocess.run(
                [
                    "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--daemonize",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                check=True,
                capture_output=True,
            )
            time.sleep(0.5)
            first = c.post(
                "/v1/rfqs", json=call_spread(), headers=headers | {"Idempotency-Key": "k1"}
            )
            again = c.post(
                "/v1/rfqs", json=call_spread(), headers=headers | {"Idempotency-Key": "k1"}
            )
            assert first.status_code == again.status_code == 201
            assert first.json()["id"] == again.json()["id"]
            assert c.get("/readyz").json()["status"] == "ready"
    finally:
        svc.stop()


def test_sigkill_mid_rfq_leaves_nothing_stuck(tmp_path: Path) -> None:
    """Killed while dealers are being asked; after a restart every RFQ is final by its expiry."""
    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.dealers.simulated import create_dealers_app, make_dealers, register_dealers
    from tests.servers import serve

    db_url = f"sqlite+aiosqlite:///{tmp_path}/k.db"
    svc = ServiceProcess(
        {"RFQDESK_DATABASE_URL": db_url, "RFQDESK_DEALERS__DEADLINE_MS": "3000"}, free_port()
    )
    svc.run("db", "upgrade")
    headers = {
        "Authorization": f"Bearer {svc.run('keys', 'create', '--role', 'sales', '--name', 'k')}"
    }
    dealers = make_dealers(2, modes=["silent", "silent"])
    dealer_port = free_port()

    async def register() -> None:
        engine = create_engine(Settings(database_url=db_url))
        await register_dealers(
            create_sessionmaker(engine), dealers, f"http://127.0.0.1:{dealer_port}"
        )
        await engine.dispose()

    asyncio.run(register())
    with serve(create_dealers_app(dealers, svc.url), dealer_port):
        svc.start()

        async def fire() -> None:
            async with httpx.AsyncClient(base_url=svc.url, timeout=10) as c:
                tasks = [
                    asyncio.create_task(
                        c.post("/v1/rfqs", json=call_spread(expires_in_ms=2000), headers=headers)
                    )
                    for _ in range(5)
                ]
                await asyncio.sleep(1.0)  # all five are waiting on the silent dealers
                svc.kill()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(fire())
        svc.start()
        time.sleep(3.5)  # past every RFQ's expiry, with sweeps in between
        svc.stop()

    async def states() -> list[tuple[str, datetime, int]]:
        import aiosqlite

        async with aiosqlite.connect(str(tmp_path / "k.db")) as conn:
            rows = await (await conn.execute("SELECT state, expires_at FROM rfq")).fetchall()
            pending = await (
                await conn.execute("SELECT count(*) FROM dealer_request WHERE outcome = 'pending'")
            ).fetchone()
        return [(s, datetime.fromisoformat(e).replace(tzinfo=UTC), pending[0]) for s, e in rows]

    rows = asyncio.run(states())
    assert len(rows) == 5
    assert {s for s, _, _ in rows} == {"expired"}
    assert rows[0][2] == 0  # no dealer request left pending either
