"""Load: create-and-quote against a bare one-INSERT FastAPI endpoint, same run, same machine.

wrk (32 connections, bounded in time, loopback only) drives ``POST /v1/rfqs`` on the service
(PostgreSQL + Redis, 1 and 2 workers) and ``POST /bare`` on bench/bare_app.py (validates a
similar body, one INSERT, same database).
Both servers stay up; each round runs create-and-quote then bare, back to back, and the
figures are medians over the rounds (the ratio is the median of the rounds' ratios: this
machine is shared, and its background load moves between runs). Prints throughput, p50/p99,
the ratios and the CPU milliseconds per request that the server, PostgreSQL, Redis and wrk
used (bench/cpu.py), then latency at set offered loads (``--paced``: the connections wait
between requests, so latency is measured below saturation), and writes bench/out/load.json.

By default no dealer is registered: the desk quotes from its model alone. ``--dealers N``
registers N simulated dealers (bench/dealers_server.py, another process on the same cores)
that answer every quote request in the response body after ``--dealer-latency-ms`` (default
0: no dealer wait), so each RFQ also ranks the dealers, sends signed requests to the chosen
ones over HTTP, stores their quotes and covers the client quote with them; the dealers'
process's CPU is reported as its own group, and the dealer quotes stored are counted.

    .venv/bin/python bench/bench_load.py [--seconds 10] [--rounds 3] [--connections 32]
        [--workers 1 2] [--paced 50 100] [--dealers 4 [--dealer-latency-ms 0]]
        [--profile bench/out/load-profile]   # py-spy on the service during the measured run

``--profile DIR`` records the service's processes with py-spy (``raw`` collapsed stacks, one
file per worker count) while wrk drives create-and-quote; ``bench/profile_top.py`` summarises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import rfq_body, wait_up
from bench.cpu import cpu_seconds, per_request_ms
from tests.servers import free_port

BIN = ROOT / ".venv" / "bin"
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")


def body() -> str:
    return json.dumps(rfq_body())


async def fresh_db(name: str) -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def wrk(
    url: str,
    seconds: int,
    connections: int,
    key: str = "",
    roots: Mapping[str, int] | None = None,
    rate: float = 0.0,
) -> dict[str, Any]:
    """One wrk run; with ``roots`` (group name: pid of a process whose tree it counts, the
    server's first), also the CPU milliseconds per request that those, PostgreSQL, Redis and
    wrk itself used during it. ``rate`` > 0 paces the connections to offer about that many
    requests a second in all."""
    delay_ms = round(connections * 1000 / rate) if rate > 0 else 0
    env = os.environ | {"BODY": body(), "KEY": key, "DELAY_MS": str(delay_ms)}
    groups = dict(roots or {}), _BY_NAME
    cpu_before, wrk_before = cpu_seconds(*groups), _children_cpu()
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "load.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu_after, wrk_after = cpu_seconds(*groups), _children_cpu()
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        raise SystemExit(out)
    r: dict[str, Any] = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["cpu_ms_per_request"] = per_request_ms(cpu_before, cpu_after, r["requests"]) | {
        "wrk": 1000 * (wrk_after - wrk_before) / max(r["requests"], 1)
    }
    r["p50_ms"], r["p99_ms"] = r.pop("p50_us") / 1000, r.pop("p99_us") / 1000
    return r


_BY_NAME = {"postgres": ["postgres"], "redis": ["redis-server"]}


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk: each run is waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def stored_rfqs(db: str) -> int:
    return (await stored(db))["rfq"]


async def stored(db: str) -> dict[str, int]:
    """Rows so far: RFQs, those quoted to the client, dealer requests and dealer quotes."""
    conn = await asyncpg.connect(f"{PG}/{db}")
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM rfq) AS rfq,"
            " (SELECT count(*) FROM client_quote) AS client_quote,"
            " (SELECT count(*) FROM dealer_request) AS dealer_request,"
            " (SELECT count(*) FROM dealer_quote) AS dealer_quote"
        )
        return {k: int(v) for k, v in dict(row).items()}
    finally:
        await conn.close()


def start_dealers(count: int, latency_ms: float, db_url: str) -> subprocess.Popen[bytes]:
    """The simulated dealers' server, registered in the load database before the desk starts."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from app.dealers.simulated import register_dealers
    from bench.dealers_server import dealers, start

    proc, port = start(count, latency_ms)

    async def register() -> None:
        engine = create_async_engine(db_url)
        try:
            await register_dealers(
                async_sessionmaker(engine), dealers(count, latency_ms), f"http://127.0.0.1:{port}"
            )
        finally:
            await engine.dispose()

    asyncio.run(register())
    return proc


def py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` and its worker subprocesses, for ``seconds``, collapsed stacks."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            BIN / "py-spy",
            "record",
            "--subprocesses",
            "--nonblocking",
            "-r",
            "250",
            "-f",
            "raw",
            "-d",
            str(seconds),
            "-o",
            str(out),
            "--pid",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run(
    workers: int,
    seconds: int,
    connections: int,
    rounds: int,
    profile: Path | None = None,
    paced: Sequence[float] = (),
    dealers: int = 0,
    dealer_latency_ms: float = 0.0,
) -> dict[str, Any]:
    db = "rfqdesk_load"
    asyncio.run(fresh_db(db))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
    env = os.environ | {
        "RFQDESK_DATABASE_URL": url,
        "RFQDESK_REDIS_URL": REDIS,
        "RFQDESK_LOG_LEVEL": "WARNING",
        "RFQDESK_API__RATE_LIMIT_PER_MINUTE": "100000000",
        "BENCH_DATABASE_URL": url,
        "RFQDESK_RFQ__DEFAULT_EXPIRES_IN_MS": "600000",
    }
    subprocess.run([BIN / "rfqdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    key = subprocess.run(
        [BIN / "rfqdesk", "keys", "create", "--role", "sales", "--name", "load"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    sim = start_dealers(dealers, dealer_latency_ms, url) if dealers else None
    p_svc, p_bare = free_port(), free_port()
    svc = subprocess.Popen(
        [BIN / "rfqdesk", "serve", "--port", str(p_svc), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
    )
    bare = subprocess.Popen(
        [
            BIN / "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(p_bare),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_up(f"http://127.0.0.1:{p_svc}/healthz")
        wait_up(f"http://127.0.0.1:{p_bare}/docs")
        wrk(f"http://127.0.0.1:{p_svc}/v1/rfqs", 3, connections, key)  # warm-up
        wrk(f"http://127.0.0.1:{p_bare}/bare", 3, connections)
        pairs = []
        commits_before = group_commits(f"http://127.0.0.1:{p_svc}/metrics")
        rows_before = asyncio.run(stored(db))
        for i in range(rounds):
            before = asyncio.run(stored_rfqs(db))
            spy = None
            if profile is not None and i == 0:
                spy = py_spy(svc.pid, seconds, profile / f"w{workers}.txt")
            svc_r = wrk(
                f"http://127.0.0.1:{p_svc}/v1/rfqs",
                seconds,
                connections,
                key,
                {"server": svc.pid} | ({"dealers": sim.pid} if sim else {}),
            )
            svc_r["stored"] = asyncio.run(stored_rfqs(db)) - before
            if spy is not None:
                spy.wait(60)
            bare_r = wrk(
                f"http://127.0.0.1:{p_bare}/bare", seconds, connections, "", {"server": bare.pid}
            )
            pairs.append((svc_r, bare_r))
        rows = {k: v - rows_before[k] for k, v in asyncio.run(stored(db)).items()}
        units, statements = (
            after - before
            for after, before in zip(
                group_commits(f"http://127.0.0.1:{p_svc}/metrics"), commits_before, strict=True
            )
        )
        at_rate = []
        for rate in paced:
            svc_r = wrk(f"http://127.0.0.1:{p_svc}/v1/rfqs", seconds, connections, key, rate=rate)
            bare_r = wrk(f"http://127.0.0.1:{p_bare}/bare", seconds, connections, rate=rate)
            at_rate.append({"offered": rate, "create_and_quote": svc_r, "bare_insert": bare_r})
    finally:
        for p in (svc, bare, sim):
            if p is not None:
                p.terminate()
                p.wait(20)
    return summarise(workers, connections, seconds, pairs) | {
        "dealers": dealers,
        "dealer_latency_ms": dealer_latency_ms if dealers else None,
        "stored_during_saturated_runs": rows,
        "paced": at_rate,
        # RFQs written per group-commit statement during the saturated runs (app.db): read from
        # one worker's /metrics, so with several workers it is that worker's figure
        "rfqs_per_write": units / statements if statements else None,
    }


def group_commits(url: str) -> tuple[float, float]:
    """(units of work, statements) that the group commit has written so far (/metrics)."""
    values = {"sum": 0.0, "count": 0.0}
    for line in httpx.get(url, timeout=5).text.splitlines():
        for kind in values:
            if line.startswith(f"rfqdesk_db_group_commit_units_{kind} "):
                values[kind] = float(line.split()[1])
    return values["sum"], values["count"]


def summarise(
    workers: int,
    connections: int,
    seconds: int,
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
) -> dict[str, Any]:
    """Medians over the rounds; each round's ratio is of two runs back to back, so a change in
    the machine's background load moves both sides of it."""

    def med(side: int, key: str) -> float:
        return statistics.median(float(pair[side][key]) for pair in pairs)

    def side(i: int) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for pair in pairs:
            for code, n in pair[i]["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
        cpu = {
            group: statistics.median(float(pair[i]["cpu_ms_per_request"][group]) for pair in pairs)
            for group in pairs[0][i]["cpu_ms_per_request"]
        }
        return {
            "rps": med(i, "rps"),
            "cpu_ms_per_request": cpu,
            "p50_ms": med(i, "p50_ms"),
            "p99_ms": med(i, "p99_ms"),
            "requests": sum(int(pair[i]["requests"]) for pair in pairs),
            "statuses": statuses,
            "rounds": [pair[i] for pair in pairs],
        }

    svc, bare = side(0), side(1)
    svc["stored"] = sum(int(pair[0]["stored"]) for pair in pairs)
    return {
        "workers": workers,
        "connections": connections,
        "seconds": seconds,
        "rounds": len(pairs),
        "create_and_quote": svc,
        "bare_insert": bare,
        "throughput_ratio": statistics.median(a["rps"] / b["rps"] for a, b in pairs),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10, help="per run; each round runs both")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3, help="create-and-quote then bare, N times")
    ap.add_argument("--profile", type=Path, help="py-spy the service (first round) into here")
    ap.add_argument(
        "--paced",
        type=float,
        nargs="*",
        default=[50.0, 100.0],
        help="then latency at these offered loads (req/s in all, over --connections)",
    )
    ap.add_argument(
        "--dealers", type=int, default=0, help="simulated dealers registered (0: model quote only)"
    )
    ap.add_argument("--dealer-latency-ms", type=float, default=0.0)
    args = ap.parse_args()
    results = [
        run(
            w,
            args.seconds,
            args.connections,
            args.rounds,
            args.profile,
            args.paced,
            args.dealers,
            args.dealer_latency_ms,
        )
        for w in args.workers
    ]
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = f"load-dealers{args.dealers}.json" if args.dealers else "load.json"
    (out / name).write_text(json.dumps(results, indent=2))
    for r in results:
        s, b = r["create_and_quote"], r["bare_insert"]
        created = s["statuses"].get("201", 0)
        lost = s["requests"] - created
        print(
            f"workers={r['workers']} ({r['rounds']} rounds): "
            f"{created} of {s['requests']} answered 201, "
            f"{s['stored']} RFQs stored during the run (>= the 201s: requests in flight when wrk"
            " stopped are stored too)"
            + ("" if lost == 0 and s["stored"] >= created else "  <-- NOT ALL 201 / NOT ALL STORED")
        )
        print(
            f"workers={r['workers']} conns={r['connections']}, medians of the rounds: "
            f"create-and-quote {s['rps']:.0f} req/s "
            f"p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms statuses {s['statuses']} | bare "
            f"{b['rps']:.0f} req/s p50 {b['p50_ms']:.1f} ms p99 {b['p99_ms']:.1f} ms | "
            f"ratio {r['throughput_ratio']:.2f} (rounds: "
            + ", ".join(
                f"{a['rps']:.0f}/{c['rps']:.0f}"
                for a, c in zip(s["rounds"], b["rounds"], strict=True)
            )
            + ")"
        )
        for name, side in (("create-and-quote", s), ("bare", b)):
            cpu = side["cpu_ms_per_request"]
            print(
                f"  CPU ms per request, {name}: "
                + ", ".join(f"{g} {v:.2f}" for g, v in cpu.items())
                + f" (total {sum(cpu.values()):.2f})"
            )
        if r["dealers"]:
            rows = r["stored_during_saturated_runs"]
            print(
                f"  {r['dealers']} dealers answering after {r['dealer_latency_ms']:g} ms; stored "
                f"during the saturated runs: {rows['rfq']} RFQs, {rows['client_quote']} client "
                f"quotes, {rows['dealer_request']} dealer requests, {rows['dealer_quote']} "
                f"dealer quotes ({rows['dealer_quote'] / max(rows['rfq'], 1):.2f} per RFQ)"
            )
        if r["rfqs_per_write"] is not None:
            print(f"  RFQs per group-commit statement (one worker): {r['rfqs_per_write']:.1f}")
        for row in r["paced"]:
            print(
                f"  offered ~{row['offered']:.0f} req/s: "
                + " | ".join(
                    f"{name} {x['rps']:.0f} req/s p50 {x['p50_ms']:.1f} ms p99 {x['p99_ms']:.1f} ms"
                    f" statuses {x['statuses']}"
                    for name, x in (
                        ("create-and-quote", row["create_and_quote"]),
                        ("bare", row["bare_insert"]),
                    )
                )
            )


if __name__ == "__main__":
    main()
