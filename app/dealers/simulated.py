"""Simulated dealers answering over real HTTP: one process, one port, a path per dealer.

Each dealer prices the package on its own view of the simulated market (Black-76 on the
simulated surface, plus its own edge and width in vol points of gross vega) and behaves as
configured: answers in the response body, answers later by calling the desk back (signed, with
its dealer key), declines, never answers, answers 500, answers garbage, or answers too late.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Role
from app.auth.service import create_key
from app.dealers.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signed_headers,
    verify,
)
from app.domain.instruments import Instrument
from app.marketdata.simulated import SimulatedFeed
from app.models import Dealer
from app.quant.pricing import black76

Mode = Literal["body", "callback", "decline", "silent", "error", "garbage", "late"]
MODES: tuple[Mode, ...] = ("body", "callback", "decline", "silent", "error", "garbage", "late")


@dataclass
class SimDealer:
    name: str
    secret: str
    mode: Mode = "body"
    p_answer: float = 0.9
    latency_ms: float = 20.0
    edge_vol_points: float = 0.2  # how far from its fair price it centres (+: worse for the desk)
    half_width_vol_points: float = 0.4
    max_size: float = 1_000.0
    api_key: str | None = None  # set by register_dealers
    outcomes: list[dict[str, Any]] | None = None


def price_request(
    feed: SimulatedFeed, message: dict[str, Any], dealer: SimDealer, rng: random.Random
) -> dict[str, Any]:
    """The dealer's two-way price (coin per unit) for the package in ``message``."""
    snap = feed.snapshot_sync(message["underlying"])
    legs = [
        (Instrument.parse(leg["instrument"]), leg["ratio"], 1 if leg["direction"] == "buy" else -1)
        for leg in message["legs"]
    ]
    expiries: list[date] = [i.expiry for i, _, _ in legs]
    strikes = np.array([float(i.strike) for i, _, _ in legs])
    fwd = snap.forwards(expiries)
    t = np.array([snap.t_years(e) for e in expiries])
    sig = snap.vols(expiries, strikes)
    is_call = np.array([i.option_type.value == "call" for i, _, _ in legs])
    g = black76(fwd, strikes, t, sig, is_call)
    w = np.array([r * s for _, r, s in legs], dtype=float)
    fair_usd = float(w @ g.price)
    hedge = message.get("hedge_reference")
    if hedge is not None:
        # "vs H": the package is traded delta-neutral, its delta exchanged at H (QUANT.md)
        fair_usd += float(w @ (g.delta * (float(hedge) - fwd)))
    gross_vega_pt = float(np.abs(w) @ np.abs(g.vega)) * 0.01
    noise = rng.gauss(0.0, 0.1)
    mid = fair_usd + (dealer.edge_vol_points + noise) * gross_vega_pt * (
        1 if message["side"] != "sell" else -1
    )
    half = max(dealer.half_width_vol_points * gross_vega_pt, 1.0)
    spot = snap.spot
    size = min(float(message["quantity"]), dealer.max_size)
    return {
        "bid": round((mid - half) / spot, 4),
        "ask": round((mid + half) / spot, 4),
        "size": size,
        "firm": True,
    }


def create_dealers_app(dealers: list[SimDealer], desk_url: str, *, seed: int = 11) -> FastAPI:
    """The HTTP app: ``POST /dealers/{name}`` receives quote requests and outcomes."""
    by_name = {d.name: d for d in dealers}
    feed = SimulatedFeed(seed=seed)
    rng = random.Random(seed)
    app = FastAPI(title="rfqdesk simulated dealers")
    background: set[asyncio.Task[None]] = set()

    async def call_back(dealer: SimDealer, message: dict[str, Any], delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        body = json.dumps(price_request(feed, message, dealer, rng)).encode()
        target = f"POST {urlsplit(message['quote_url']).path}"
        headers = signed_headers(dealer.secret, body, target=target) | {
            "Authorization": f"Bearer {dealer.api_key}"
        }
        async with httpx.AsyncClient(base_url=desk_url, timeout=5) as client:
            await client.post(message["quote_url"], content=body, headers=headers)

    @app.post("/dealers/{name}")
    async def receive(name: str, request: Request) -> Response:
        dealer = by_name.get(name)
        if dealer is None:
            return JSONResponse({"error": "unknown dealer"}, status_code=404)
        body = await request.body()
        try:
            verify(
                dealer.secret,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                body,
                skew_s=30,
            )
        except SignatureError as exc:
            return JSONResponse({"error": f"bad signature: {exc}"}, status_code=401)
        message = json.loads(body)
        if message.get("type") == "outcome":
            dealer.outcomes = [*(dealer.outcomes or []), message]
            return Response(status_code=204)
        deadline = datetime.fromisoformat(message["deadline"])
        left_s = (deadline - datetime.now(UTC)).total_seconds()
        if dealer.mode == "error":
            return PlainTextResponse("internal error", status_code=500)
        if dealer.mode == "garbage":
            return PlainTextResponse("<html>quote: maybe</html>", status_code=200)
        if dealer.mode == "silent":
            await asyncio.sleep(left_s + 1.0)
            return Response(status_code=204)
        if dealer.mode == "decline" or rng.random() > dealer.p_answer:
            return JSONResponse({"decline": True})
        if dealer.mode in ("callback", "late"):
            delay = left_s + 0.2 if dealer.mode == "late" else dealer.latency_ms / 1000
            task = asyncio.create_task(call_back(dealer, message, delay))
            background.add(task)
            task.add_done_callback(background.discard)
            return Response(status_code=202)
        await asyncio.sleep(dealer.latency_ms / 1000)
        return JSONResponse({"quote": price_request(feed, message, dealer, rng)})

    return app


def make_dealers(count: int, seed: int = 11, modes: list[Mode] | None = None) -> list[SimDealer]:
    """``count`` dealers with seeded hidden behaviour (answer rate, latency, edge, width)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        mode = modes[i] if modes and i < len(modes) else ("callback" if i % 4 == 3 else "body")
        out.append(
            SimDealer(
                name=f"sim-dealer-{i + 1}",
                secret=f"sim-secret-{seed}-{i + 1}-" + "x" * 16,
                mode=mode,
                p_answer=round(rng.uniform(0.7, 0.98), 3),
                latency_ms=round(rng.uniform(5, 120), 1),
                edge_vol_points=round(rng.gauss(0.15, 0.15), 3),
                half_width_vol_points=round(rng.uniform(0.2, 0.6), 3),
                max_size=float(rng.choice([100, 250, 500, 1000, math.inf])),
            )
        )
    return out


async def register_dealers(
    maker: async_sessionmaker[AsyncSession],
    dealers: list[SimDealer],
    base_url: str,
    underlyings: tuple[str, ...] = ("BTC", "ETH"),
) -> None:
    """Register (or update) each dealer at ``base_url/dealers/<name>`` and give it a dealer key."""
    async with maker() as session, session.begin():
        for d in dealers:
            row = await session.scalar(select(Dealer).where(Dealer.name == d.name))
            if row is None:
                row = Dealer(
                    name=d.name, endpoint_url="", underlyings=list(underlyings), webhook_secret=""
                )
                session.add(row)
            row.endpoint_url = f"{base_url.rstrip('/')}/dealers/{d.name}"
            row.webhook_secret, row.enabled, row.underlyings = d.secret, True, list(underlyings)
            await session.flush()
            _, d.api_key = await create_key(
                session, role=Role.DEALER, name=f"{d.name}-key", dealer_id=row.id
            )
