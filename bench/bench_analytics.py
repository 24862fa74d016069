"""Analytics at scale: a year of 1,000,000 simulated RFQs in PostgreSQL, every query timed.

    .venv/bin/python bench/bench_analytics.py [--rfqs 1000000] [--db rfqdesk_bench] [--runs 5]
        [--keep] [--reuse] [--only hit_ratio,markouts] [--verify]

1. Builds ``--db`` with the Alembic migrations and fills it with ``--rfqs`` RFQs over 365 days
   (2025) and everything the service logs around them, in the service's own formats: legs,
   one market snapshot per client quote (``MarketSnapshot.to_dict`` of the simulated feed, 11
   listed expiries) plus one per underlying every minute (for markouts), the client quote with
   its greeks, 4–8 dealer requests per RFQ with their quotes (some replaced or refused), and
   the client, dealer and desk fills of traded RFQs. ``rfq_event`` is not filled: no analytics
   query reads it. Rows are written with COPY (CSV made by pyarrow) from two processes, one per
   half-year per underlying, with secondary indexes and foreign keys dropped during the load and
   rebuilt after it; then VACUUM ANALYZE.
2. Runs the analytics job as the service would (``app.analytics.jobs``): stores every final
   fill's markouts, then rolls every report up by day to the last complete day, each timed on
   its own (on ``--reuse`` it only catches up; ``--rebuild-rollups`` starts the rollups over),
   then VACUUM ANALYZE. ``--verify`` then checks, for every report with rollups and for the
   markouts, that the answer from the rollups and stored markouts equals the one from the raw
   rows on each window.
3. Runs every analytics query through the service (``AnalyticsService``, what the endpoints
   call) on a 30-day window and on the whole year, ``--runs`` times each, and reports the median
   and the minimum (the box is shared) with the load average. The SQL each query sent is
   re-run under ``EXPLAIN (ANALYZE, BUFFERS)`` and the plans are written to
   ``bench/analytics_plans/<query>__<window>.txt``; the figures go to
   ``bench/out/analytics.json``.
4. Drops the database unless ``--keep``; ``--reuse`` skips step 1 when ``--db`` exists (and
   brings its schema to the latest migration).

Target: each query under 1 s, on the 30-day window and on the year.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.domain.expiries import format_expiry_code
from app.marketdata.simulated import DEFAULT_MODELS, DEFAULT_SPOTS, listed_expiries
from app.marketdata.snapshot import YEAR_SECONDS
from app.quant.pricing import black76

PG_HOST = os.environ.get("RFQDESK_BENCH_PG_HOST", "127.0.0.1")
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:5432/postgres"
PLANS = ROOT / "bench" / "analytics_plans"
OUT = ROOT / "bench" / "out" / "analytics.json"
#: appended to the plans' file names (``--hold-back-days``)
PLAN_SUFFIX = [""]

START = datetime(2025, 1, 1, tzinfo=UTC)
EPOCH_ORD = date(1970, 1, 1).toordinal()
BASIS = 0.05  # the simulated feed's default forward basis
DAYS = 365
SNAPSHOT_EVERY_S = 60.0
DEADLINE_S = 1.0
CHUNK_RFQS = 20_000
UNDERLYING_SHARE = {"BTC": 0.65, "ETH": 0.35}
STRIKE_STEP = {"BTC": 1000.0, "ETH": 50.0}
HEDGE_STEP = {"BTC": 10.0, "ETH": 1.0}
QTY_MEDIAN = {"BTC": 60.0, "ETH": 600.0}
STRUCTURES = {
    "call": 0.14, "put": 0.12, "call_spread": 0.12, "put_spread": 0.10, "straddle": 0.08,
    "strangle": 0.07, "risk_reversal": 0.10, "call_butterfly": 0.04, "put_butterfly": 0.03,
    "call_condor": 0.02, "call_calendar": 0.04, "put_calendar": 0.02, "call_ratio": 0.04,
    "put_ratio": 0.03, "custom": 0.05,
}  # fmt: skip
N_CLIENTS = 80
# name, underlyings, P(answer) at median size, latency median (ms), half-spread (vol points)
DEALERS = [
    ("alder", ("BTC", "ETH"), 0.85, 180, 0.55), ("birch", ("BTC", "ETH"), 0.75, 260, 0.70),
    ("cedar", ("BTC", "ETH"), 0.65, 420, 0.60), ("dogwood", ("BTC",), 0.55, 350, 0.90),
    ("elm", ("BTC", "ETH"), 0.80, 150, 0.80), ("fir", ("BTC", "ETH"), 0.45, 600, 0.50),
    ("ginkgo", ("BTC",), 0.70, 300, 1.10), ("hazel", ("BTC", "ETH"), 0.60, 500, 0.75),
    ("ilex", ("BTC", "ETH"), 0.50, 250, 1.30), ("juniper", ("BTC",), 0.90, 120, 1.00),
    ("kapok", ("BTC", "ETH"), 0.35, 700, 0.65), ("larch", ("BTC", "ETH"), 0.72, 220, 0.85),
]  # fmt: skip


# ------------------------------------------------------------------------------ generation


def _ids(ts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Time-ordered UUIDs (the service's UUIDv7 layout) as 32-char hex, vectorised."""
    n = len(ts)
    ms = (np.asarray(ts) * 1000.0).astype(np.uint64)
    rand = rng.integers(0, 2**62, size=(n, 2), dtype=np.int64).astype(np.uint64)
    words = np.empty((n, 2), dtype=">u8")
    words[:, 0] = (ms << np.uint64(16)) | np.uint64(0x7000) | (rand[:, 0] & np.uint64(0xFFF))
    words[:, 1] = (np.uint64(0b10) << np.uint64(62)) | rand[:, 1]
    return np.frombuffer(words.tobytes().hex().encode(), dtype="S32")


def _ts(seconds: np.ndarray) -> pa.Array:
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _ts_opt(seconds: np.ndarray, present: np.ndarray) -> pa.Array:
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, mask=~np.asarray(present, dtype=bool)).cast(
        pa.timestamp("us", tz="UTC")
    )


def _opt(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    """A float column with nulls where ``mask`` is False."""
    return pa.array(np.asarray(values, dtype=np.float64), mask=~np.asarray(mask, dtype=bool))


def _str(values: np.ndarray | Sequence[Any]) -> pa.Array:
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return pa.array(arr, type=pa.binary(arr.dtype.itemsize)).cast(pa.string())
    return pa.array(list(values), type=pa.string())


@dataclass
class Market:
    """Snapshots of one underlying at increasing times, as arrays (E = most listed expiries):
    spot ``(n,)``; per listed expiry ``(n, E)``: expiry day number (-1 when absent), years to
    expiry, forward and raw SVI parameters (NaN when absent)."""

    ts: np.ndarray
    spot: np.ndarray
    expiry: np.ndarray
    t: np.ndarray
    fwd: np.ndarray
    svi: np.ndarray  # (n, E, 5): a, b, rho, m, sigma


def simulate_market(u: str, ts: np.ndarray, rng: np.random.Generator) -> Market:
    """The simulated feed's dynamics and SSVI smiles, vectorised over snapshot times.

    Same model as :class:`app.marketdata.simulated.SimulatedFeed` (its ``DEFAULT_MODELS``,
    basis 5 %, the venue's listing rules): jump-diffusion spot, mean-reverting log vol level
    driven by the return surprise, SSVI smile per listed expiry. The feed advances one
    snapshot at a time in Python (~60 µs); a year of snapshots needs arrays.
    """
    model = DEFAULT_MODELS[u]
    n = len(ts)
    dt = np.diff(ts, prepend=ts[0]) / YEAR_SECONDS
    z = rng.standard_normal((n, 3))
    jumps = rng.poisson(model.jump_intensity * dt)
    jump = jumps * model.jump_mean + np.sqrt(jumps) * model.jump_vol * z[:, 2]
    drift = (
        model.drift - 0.5 * model.spot_vol**2 - model.jump_intensity * model.jump_compensator
    ) * dt
    log_ret = drift + model.spot_vol * np.sqrt(dt) * z[:, 0] + jump
    spot = DEFAULT_SPOTS[u] * np.exp(np.cumsum(log_ret))
    surprise = (log_ret - np.array([model.log_return_mean(float(d)) for d in dt])).tolist()
    kappa, low, high = model.level_reversion, *model.level_bounds
    decay = np.exp(-kappa * dt).tolist()
    noise = model.level_vol * np.sqrt(-np.expm1(-2.0 * kappa * dt) / (2.0 * kappa)) * z[:, 1]
    noise_l = noise.tolist()
    level = [0.0] * n
    x = 0.0
    beta = model.spot_vol_beta
    for i in range(n):
        x = min(max(x * decay[i] + beta * surprise[i] + noise_l[i], low), high)
        level[i] = x
    level2 = np.exp(2.0 * np.array(level))
    # listings: the venue's expiries live on each date (the roll is at 08:00 UTC)
    day = np.floor((ts - 8 * 3600.0) / 86400.0).astype(np.int64) + 1
    keys, key_of = np.unique(day, return_inverse=True)
    listings = [
        listed_expiries(datetime.combine(date.fromordinal(EPOCH_ORD + int(k)), dtime(0), UTC))
        for k in keys
    ]
    width = max(len(x) for x in listings)
    table = np.full((len(keys), width), -1, dtype=np.int64)
    for r, lst in enumerate(listings):
        table[r, : len(lst)] = [e.toordinal() - EPOCH_ORD for e in lst]
    expiry = table[key_of]
    present = expiry >= 0
    t = np.where(present, (expiry * 86400.0 + 8 * 3600.0 - ts[:, None]) / YEAR_SECONDS, np.nan)
    var_long = model.atm_vol_long**2
    var_gap = (model.atm_vol_short**2 - var_long) * model.term_years
    theta = level2[:, None] * (var_long * t - var_gap * np.expm1(-t / model.term_years))
    gamma, eta, rho = model.smile_gamma, model.smile_eta, model.skew_rho
    phi = eta / (theta**gamma * (1.0 + theta) ** (1.0 - gamma))
    svi = np.stack(
        [
            0.5 * (1.0 - rho * rho) * theta,
            0.5 * theta * phi,
            np.where(present, rho, np.nan),
            -rho / phi,
            math.sqrt(1.0 - rho * rho) / phi,
        ],
        axis=-1,
    )
    fwd = spot[:, None] * np.exp(BASIS * t)
    return Market(ts, spot, expiry, t, fwd, svi)


def snapshot_json(u: str, m: Market, rows: np.ndarray) -> pa.Array:
    """``json.dumps(MarketSnapshot.to_dict())`` of the snapshots ``rows``, built by Arrow."""

    def num(x: np.ndarray) -> pa.Array:
        return pc.cast(pa.array(x, from_pandas=True), pa.string())

    join = pc.binary_join_element_wise
    ts_us = np.round(m.ts[rows] * 1e6).astype("datetime64[us]")
    as_of = np.char.add(np.datetime_as_string(ts_us, unit="us"), "+00:00")
    slices = []
    for j in range(m.expiry.shape[1]):
        e = m.expiry[rows, j]
        iso = np.datetime_as_string(np.maximum(e, 0).astype("datetime64[D]"), unit="D")
        exp = pa.array(iso, mask=e < 0)
        v = m.svi[rows, j]
        slices.append(
            join(
                '{"expiry": "', exp, '", "t_years": ', num(m.t[rows, j]),
                ', "forward": ', num(m.fwd[rows, j]), ', "svi": {"a": ', num(v[:, 0]),
                ', "b": ', num(v[:, 1]), ', "rho": ', num(v[:, 2]), ', "m": ', num(v[:, 3]),
                ', "sigma": ', num(v[:, 4]), "}}", "",
            )
        )  # fmt: skip
    body = join(*slices, ", ", null_handling="skip")
    return join(
        f'{{"version": 1, "underlying": "{u}", "as_of": "', pa.array(as_of),
        '", "spot": ', num(m.spot[rows]), ', "source": "simulated", "slices": [', body, "]}",
        "",
    )  # fmt: skip


@dataclass(frozen=True)
class Part:
    index: int
    underlying: str
    start_s: float
    end_s: float
    rfqs: int
    seed: int
    dsn: str
    dealer_ids: tuple[str, ...]


def _rfq_times(rng: np.random.Generator, start: float, end: float, n: int) -> np.ndarray:
    """Arrival times: uniform over days, denser in European and US hours."""
    days = np.floor(rng.random(n) * ((end - start) / 86400.0))
    hour = np.where(rng.random(n) < 0.7, rng.normal(13.5, 3.5, n) % 24.0, rng.random(n) * 24.0)
    t = start + days * 86400.0 + hour * 3600.0
    return np.sort(np.clip(t, start, end - 1e-3))


def _legs(
    structure: str, t: list[float], fwd: list[float], rng: np.random.Generator, step: float
) -> list[tuple[int, float, bool, int, int]]:
    """Buyer's legs of a structure on listed expiries: (slice, strike, is_call, ratio, sign)."""
    live = [i for i, x in enumerate(t) if x > 2.0 / 365.0]
    j = live[int(rng.integers(len(live)))]
    f = fwd[j]

    def k(x: float) -> float:
        return max(step, round(x / step) * step)

    z = float(rng.normal())
    width = k(f * (0.04 + 0.08 * float(rng.random())))
    atm = k(f)
    if structure in ("call", "put"):
        return [(j, k(f * math.exp(0.12 * z)), structure == "call", 1, 1)]
    if structure == "call_spread":
        k1 = k(f * math.exp(0.08 * z))
        return [(j, k1, True, 1, 1), (j, k1 + width, True, 1, -1)]
    if structure == "put_spread":
        k2 = k(f * math.exp(0.08 * z))
        k1 = max(step, k2 - width)
        k2 = k1 + width
        return [(j, k2, False, 1, 1), (j, k1, False, 1, -1)]
    if structure == "straddle":
        return [(j, atm, True, 1, 1), (j, atm, False, 1, 1)]
    if structure in ("strangle", "risk_reversal"):
        lo = k(f * (0.95 - 0.1 * float(rng.random())))
        hi = k(f * (1.05 + 0.1 * float(rng.random())))
        if structure == "strangle":
            return [(j, lo, False, 1, 1), (j, hi, True, 1, 1)]
        return [(j, hi, True, 1, 1), (j, lo, False, 1, -1)]
    if structure in ("call_butterfly", "put_butterfly"):
        call = structure == "call_butterfly"
        k2 = max(atm, width + step)
        return [(j, k2 - width, call, 1, 1), (j, k2, call, 2, -1), (j, k2 + width, call, 1, 1)]
    if structure == "call_condor":
        k1 = max(step, atm - width)
        return [
            (j, k1, True, 1, 1),
            (j, k1 + width, True, 1, -1),
            (j, k1 + 2 * width, True, 1, -1),
            (j, k1 + 3 * width, True, 1, 1),
        ]
    if structure in ("call_calendar", "put_calendar"):
        far = [i for i in live if t[i] > t[j]]
        if not far:
            near = [i for i in live if t[i] < t[j]]
            j, j2 = near[-1], j
        else:
            j2 = far[int(rng.integers(len(far)))]
        call = structure == "call_calendar"
        return [(j, atm, call, 1, -1), (j2, atm, call, 1, 1)]
    if structure == "call_ratio":
        return [(j, atm, True, 1, 1), (j, atm + width, True, 2, -1)]
    if structure == "put_ratio":
        k1 = max(step, atm - width)
        return [(j, k1 + width, False, 1, 1), (j, k1, False, 2, -1)]
    # custom: a call against a put on another expiry
    j2 = live[int(rng.integers(len(live)))]
    return [(j, k(f * 1.1), True, 1, 1), (j2, k(fwd[j2] * 0.9), False, 1, -1)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


class _Tables:
    """Column lists of one chunk, per table."""

    def __init__(self) -> None:
        self.cols: dict[str, dict[str, list[Any]]] = {}

    def add(self, table: str, **cols: Any) -> None:
        t = self.cols.setdefault(table, {})
        for name, values in cols.items():
            t.setdefault(name, []).append(values)


async def _copy(conn: Any, table: str, columns: dict[str, pa.Array]) -> int:
    tbl = pa.table(columns)
    if tbl.num_rows == 0:
        return 0
    buf = io.BytesIO()
    pacsv.write_csv(tbl, buf, pacsv.WriteOptions(include_header=True, batch_size=8192))
    buf.seek(0)
    await conn.copy_to_table(table, source=buf, columns=list(columns), format="csv", header=True)
    return int(tbl.num_rows)


def generate_part(part: Part) -> dict[str, int]:
    return asyncio.run(_generate_part(part))


async def _generate_part(part: Part) -> dict[str, int]:
    import asyncpg

    rng = np.random.default_rng(part.seed)
    u = part.underlying
    step, hstep = STRIKE_STEP[u], HEDGE_STEP[u]
    dealers = [(i, d) for i, d in enumerate(DEALERS) if u in d[1]]
    d_idx = np.array([i for i, _ in dealers])
    d_base = np.array([d[2] for _, d in dealers])
    d_lat = np.array([d[3] for _, d in dealers], dtype=np.float64)
    d_hs = np.array([d[4] for _, d in dealers])
    d_pop = np.log(np.linspace(1.0, 0.5, len(dealers)))
    dealer_hex = np.array([part.dealer_ids[i].encode() for i in d_idx], dtype="S32")
    clients = [f"client-{i:02d}" for i in range(1, N_CLIENTS + 1)]
    client_w = 1.0 / np.arange(1, N_CLIENTS + 1) ** 0.9
    client_w /= client_w.sum()
    client_bias = np.random.default_rng(99).normal(-0.2, 0.45, N_CLIENTS)
    client_slope = np.random.default_rng(98).uniform(0.7, 1.4, N_CLIENTS)
    s_names = list(STRUCTURES)
    s_w = np.array(list(STRUCTURES.values()))
    s_w /= s_w.sum()

    times = _rfq_times(rng, part.start_s, part.end_s, part.rfqs)
    grid = np.arange(math.ceil(part.start_s / SNAPSHOT_EVERY_S) * SNAPSHOT_EVERY_S, part.end_s,
                     SNAPSHOT_EVERY_S)  # fmt: skip
    # the market: one snapshot per RFQ (its client quote's) and one a minute (for markouts)
    snap_t = np.concatenate([times, grid])
    order = np.argsort(snap_t, kind="stable")
    snap_t = snap_t[order]
    rfq_snap = np.empty(part.rfqs, dtype=np.int64)
    rfq_snap[order[order < part.rfqs]] = np.nonzero(order < part.rfqs)[0]
    market = simulate_market(u, snap_t, rng)
    snap_ids = _ids(snap_t, rng)
    counts: dict[str, int] = {}
    conn = await asyncpg.connect(part.dsn)
    await conn.execute("SET synchronous_commit = off")
    try:
        for c0 in range(0, len(snap_t), CHUNK_RFQS * 2):
            rows = np.arange(c0, min(c0 + CHUNK_RFQS * 2, len(snap_t)))
            counts["market_snapshot"] = counts.get("market_snapshot", 0) + await _copy(
                conn,
                "market_snapshot",
                {
                    "id": _str(snap_ids[rows]),
                    "underlying": pa.array([u] * len(rows)),
                    "taken_at": _ts(snap_t[rows]),
                    "source": pa.array(["simulated"] * len(rows)),
                    "spot": pa.array(market.spot[rows]),
                    "data": snapshot_json(u, market, rows),
                },
            )
        for c0 in range(0, part.rfqs, CHUNK_RFQS):
            t_rfq = times[c0 : c0 + CHUNK_RFQS]
            n = len(t_rfq)
            pos = rfq_snap[c0 : c0 + n]
            # ---- RFQs and legs
            rfq_ids = _ids(t_rfq, rng)
            spot = market.spot[pos]
            struct = rng.choice(len(s_names), size=n, p=s_w)
            side = rng.choice(np.array(["buy", "sell", "two_way"]), size=n, p=[0.4, 0.3, 0.3])
            qty = np.maximum(1.0, np.round(QTY_MEDIAN[u] * rng.lognormal(0.0, 0.8, n) / 5) * 5)
            client = rng.choice(N_CLIENTS, size=n, p=client_w)
            channel = np.where(rng.random(n) < 0.7, "api", "chat")
            hedged = rng.random(n) < 0.55
            hedge = np.where(hedged, np.round(spot / hstep) * hstep, np.nan)
            leg_rfq: list[int] = []
            leg_pos: list[tuple[int, int]] = []
            leg_k: list[float] = []
            leg_call: list[bool] = []
            leg_ratio: list[int] = []
            leg_sign: list[int] = []
            leg_index: list[int] = []
            t_rows = market.t[pos].tolist()
            f_rows = market.fwd[pos].tolist()
            for i in range(n):
                p = int(pos[i])
                live = int((market.expiry[p] >= 0).sum())
                for li, (j, strike, is_call, ratio, sign) in enumerate(
                    _legs(s_names[struct[i]], t_rows[i][:live], f_rows[i][:live], rng, step)
                ):
                    leg_rfq.append(i)
                    leg_index.append(li)
                    leg_pos.append((p, j))
                    leg_k.append(strike)
                    leg_call.append(is_call)
                    leg_ratio.append(ratio)
                    leg_sign.append(sign)
            lp = np.array(leg_pos)
            sl = np.column_stack(
                [market.t[lp[:, 0], lp[:, 1]], market.fwd[lp[:, 0], lp[:, 1]],
                 market.svi[lp[:, 0], lp[:, 1]]]
            )  # fmt: skip
            exp_days = market.expiry[lp[:, 0], lp[:, 1]]
            leg_exp = [date.fromordinal(EPOCH_ORD + int(d)) for d in exp_days]
            lr = np.array(leg_rfq)
            t_l, f_l = sl[:, 0], sl[:, 1]
            k_l = np.array(leg_k)
            km = np.log(k_l / f_l) - sl[:, 5]
            w = sl[:, 2] + sl[:, 3] * (sl[:, 4] * km + np.sqrt(km * km + sl[:, 6] ** 2))
            vol = np.sqrt(np.maximum(w, 1e-12) / t_l)
            is_call = np.array(leg_call)
            g = black76(f_l, k_l, t_l, vol, is_call)
            nsz = np.array(leg_sign) * np.array(leg_ratio) * qty[lr]
            starts = np.concatenate([[0], np.nonzero(np.diff(lr))[0] + 1])
            adj = np.where(hedged[lr], g.delta * (np.nan_to_num(hedge[lr]) - f_l), 0.0)
            theo_total = np.add.reduceat(nsz * (g.price + adj), starts)
            opt_delta = np.add.reduceat(nsz * g.delta, starts)
            vega_pt = np.add.reduceat(nsz * g.vega * 0.01, starts)
            gross_vega = np.add.reduceat(np.abs(nsz * g.vega * 0.01), starts)
            theo = theo_total / qty
            vega_unit = gross_vega / qty
            n_legs = np.diff(np.append(starts, len(lr)))
            leg_ids = _ids(t_rfq[lr], rng)
            instruments = [
                f"{u}-{format_expiry_code(e)}-{int(k)}-{'C' if c else 'P'}"
                for e, k, c in zip(leg_exp, leg_k, leg_call, strict=True)
            ]
            counts["rfq_leg"] = counts.get("rfq_leg", 0) + await _copy(
                conn,
                "rfq_leg",
                {
                    "id": _str(leg_ids),
                    "rfq_id": _str(rfq_ids[lr]),
                    "leg_index": pa.array(leg_index, type=pa.int32()),
                    "instrument": pa.array(instruments),
                    "expiry": pa.array(leg_exp, type=pa.date32()),
                    "strike": pa.array(k_l),
                    "option_type": pa.array(np.where(is_call, "call", "put")),
                    "ratio": pa.array(leg_ratio, type=pa.int32()),
                    "direction": pa.array(np.where(np.array(leg_sign) > 0, "buy", "sell")),
                },
            )
            # ---- client quotes: theo ± the desk's markup (vol points of gross vega)
            state_u = rng.random(n)
            rejected = state_u < 0.005
            quoted = ~rejected
            mk_b = 0.25 + 1.1 * rng.random(n)
            mk_a = 0.25 + 1.1 * rng.random(n)
            show_bid = quoted & (side != "buy")
            show_ask = quoted & (side != "sell")
            bid_coin = np.floor((theo - mk_b * vega_unit) / spot * 1e4) / 1e4
            ask_coin = np.ceil((theo + mk_a * vega_unit) / spot * 1e4) / 1e4
            p_bid = _sigmoid(0.1 - 1.4 * mk_b)  # the desk's hit model
            p_ask = _sigmoid(0.1 - 1.4 * mk_a)
            # the clients' true behaviour: their own level and sensitivity
            tb = _sigmoid(0.1 + client_bias[client] - 1.4 * client_slope[client] * mk_b)
            ta = _sigmoid(0.1 + client_bias[client] - 1.4 * client_slope[client] * mk_a)
            wants_buy = np.where(side == "two_way", rng.random(n) < 0.5, side == "buy")
            p_true = np.where(wants_buy, ta, tb)
            traded = quoted & (rng.random(n) < p_true)
            cancelled = quoted & ~traded & (state_u > 0.995)
            passed = quoted & ~traded & ~cancelled & (rng.random(n) < 0.7)
            partial = traded & (rng.random(n) < 0.02)
            state = np.select(
                [rejected, traded & ~partial, partial, cancelled, passed],
                ["rejected", "filled", "partially_filled", "cancelled", "passed"],
                "expired",
            )
            cq_status = np.select([traded, passed], ["accepted", "passed"], "expired")
            t_cq = t_rfq + DEADLINE_S + 0.05
            t_trade = t_cq + 1.0 + 7.0 * rng.random(n)
            accepted_side = np.where(traded, np.where(wants_buy, "buy", "sell"), None)
            qm = np.nonzero(quoted)[0]
            cq_ids = _ids(t_cq[qm], rng)
            greeks = []
            fl, tl, vl = f_l.tolist(), t_l.tolist(), vol.tolist()
            pl, dl = g.price.tolist(), g.delta.tolist()
            od, vp, gv, tt, sp = (x.tolist() for x in (opt_delta, vega_pt, gross_vega,
                                                        theo_total, spot))  # fmt: skip
            for i in qm.tolist():
                a, m = int(starts[i]), int(n_legs[i])
                legs_json = ", ".join(
                    f'{{"forward": {fl[x]!r}, "t_years": {tl[x]!r}, "vol": {vl[x]!r}, '
                    f'"price_usd": {pl[x]!r}, "delta": {dl[x]!r}}}'
                    for x in range(a, a + m)
                )
                greeks.append(
                    f'{{"delta_coins": {0.0 if hedged[i] else od[i]!r}, '
                    f'"vega_usd_per_vol_point": {vp[i]!r}, '
                    f'"hedge_delta_coins": {-od[i] if hedged[i] else 0.0!r}, '
                    f'"gross_vega_usd_per_vol_point": {gv[i]!r}, '
                    f'"theo_usd_total": {tt[i]!r}, "legs": [{legs_json}], '
                    f'"factors": {{}}, "spot": {sp[i]!r}}}'
                )
            expl = [
                f'{{"units": "USD per structure unit", "bid": {{"markup_vol_points": {b:.4f}}}, '
                f'"ask": {{"markup_vol_points": {a:.4f}}}}}'
                for b, a in zip(mk_b[qm], mk_a[qm], strict=True)
            ]
            counts["client_quote"] = counts.get("client_quote", 0) + await _copy(
                conn,
                "client_quote",
                {
                    "id": _str(cq_ids),
                    "created_at": _ts(t_cq[qm]),
                    "rfq_id": _str(rfq_ids[qm]),
                    "snapshot_id": _str(snap_ids[pos[qm]]),
                    "valid_until": _ts(t_cq[qm] + 10.0),
                    "theo_usd": pa.array(theo[qm]),
                    "theo_coin": pa.array(theo[qm] / spot[qm]),
                    "bid_coin": _opt(bid_coin[qm], show_bid[qm]),
                    "ask_coin": _opt(ask_coin[qm], show_ask[qm]),
                    "bid_usd": _opt(bid_coin[qm] * spot[qm], show_bid[qm]),
                    "ask_usd": _opt(ask_coin[qm] * spot[qm], show_ask[qm]),
                    "p_hit_bid": _opt(p_bid[qm], show_bid[qm]),
                    "p_hit_ask": _opt(p_ask[qm], show_ask[qm]),
                    "model_version": pa.array(["logistic-1"] * len(qm)),
                    "status": pa.array(cq_status[qm]),
                    "greeks": pa.array(greeks, type=pa.string()),
                    "explanation": pa.array(expl, type=pa.string()),
                },
            )
            del greeks, expl
            # ---- dealer requests: 4-8 eligible dealers per quoted RFQ (Gumbel top-k)
            nd = len(dealers)
            k_ask = np.minimum(rng.integers(4, 9, size=n), nd)
            keys = d_pop[None, :] + rng.gumbel(size=(n, nd))
            pick = np.argsort(-keys, axis=1)
            take = (np.arange(nd)[None, :] < k_ask[:, None]) & quoted[:, None]
            rq = np.nonzero(take)[0]  # request -> RFQ (row order: RFQ, then rank)
            rd = pick[take]  # request -> local dealer index
            rank = np.nonzero(take)[1] + 1
            m_req = len(rq)
            size_z = np.log(qty[rq] / QTY_MEDIAN[u])
            p_true_ans = _sigmoid(
                np.log(d_base[rd] / (1 - d_base[rd])) - 0.35 * size_z - 0.08 * (k_ask[rq] - 6)
            )
            p_answer = np.clip(_sigmoid(np.log(p_true_ans / (1 - p_true_ans))
                                        + rng.normal(0.15, 0.35, m_req)), 0.01, 0.99)  # fmt: skip
            p_win = np.clip(p_answer / k_ask[rq] * rng.uniform(0.6, 1.5, m_req), 0.0, 0.95)
            latency = d_lat[rd] * rng.lognormal(0.0, 0.6, m_req) / 1000.0
            ru = rng.random((m_req, 3))
            skipped = ru[:, 0] < 0.01
            error = ~skipped & (ru[:, 0] < 0.02)
            answered = ~skipped & ~error & (ru[:, 1] < p_true_ans) & (latency < DEADLINE_S)
            declined = ~skipped & ~error & ~answered & (ru[:, 2] < 0.3)
            t_sent = t_rfq[rq] + 0.005
            # quotes of the answering dealers: a mid around theo, a half-spread in vol points
            two_sided = (side[rq] == "two_way") | (rng.random(m_req) < 0.7)
            has_bid = answered & (two_sided | (side[rq] == "sell"))
            has_ask = answered & (two_sided | (side[rq] == "buy"))
            mid = theo[rq] + rng.normal(0.0, 0.35, m_req) * vega_unit[rq]
            hs = d_hs[rd] * rng.uniform(0.8, 1.25, m_req) * vega_unit[rq]
            q_bid = np.floor((mid - hs) / spot[rq] * 1e4) / 1e4
            q_ask = np.ceil((mid + hs) / spot[rq] * 1e4) / 1e4
            q_size = qty[rq] * rng.choice([1.0, 1.0, 0.5, 0.25], size=m_req)
            # fills of traded RFQs: dealers within the client's price, best price first
            won = np.zeros(m_req, dtype=bool)
            fill_q = np.zeros(m_req)
            req_start = np.searchsorted(rq, np.arange(n))
            req_end = np.searchsorted(rq, np.arange(n), side="right")
            tb_ = _Tables()
            for i in np.nonzero(traded)[0]:
                a, b = req_start[i], req_end[i]
                buy = bool(wants_buy[i])
                client_px = ask_coin[i] if buy else bid_coin[i]
                if buy:
                    book = [x for x in range(a, b) if has_ask[x] and q_ask[x] <= client_px]
                else:
                    book = [x for x in range(a, b) if has_bid[x] and q_bid[x] >= client_px]
                book.sort(key=lambda x: (q_ask[x] if buy else -q_bid[x], latency[x]))
                left = qty[i]
                for x in book:
                    if left <= 0:
                        break
                    got = min(left, q_size[x])
                    left -= got
                    won[x], fill_q[x] = True, got
                    px = q_ask[x] if buy else q_bid[x]
                    tb_.add("fill", rfq=i, at=t_trade[i] + 0.2, cp="dealer", dealer=rd[x],
                            req=x, side="buy" if buy else "sell", qty=got, px=px)  # fmt: skip
                filled = qty[i] if not partial[i] else qty[i] - left
                tb_.add("fill", rfq=i, at=t_trade[i] + 0.1, cp="client", dealer=-1, req=-1,
                        side="sell" if buy else "buy", qty=filled, px=client_px)  # fmt: skip
                if left > 0 and not partial[i]:
                    tb_.add("fill", rfq=i, at=t_trade[i] + 0.2, cp="desk", dealer=-1, req=-1,
                            side="buy" if buy else "sell", qty=left, px=client_px)  # fmt: skip
            outcome = np.select(
                [skipped, error, won, answered & traded[rq], answered & passed[rq],
                 answered & cancelled[rq], answered, declined],
                ["skipped", "error", "won", "lost", "lost", "lost", "quoted", "declined"],
                "no_response",
            )  # fmt: skip
            dr_ids = _ids(t_sent, rng)
            counts["dealer_request"] = counts.get("dealer_request", 0) + await _copy(
                conn,
                "dealer_request",
                {
                    "id": _str(dr_ids),
                    "rfq_id": _str(rfq_ids[rq]),
                    "dealer_id": _str(dealer_hex[rd]),
                    "created_at": _ts(t_sent),
                    "rank": pa.array(rank, type=pa.int32()),
                    "selected": pa.array(~skipped),
                    "p_answer": pa.array(p_answer),
                    "p_win": pa.array(p_win),
                    "model_version": pa.array(["fill-1"] * m_req),
                    "disclosed_side": pa.array(
                        np.where(
                            side[rq] == "two_way",
                            "two_way",
                            np.where(side[rq] == "buy", "buy", "sell"),
                        )
                    ),
                    "theo_coin": pa.array(theo[rq] / spot[rq]),
                    "sent_at": _ts_opt(t_sent, ~skipped),
                    "deadline_at": _ts_opt(t_sent + DEADLINE_S, ~skipped),
                    "first_quote_at": _ts_opt(t_sent + latency, answered),
                    "outcome": pa.array(outcome),
                    "error": pa.array(np.where(error, "HTTP 502 from the dealer's endpoint", None)),
                    "fill_quantity": _opt(fill_q, won),
                },
            )
            # ---- dealer quotes: final firm quotes, some replaced first, refusals of decliners
            firm_status = np.select(
                [won, answered & traded[rq], answered & (passed | cancelled)[rq]],
                ["won", "lost", "lost"],
                "expired",
            )
            replaced = answered & (rng.random(m_req) < 0.1)
            aq = np.nonzero(answered)[0]
            rp = np.nonzero(replaced)[0]
            dcl = np.nonzero(declined)[0]
            q_req = np.concatenate([rp, aq, dcl])
            q_t = np.concatenate(
                [t_sent[rp] + latency[rp], t_sent[aq] + latency[aq] + np.where(
                    replaced[aq], 0.15, 0.0), t_sent[dcl] + 0.5 * latency[dcl]]
            )  # fmt: skip
            worse = np.concatenate([hs[rp] * 0.3 / spot[rq][rp], np.zeros(len(aq) + len(dcl))])
            q_has_bid = np.concatenate([has_bid[rp], has_bid[aq], np.zeros(len(dcl), bool)])
            q_has_ask = np.concatenate([has_ask[rp], has_ask[aq], np.zeros(len(dcl), bool)])
            q_status = np.concatenate(
                [np.full(len(rp), "replaced"), firm_status[aq], np.full(len(dcl), "refused")]
            )
            dq_ids = _ids(q_t, rng)
            # the fills reference the final quote of their request
            final_quote_of = np.full(m_req, -1)
            final_quote_of[aq] = len(rp) + np.arange(len(aq))
            counts["dealer_quote"] = counts.get("dealer_quote", 0) + await _copy(
                conn,
                "dealer_quote",
                {
                    "id": _str(dq_ids),
                    "dealer_request_id": _str(dr_ids[q_req]),
                    "rfq_id": _str(rfq_ids[rq[q_req]]),
                    "dealer_id": _str(dealer_hex[rd[q_req]]),
                    "received_at": _ts(q_t),
                    "bid_coin": _opt(q_bid[q_req] - worse, q_has_bid),
                    "ask_coin": _opt(q_ask[q_req] + worse, q_has_ask),
                    "size": _opt(q_size[q_req], q_has_bid | q_has_ask),
                    "firm": pa.array(q_status != "refused"),
                    "status": pa.array(q_status),
                    "refusal_reason": pa.array(
                        np.where(q_status == "refused", "no appetite", None)
                    ),
                },
            )
            # ---- fills
            f = tb_.cols.get("fill", {})
            if f:
                fr = np.array(f["rfq"])
                fd = np.array(f["dealer"])
                fq = np.array(f["req"])
                fpx = np.array(f["px"], dtype=np.float64)
                f_ids = _ids(np.array(f["at"]), rng)
                counts["fill"] = counts.get("fill", 0) + await _copy(
                    conn,
                    "fill",
                    {
                        "id": _str(f_ids),
                        "rfq_id": _str(rfq_ids[fr]),
                        "filled_at": _ts(np.array(f["at"])),
                        "counterparty": pa.array(f["cp"]),
                        "dealer_id": pa.array(
                            [dealer_hex[x].decode() if x >= 0 else None for x in fd],
                            type=pa.string(),
                        ),
                        "dealer_quote_id": pa.array(
                            [dq_ids[final_quote_of[x]].decode() if x >= 0 else None for x in fq],
                            type=pa.string(),
                        ),
                        "side": pa.array(f["side"]),
                        "quantity": pa.array(np.array(f["qty"], dtype=np.float64)),
                        "price_coin": pa.array(fpx),
                        "price_usd": pa.array(fpx * spot[fr]),
                    },
                )
            # ---- the RFQs themselves
            filled_qty = np.zeros(n)
            resid = np.zeros(n)
            if f:
                cl = np.array(f["cp"]) == "client"
                np.add.at(filled_qty, fr[cl], np.array(f["qty"])[cl])
                dk = np.array(f["cp"]) == "desk"
                np.add.at(resid, fr[dk], np.array(f["qty"])[dk])
            end_t = np.where(traded, t_trade + 0.2, np.where(passed, t_trade, t_rfq + 60.0))
            counts["rfq"] = counts.get("rfq", 0) + await _copy(
                conn,
                "rfq",
                {
                    "id": _str(rfq_ids),
                    "created_at": _ts(t_rfq),
                    "updated_at": _ts(end_t),
                    "expires_at": _ts(t_rfq + 60.0),
                    "state": pa.array(state),
                    "client": pa.array([clients[c] for c in client]),
                    "channel": pa.array(channel),
                    "underlying": pa.array([u] * n),
                    "structure": pa.array([s_names[s] for s in struct]),
                    "side": pa.array(side),
                    "quantity": pa.array(qty),
                    "hedge_reference": _opt(np.nan_to_num(hedge), hedged),
                    "accepted_side": pa.array(accepted_side, type=pa.string()),
                    "filled_quantity": _opt(filled_qty, traded),
                    "residual_quantity": _opt(resid, traded),
                    "version": pa.array(np.where(traded, 5, 4), type=pa.int32()),
                },
            )
    finally:
        await conn.close()
    return counts


# -------------------------------------------------------------------------- db set-up


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _exists(db: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db))
    finally:
        await conn.close()


LOAD_TABLES = ("market_snapshot", "rfq", "rfq_leg", "client_quote", "dealer_request",
               "dealer_quote", "fill")  # fmt: skip


async def _drop_secondary(dsn: str) -> list[str]:
    """Drop the loaded tables' foreign keys and secondary indexes; return their DDL."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        fks = await conn.fetch(
            "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS d "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY($1)",
            list(LOAD_TABLES),
        )
        idx = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY($1) AND indexname NOT LIKE 'pk_%'",
            list(LOAD_TABLES),
        )
        ddl = [r["indexdef"] for r in idx] + [
            f'ALTER TABLE "{r["t"]}" ADD CONSTRAINT {r["conname"]} {r["d"]}' for r in fks
        ]
        for r in fks:
            await conn.execute(f'ALTER TABLE "{r["t"]}" DROP CONSTRAINT {r["conname"]}')
        for r in idx:
            await conn.execute(f"DROP INDEX {r['indexname']}")
        return ddl
    finally:
        await conn.close()


async def _restore(dsn: str, ddl: list[str]) -> None:
    import asyncpg

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            await conn.execute(sql)
        finally:
            await conn.close()

    indexes = [d for d in ddl if d.startswith("CREATE")]
    # two at a time: the box has two cores
    for a in range(0, len(indexes), 2):
        await asyncio.gather(*(run(d) for d in indexes[a : a + 2]))
    for d in ddl:
        if not d.startswith("CREATE"):
            await run(d)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def build(db: str, rfqs: int) -> dict[str, Any]:
    import asyncpg

    from app import migrate

    dsn = f"postgresql://postgres@{PG_HOST}:5432/{db}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    asyncio.run(_admin(f'CREATE DATABASE "{db}"'))
    migrate.upgrade(f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{db}")
    started = time.perf_counter()
    dealer_ids = _ids(np.full(len(DEALERS), START.timestamp()), np.random.default_rng(5))

    async def dealers() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.executemany(
                "INSERT INTO dealer (id, name, endpoint_url, underlyings, enabled, "
                "webhook_secret, updated_at, created_at) VALUES ($1, $2, $3, $4, true, $5, $6, $6)",
                [
                    (
                        dealer_ids[i].decode(),
                        name,
                        f"http://sim.invalid/dealers/{name}",
                        json.dumps(list(unds)),
                        "x" * 32,
                        START,
                    )
                    for i, (name, unds, *_) in enumerate(DEALERS)
                ],
            )
        finally:
            await conn.close()

    asyncio.run(dealers())
    ddl = asyncio.run(_drop_secondary(dsn))
    half = START.timestamp() + DAYS * 86400.0 / 2
    end = START.timestamp() + DAYS * 86400.0
    parts = []
    for u, share in UNDERLYING_SHARE.items():
        n_u = round(rfqs * share)
        # two half-years per underlying (independent feeds: the price path restarts mid-year)
        for h, (a, b) in enumerate(((START.timestamp(), half), (half, end))):
            parts.append(
                Part(
                    len(parts),
                    u,
                    a,
                    b,
                    n_u // 2 + (n_u % 2 if h else 0),
                    1000 + len(parts),
                    dsn,
                    tuple(d.decode() for d in dealer_ids),
                )
            )
    totals: dict[str, int] = {}
    with ProcessPoolExecutor(max_workers=2) as pool:
        for counts in pool.map(generate_part, parts):
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
    loaded = time.perf_counter() - started
    print(f"loaded in {loaded:.0f} s: {totals}", flush=True)
    asyncio.run(_restore(dsn, ddl))
    total = time.perf_counter() - started
    print(f"indexes, keys and VACUUM ANALYZE done: {total:.0f} s in all", flush=True)
    return {"rows": totals, "load_s": round(loaded, 1), "build_s": round(total, 1)}


# --------------------------------------------------------------------------- queries

WINDOWS = {
    "30d": (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)),
    "year": (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    # not on midnights: the rollups for the whole days, the raw rows for the two partial ones
    "30d_edges": (
        datetime(2025, 6, 1, 13, 17, tzinfo=UTC),
        datetime(2025, 7, 1, 9, 41, tzinfo=UTC),
    ),
    "year_edges": (
        datetime(2025, 1, 1, 13, 17, tzinfo=UTC),
        datetime(2025, 12, 31, 9, 41, tzinfo=UTC),
    ),
}


def queries() -> dict[str, tuple[Callable[..., Any], tuple[str, ...]]]:
    """name -> (service call taking (session, query), group_by)."""
    from app.analytics.schemas import CalibratedModel, Counterparty, QuoteSource
    from app.analytics.service import analytics_service as svc

    client, dealer = Counterparty.CLIENT, Counterparty.DEALER

    async def stored_only(session: Any, q: Any) -> Any:
        """Markouts from the stored values alone (the rollups not read)."""
        svc.use_rollups = False
        try:
            return await svc.markouts(session, q, client)
        finally:
            svc.use_rollups = True

    return {
        "hit_ratio": (svc.hit_ratio, ("underlying",)),
        "hit_ratio_by_client_day": (svc.hit_ratio, ("client", "day")),
        "hit_ratio_by_dealer": (svc.hit_ratio, ("dealer",)),
        "funnel": (svc.funnel, ("dealer",)),
        "response_times": (svc.response_times, ("dealer",)),
        "quote_width_dealer": (lambda s, q: svc.quote_width(s, q, QuoteSource.DEALER), ("dealer",)),
        "quote_width_client": (
            lambda s, q: svc.quote_width(s, q, QuoteSource.CLIENT),
            ("size_vega",),
        ),
        "cover": (svc.cover, ("dealer",)),
        "price_improvement": (lambda s, q: svc.price_improvement(s, q, client), ("size_notional",)),
        "price_improvement_dealer": (lambda s, q: svc.price_improvement(s, q, dealer), ("dealer",)),
        "markouts_cold": (lambda s, q: svc.markouts(s, q, client), ("underlying",)),
        "markouts": (lambda s, q: svc.markouts(s, q, client), ("underlying",)),
        "markouts_cold_stored_only": (stored_only, ("underlying",)),
        "calibration_hit": (lambda s, q: svc.calibration(s, q, CalibratedModel.HIT, 10), ()),
        "calibration_fill": (
            lambda s, q: svc.calibration(s, q, CalibratedModel.FILL, 10),
            ("dealer",),
        ),
        "hit_ratio_by_tenor": (svc.hit_ratio, ("tenor",)),
    }


async def run_queries(
    db: str, runs: int, runs_year: int, only: set[str], windows: set[str]
) -> dict[str, Any]:
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.analytics.dimensions import Dim
    from app.analytics.schemas import AnalyticsQuery
    from app.analytics.service import analytics_service
    from app.db import create_sessionmaker

    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{db}"
    # the service's engine gives up on a statement after 10 s and the reports after 9 s; the
    # year-long windows are measured here however long they take
    engine = create_async_engine(url, connect_args={"command_timeout": 900})
    analytics_service.statement_timeout_s = 900.0
    maker = create_sessionmaker(engine)
    captured: list[tuple[str, Any]] = []
    capturing = [False]

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        if capturing[0]:
            captured.append((statement, params))

    PLANS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for name, (call, group_by) in queries().items():
        if only and name not in only:
            continue
        for wname, (since, until) in WINDOWS.items():
            if wname not in windows:
                continue
            q = AnalyticsQuery(since, until, tuple(Dim(d) for d in group_by))
            n_runs = runs if wname.startswith("30d") else runs_year
            cold = name.startswith("markouts_cold")
            times = []
            if name == "markouts":  # warm: fill the cache first
                async with maker() as session, session.begin():
                    await call(session, q)
            for _ in range(n_runs):
                if cold:
                    analytics_service.markout_cache.clear()
                async with maker() as session, session.begin():
                    started = time.perf_counter()
                    report = await call(session, q)
                    times.append(time.perf_counter() - started)
            # the plans, from one more run of the statements it sent
            captured.clear()
            capturing[0] = True
            if cold:
                analytics_service.markout_cache.clear()
            async with maker() as session, session.begin():
                await call(session, q)
            capturing[0] = False
            await _explain(engine, name, wname, list(captured))
            out.setdefault(name, {})[wname] = {
                "group_by": list(group_by),
                "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3),
                "runs": len(times),
                "rows": len(report.rows),
            }
            print(
                f"{name:26s} {wname:5s} median {statistics.median(times):7.3f} s  "
                f"min {min(times):7.3f} s  ({len(times)} runs, {len(report.rows)} rows, "
                f"load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    await engine.dispose()
    return out


async def _explain(engine: Any, name: str, window: str, statements: list[tuple[str, Any]]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) every query a report sent, after the same SET LOCALs."""
    parts = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        async with raw.transaction():
            for statement, params in statements:
                args = list(params or ())
                if statement.lstrip().upper().startswith("SET"):
                    await raw.execute(statement)
                    parts.append(f"-- {statement}")
                    continue
                rows = await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
                plan = "\n".join(r[0] for r in rows)
                shown = ", ".join(f"${i + 1}={a!r}" for i, a in enumerate(args[:12]))
                if len(args) > 12:
                    shown += f", … ({len(args)} parameters)"
                parts.append(f"{statement}\n-- parameters: {shown}\n\n{plan}")
    path = PLANS / f"{name}__{window}{PLAN_SUFFIX[0]}.txt"
    path.write_text(
        f"-- {name}, window {window} {WINDOWS[window][0]:%Y-%m-%d} .. "
        f"{WINDOWS[window][1]:%Y-%m-%d}, EXPLAIN (ANALYZE, BUFFERS) of each statement sent\n\n"
        + "\n\n".join(parts)
        + "\n"
    )


async def refresh(db: str, rebuild: bool) -> dict[str, Any]:
    """The analytics job over the loaded log, its two parts timed on their own."""
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.analytics import jobs
    from app.db import create_sessionmaker

    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{db}"
    engine = create_async_engine(url, connect_args={"command_timeout": 900})
    maker = create_sessionmaker(engine)
    out: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        out["markouts_stored"] = await jobs.store_markouts(maker)
        out["markouts_s"] = round(time.perf_counter() - started, 1)
        print(f"markouts stored: {out['markouts_stored']} in {out['markouts_s']} s", flush=True)
        started = time.perf_counter()
        rows, through = await jobs.refresh_rollups(maker, rebuild=rebuild)
        out["rollup_rows_written"] = rows
        out["rollups_s"] = round(time.perf_counter() - started, 1)
        out["rollups_through"] = str(min(through.values(), default=None))
        print(f"rollup rows written: {rows} in {out['rollups_s']} s", flush=True)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOST}:5432/{db}")
    try:
        started = time.perf_counter()
        await conn.execute(
            "VACUUM (ANALYZE) fill_markout, analytics_rollup, analytics_histogram,"
            " analytics_rollup_state"
        )
        out["vacuum_s"] = round(time.perf_counter() - started, 1)
        sizes = await conn.fetch(
            "SELECT report, cube, count(*) AS n FROM analytics_rollup GROUP BY 1, 2 ORDER BY 1, 2"
        )
        out["rollup_rows"] = {f"{r['report']} by {r['cube']}": r["n"] for r in sizes}
        out["rollup_table_mb"] = round(
            await conn.fetchval("SELECT pg_total_relation_size('analytics_rollup')") / 2**20, 1
        )
        sizes = await conn.fetch(
            "SELECT report, cube, count(*) AS n, sum(length(obs_values)) / 8 AS v"
            " FROM analytics_histogram GROUP BY 1, 2 ORDER BY 1, 2"
        )
        out["histogram_rows"] = {
            f"{r['report']} by {r['cube']}": {"rows": r["n"], "values": int(r["v"])} for r in sizes
        }
        out["histogram_table_mb"] = round(
            await conn.fetchval("SELECT pg_total_relation_size('analytics_histogram')") / 2**20,
            1,
        )
        out["fill_markout_mb"] = round(
            await conn.fetchval("SELECT pg_total_relation_size('fill_markout')") / 2**20, 1
        )
    finally:
        await conn.close()
    return out


async def _hold_back(db: str, windows: set[str], days: int) -> list[Any]:
    """Move every rollup's watermark back to ``days`` before the window's end; returns the
    watermarks to restore (the rollup rows stay: past a watermark they are not read)."""
    import asyncpg

    if not days:
        return []
    (window,) = windows
    until = WINDOWS[window][1].date()
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOST}:5432/{db}")
    try:
        saved = list(await conn.fetch("SELECT report, cube, through FROM analytics_rollup_state"))
        await conn.execute(
            "UPDATE analytics_rollup_state SET through = LEAST(through, $1::date)",
            until - timedelta(days=days),
        )
        print(f"rollups held back to {until - timedelta(days=days)}", flush=True)
        return saved
    finally:
        await conn.close()


async def _restore_watermarks(db: str, saved: list[Any]) -> None:
    import asyncpg

    if not saved:
        return
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOST}:5432/{db}")
    try:
        await conn.executemany(
            "UPDATE analytics_rollup_state SET through = $3 WHERE report = $1 AND cube = $2",
            [(r["report"], r["cube"], r["through"]) for r in saved],
        )
    finally:
        await conn.close()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


async def verify(db: str, only: set[str], windows: set[str]) -> dict[str, Any]:
    """Each report from the rollups and stored markouts against the same from the raw rows."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.analytics.dimensions import Dim
    from app.analytics.schemas import AnalyticsQuery
    from app.analytics.service import analytics_service as svc
    from app.db import create_sessionmaker

    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{db}"
    engine = create_async_engine(url, connect_args={"command_timeout": 900})
    svc.statement_timeout_s = 900.0
    maker = create_sessionmaker(engine)
    out: dict[str, Any] = {}
    checked = ("hit_ratio", "hit_ratio_by_client_day", "hit_ratio_by_dealer", "funnel",
               "price_improvement", "price_improvement_dealer", "markouts_cold",
               "markouts_cold_stored_only",
               "calibration_hit", "calibration_fill", "hit_ratio_by_tenor",
               "response_times", "quote_width_dealer", "quote_width_client", "cover")  # fmt: skip
    #: exact percentiles from histograms: the same numbers to the last bit
    identical = ("response_times", "quote_width_dealer", "quote_width_client", "cover")
    try:
        for name, (call, group_by) in queries().items():
            if name not in checked or (only and name not in only):
                continue
            for wname, (since, until) in WINDOWS.items():
                if wname not in windows:
                    continue
                q = AnalyticsQuery(since, until, tuple(Dim(d) for d in group_by))
                answers, took = [], []
                for fast in (True, False):
                    svc.use_rollups = svc.use_stored_markouts = fast
                    svc.markout_cache.clear()
                    async with maker() as session, session.begin():
                        started = time.perf_counter()
                        answers.append((await call(session, q)).model_dump(mode="json"))
                        took.append(time.perf_counter() - started)
                ok = (answers[0] == answers[1]) if name in identical else _same(*answers)
                out.setdefault(name, {})[wname] = {
                    "same": ok,
                    "s": round(took[0], 3),
                    "raw_s": round(took[1], 3),
                }
                print(
                    f"verify {name:26s} {wname:10s} "
                    f"{('identical' if name in identical else 'same') if ok else 'DIFFERENT'} "
                    f"({took[0]:.3f} s; from the raw rows, every fill priced: {took[1]:.3f} s)",
                    flush=True,
                )
    finally:
        svc.use_rollups = svc.use_stored_markouts = True
        await engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rfqs", type=int, default=1_000_000)
    ap.add_argument("--db", default="rfqdesk_bench")
    ap.add_argument("--runs", type=int, default=5, help="runs per query on the 30-day window")
    ap.add_argument("--runs-year", type=int, default=3, help="runs per query on the year")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--reuse", action="store_true", help="use --db as it is when it exists")
    ap.add_argument("--only", default="", help="comma-separated query names")
    ap.add_argument(
        "--windows",
        default="30d,year",
        help="comma-separated: 30d, year, 30d_edges, year_edges (the same not on midnights)",
    )
    ap.add_argument(
        "--rebuild-rollups", action="store_true", help="drop the rollups and build them again"
    )
    ap.add_argument(
        "--verify", action="store_true", help="check rollups and stored markouts against raw rows"
    )
    ap.add_argument(
        "--hold-back-days",
        type=int,
        default=0,
        help="for the queries, move the rollups' watermarks to this many days before the "
        "window's end (as in the service, where the last days are not complete yet); "
        "one window at a time; restored afterwards",
    )
    a = ap.parse_args()
    if a.hold_back_days and len(a.windows.split(",")) != 1:
        ap.error("--hold-back-days takes one window")
    result: dict[str, Any] = {"rfqs": a.rfqs, "hold_back_days": a.hold_back_days}
    if a.hold_back_days:
        PLAN_SUFFIX[0] = f"_held_back_{a.hold_back_days}d"
    try:
        if a.reuse and asyncio.run(_exists(a.db)):
            from app import migrate

            print(f"reusing {a.db}", flush=True)
            migrate.upgrade(f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{a.db}")
        else:
            result["build"] = build(a.db, a.rfqs)
        result["refresh"] = asyncio.run(refresh(a.db, a.rebuild_rollups))
        only = {x for x in a.only.split(",") if x}
        windows = set(a.windows.split(","))
        saved = asyncio.run(_hold_back(a.db, windows, a.hold_back_days))
        try:
            if a.verify:
                result["verify"] = asyncio.run(verify(a.db, only, windows))
            result["load_avg_before"] = os.getloadavg()
            result["queries"] = asyncio.run(run_queries(a.db, a.runs, a.runs_year, only, windows))
            result["load_avg_after"] = os.getloadavg()
        finally:
            asyncio.run(_restore_watermarks(a.db, saved))
        result["cpus"] = os.cpu_count()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"figures in {OUT.relative_to(ROOT)}, plans in {PLANS.relative_to(ROOT)}/")
    finally:
        if not a.keep:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{a.db}" WITH (FORCE)'))
            print(f"dropped {a.db} (--keep keeps it)")


if __name__ == "__main__":
    main()
