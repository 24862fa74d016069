"""Overhead of asking 8 dealers at once, over the slowest dealer's own answer time.

The dealers (bench/dealers_server.py, another process) all answer after the same latency. Each
round sends 8 signed quote requests through DealerFanout.fan_out and measures its wall time; the
baseline in the same round is the slowest of the 8 answer times the client saw. The overhead is
their difference (target: median ≤ 5 ms).

    .venv/bin/python bench/bench_fanout.py [--rounds 200] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cache import MemoryCache
from app.config import DealerSettings
from app.dealers.client import CircuitBreakers, DealerClient
from app.dealers.fanout import DealerFanout, PlannedRequest
from app.dealers.wire import QuoteRequestMessage, WireLeg
from app.domain.expiries import format_expiry_code, monthly_expiry
from bench.dealers_server import dealers as bench_dealers
from bench.dealers_server import start


def message(request_id: uuid.UUID, deadline: datetime) -> dict[str, object]:
    today = datetime.now(UTC).date()
    exp = monthly_expiry(today.month % 12 + 1, None, today + timedelta(days=7))
    code = format_expiry_code(exp)
    legs = [
        WireLeg(instrument=f"BTC-{code}-70000-C", ratio=1, direction="buy"),
        WireLeg(instrument=f"BTC-{code}-80000-C", ratio=1, direction="sell"),
    ]
    msg = QuoteRequestMessage(
        request_id=request_id,
        rfq_id=uuid.uuid4(),
        underlying="BTC",
        structure="call_spread",
        legs=legs,
        quantity=250,
        side="two_way",
        hedge_reference=None,
        deadline=deadline,
        quote_url="/unused",
    )
    return msg.model_dump(mode="json")


async def run(port: int, rounds: int) -> dict[str, object]:
    dealers = bench_dealers(8)  # the names and secrets the server has
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as http:
        fanout = DealerFanout(
            DealerSettings(), DealerClient(http, CircuitBreakers(1000, 1)), MemoryCache()
        )
        totals, slowest, overhead = [], [], []
        for i in range(rounds + 10):
            deadline = datetime.now(UTC) + timedelta(seconds=2)
            planned = [
                PlannedRequest(
                    uuid.uuid4(),
                    uuid.uuid4(),
                    d.name,
                    f"http://127.0.0.1:{port}/dealers/{d.name}",
                    d.secret,
                    message(uuid.uuid4(), deadline),
                )
                for d in dealers
            ]
            t0 = time.perf_counter()
            results = await fanout.fan_out(uuid.uuid4(), planned, deadline)
            total = (time.perf_counter() - t0) * 1000
            assert all(r.status == "answered" for r in results.values()), results
            worst = max(r.latency_ms for r in results.values())
            if i >= 10:
                totals.append(total)
                slowest.append(worst)
                overhead.append(total - worst)
    return {
        "rounds": rounds,
        "fanout_median_ms": statistics.median(totals),
        "slowest_dealer_median_ms": statistics.median(slowest),
        "overhead_median_ms": statistics.median(overhead),
        "overhead_p95_ms": sorted(overhead)[int(0.95 * (len(overhead) - 1))],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=50)
    args = ap.parse_args()
    server, port = start(8, args.latency_ms)
    try:
        result = asyncio.run(run(port, args.rounds)) | {"dealer_latency_ms": args.latency_ms}
    finally:
        server.terminate()
        server.wait(10)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "fanout.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
