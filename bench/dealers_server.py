"""Eight simulated dealers that all answer in the response body after BENCH_LATENCY_MS."""

from __future__ import annotations

import os

from fastapi import FastAPI

from app.dealers.simulated import create_dealers_app, make_dealers


def app() -> FastAPI:
    dealers = make_dealers(8, seed=3, modes=["body"] * 8)
    for d in dealers:
        d.p_answer, d.latency_ms = 1.0, float(os.environ.get("BENCH_LATENCY_MS", "50"))
    return create_dealers_app(dealers, "http://127.0.0.1:1")
