"""CPU per request, in-process: create-and-quote against the bare one-INSERT endpoint.

Both apps are driven one request at a time through httpx's ASGI transport (no sockets between
client and app, no queueing), on PostgreSQL and Redis, and the process CPU time is divided by
the number of requests: what one worker spends per RFQ, the figure that bounds the load
benchmark's throughput (bench/bench_load.py). Writes bench/out/request_cpu.json.

    .venv/bin/python bench/bench_request_cpu.py [--requests 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_load import PG, REDIS, body, fresh_db

DB = "rfqdesk_cpu"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"
os.environ.update(
    RFQDESK_DATABASE_URL=URL,
    RFQDESK_REDIS_URL=REDIS,
    RFQDESK_LOG_LEVEL="WARNING",
    RFQDESK_API__RATE_LIMIT_PER_MINUTE="100000000",
    RFQDESK_RFQ__DEFAULT_EXPIRES_IN_MS="600000",
    RFQDESK_BACKGROUND_TASKS="false",
    BENCH_DATABASE_URL=URL,
)

import httpx


async def cpu_ms(send: Callable[[], Awaitable[httpx.Response]], n: int, repeats: int) -> float:
    for _ in range(50):
        assert (await send()).status_code == 201
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(n):
            response = await send()
        assert response.status_code == 201, response.text
        runs.append(1000 * (time.process_time() - started) / n)
    return statistics.median(runs)


async def measure(n: int, repeats: int, key: str) -> dict[str, float]:
    from app.main import create_app
    from bench.bare_app import app as bare

    payload = body()
    json_headers = {"content-type": "application/json"}
    service = create_app()
    async with service.router.lifespan_context(service), bare.router.lifespan_context(bare):
        svc = httpx.AsyncClient(transport=httpx.ASGITransport(app=service), base_url="http://s")
        base = httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://b")
        async with svc, base:
            headers = json_headers | {"Authorization": f"Bearer {key}"}
            create = await cpu_ms(
                lambda: svc.post("/v1/rfqs", content=payload, headers=headers), n, repeats
            )
            bare_ms = await cpu_ms(
                lambda: base.post("/bare", content=payload, headers=json_headers), n, repeats
            )
    return {"create_and_quote_ms": create, "bare_insert_ms": bare_ms, "ratio": create / bare_ms}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(fresh_db(DB))
    bin_ = ROOT / ".venv" / "bin"
    subprocess.run([bin_ / "rfqdesk", "db", "upgrade"], check=True, capture_output=True)
    key = subprocess.run(
        [bin_ / "rfqdesk", "keys", "create", "--role", "sales", "--name", "cpu"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    result = asyncio.run(measure(args.requests, args.repeats, key))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "request_cpu.json").write_text(json.dumps(result, indent=2))
    print(
        f"CPU per request (median of {args.repeats} × {args.requests}): create-and-quote "
        f"{result['create_and_quote_ms']:.2f} ms, bare one-INSERT {result['bare_insert_ms']:.2f} ms"
        f" (×{result['ratio']:.1f}); database {PG}/{DB}"
    )


if __name__ == "__main__":
    main()
