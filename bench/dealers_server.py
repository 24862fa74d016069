"""Simulated dealers that all answer in the response body after BENCH_LATENCY_MS.

BENCH_DEALERS of them (default 8), seeded, so that another process can rebuild the same names
and secrets with :func:`dealers` to register them with the desk.
"""

from __future__ import annotations

import os

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
