"""HTTP round trip of ``POST /v1/rfqs`` (validate, store, price, quote) against the bare baseline.

Both servers run the same way (uvicorn, one worker, loopback, same database kind); requests go
one at a time from one client so the figures are latencies, not throughput. Prints medians and
p99 and their ratio, and writes bench/out/http.json.

    .venv/bin/python bench/bench_http.py [--n 400] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import rfq_body, wait_up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(url: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:
        for i in range(n + 20):
            t0 = time.perf_counter()
            resp = await client.post(url, json=rfq_body())
            dt = time.perf_counter() - t0
            if resp.status_code != 201:
                raise SystemExit(f"{url}: {resp.status_code} {resp.text}")
            if i >= 20:  # warm-up
                out.append(dt * 1000)
    return out


def summary(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {
        "median_ms": statistics.median(xs),
        "p99_ms": xs[int(0.99 * (len(xs) - 1))],
        "mean_ms": statistics.fmean(xs),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rfqbench"))
    if args.database == "sqlite":
        url, bare_url = f"sqlite+aiosqlite:///{tmp}/svc.db", f"sqlite+aiosqlite:///{tmp}/bare.db"
    else:
        url = bare_url = os.environ.get(
            "BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        )
    env = os.environ | {
        "RFQDESK_DATABASE_URL": url,
        "BENCH_DATABASE_URL": bare_url,
        "RFQDESK_LOG_LEVEL": "WARNING",
        "RFQDESK_API__RATE_LIMIT_PER_MINUTE": "1000000",
    }
    bin_ = ROOT / ".venv" / "bin"
    subprocess.run([bin_ / "rfqdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    key = subprocess.run(
        [bin_ / "rfqdesk", "keys", "create", "--role", "sales", "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    p1, p2 = free_port(), free_port()
    svc = subprocess.Popen([bin_ / "rfqdesk", "serve", "--port", str(p1)], env=env, cwd=ROOT)
    bare = subprocess.Popen(
        [bin_ / "uvicorn", "bench.bare_app:app", "--port", str(p2), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_up(f"http://127.0.0.1:{p1}/healthz", svc)
        wait_up(f"http://127.0.0.1:{p2}/docs", bare)
        rfq = asyncio.run(
            measure(f"http://127.0.0.1:{p1}/v1/rfqs", {"Authorization": f"Bearer {key}"}, args.n)
        )
        base = asyncio.run(measure(f"http://127.0.0.1:{p2}/bare", {}, args.n))
    finally:
        svc.terminate()
        bare.terminate()
        svc.wait(10)
        bare.wait(10)
    result = {
        "database": args.database,
        "n": args.n,
        "post_rfq": summary(rfq),
        "bare_insert": summary(base),
    }
    result["ratio_median"] = result["post_rfq"]["median_ms"] / result["bare_insert"]["median_ms"]
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"http_{args.database}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
