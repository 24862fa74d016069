"""Simulated dealers that all answer in the response body after BENCH_LATENCY_MS.

BENCH_DEALERS of them (default 8), seeded, so that another process can rebuild the same names
and secrets with :func:`dealers` to register them with the desk.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fastapi import FastAPI

from app.dealers.simulated import SimDealer, create_dealers_app, make_dealers


def dealers(count: int | None = None, latency_ms: float | None = None) -> list[SimDealer]:
    """The dealers (defaults from BENCH_DEALERS and BENCH_LATENCY_MS): each answers every
    request, in full size."""
    n = int(os.environ.get("BENCH_DEALERS", "8")) if count is None else count
    wait = float(os.environ.get("BENCH_LATENCY_MS", "50")) if latency_ms is None else latency_ms
    out = make_dealers(n, seed=3, modes=["body"] * n)
    for d in out:
        d.p_answer, d.latency_ms, d.max_size = 1.0, wait, float("inf")
    return out


def app() -> FastAPI:
    return create_dealers_app(dealers(), "http://127.0.0.1:1")


def start(count: int, latency_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    """Serve them in a process of their own; returns it and their port once they answer."""
    from bench.common import wait_up
    from tests.servers import free_port

    root = Path(__file__).resolve().parents[1]
    port = free_port()
    proc = subprocess.Popen(
        [
            root / ".venv" / "bin" / "uvicorn",
            "bench.dealers_server:app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=os.environ | {"BENCH_DEALERS": str(count), "BENCH_LATENCY_MS": str(latency_ms)},
        cwd=root,
    )
    wait_up(f"http://127.0.0.1:{port}/docs", proc)
    return proc, port
