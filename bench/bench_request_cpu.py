"""CPU per request, in-process: create-and-quote against the bare one-INSERT endpoint.

Both apps are driven one request at a time through httpx's ASGI transport (no sockets between
client and app, no queueing), on PostgreSQL and Redis, and the process CPU time is divided by
the number of requests: what one worker spends per RFQ, the figure that bounds the load
benchmark's throughput (bench/bench_load.py). Writes bench/out/request_cpu.json.

``--dealers N`` registers N simulated dealers answering at once in the response body (another
process, as in the load bench), so each RFQ also takes the dealer path; ``--profile FILE``
writes a cProfile of the create-and-quote rounds (``python -m pstats FILE``).

    .venv/bin/python bench/bench_request_cpu.py [--requests 1000] [--repeats 5] [--dealers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
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

from bench.bench_load import PG, REDIS, body, fresh_db, start_dealers

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


async def warm(send: Callable[[], Awaitable[httpx.Response]]) -> None:
    for _ in range(50):
        assert (await send()).status_code == 201


async def cpu_ms(send: Callable[[], Awaitable[httpx.Response]], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        response = await send()
    assert response.status_code == 201, response.text
    return 1000 * (time.process_time() - started) / n


async def measure(n: int, repeats: int, key: str, profile: Path | None = None) -> dict[str, float]:
    """Rounds of ``n`` requests, create-and-quote then bare, ``repeats`` times: each round's
    pair shares the machine's state, so the ratio is steadier than either time."""
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

            def create() -> Awaitable[httpx.Response]:
                return svc.post("/v1/rfqs", content=payload, headers=headers)

            def insert() -> Awaitable[httpx.Response]:
                return base.post("/bare", content=payload, headers=json_headers)

            await warm(create)
            await warm(insert)
            profiler = cProfile.Profile() if profile else None
            rounds = []
            for _ in range(repeats):
                if profiler:
                    profiler.enable()
                created = await cpu_ms(create, n)
                if profiler:
                    profiler.disable()
                rounds.append((created, await cpu_ms(insert, n)))
            if profiler and profile:
                profiler.dump_stats(profile)
    create_ms = statistics.median(c for c, _ in rounds)
    bare_ms = statistics.median(b for _, b in rounds)
    return {
        "create_and_quote_ms": create_ms,
        "bare_insert_ms": bare_ms,
        "ratio": statistics.median(c / b for c, b in rounds),
        "rounds": rounds,  # type: ignore[dict-item]
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dealers", type=int, default=0, help="simulated dealers answering at once")
    ap.add_argument("--profile", type=Path, help="cProfile of the create-and-quote rounds")
    args = ap.parse_args()
    asyncio.run(fresh_db(DB))
    bin_ = ROOT / ".venv" / "bin"
    subprocess.run([bin_ / "rfqdesk", "db", "upgrade"], check=True, capture_output=True)
    sim = start_dealers(args.dealers, 0.0, URL) if args.dealers else None
    key = subprocess.run(
        [bin_ / "rfqdesk", "keys", "create", "--role", "sales", "--name", "cpu"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        result = asyncio.run(measure(args.requests, args.repeats, key, args.profile))
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait()
    result["dealers"] = args.dealers
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "request_cpu.json").write_text(json.dumps(result, indent=2))
    print(
        f"CPU per request (median of {args.repeats} rounds × {args.requests}): create-and-quote "
        f"{result['create_and_quote_ms']:.2f} ms, bare one-INSERT {result['bare_insert_ms']:.2f} ms"
        f" (median round ratio ×{result['ratio']:.2f}); {args.dealers} dealers; database {PG}/{DB}"
    )


if __name__ == "__main__":
    main()
