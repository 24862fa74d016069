"""The analytics figures computed independently from the raw rows, in plain Python.

Nothing here uses app.analytics' code: only the models, the definitions written in the
reports' notes, and the quant package pricer (for markouts).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.marketdata.snapshot import MarketSnapshot as Snap
from app.models import (
    ClientQuote,
    Dealer,
    DealerQuote,
    DealerRequest,
    Fill,
    MarketSnapshot,
    Rfq,
    RfqLeg,
)
from app.quant.pricing import price_package

FIRM = {"live", "won", "lost", "expired"}
ANSWERED = {"quoted", "won", "lost"}
TRADED = {"filled", "partially_filled"}
OPEN = {"new", "quoting", "quoted", "accepted"}
EDGES = {
    "size_contracts": (10, 25, 50, 100, 250, 500, 1000, 2500),
    "size_notional": (100e3, 250e3, 500e3, 1e6, 2.5e6, 5e6, 10e6, 25e6),
    "size_vega": (1e3, 2.5e3, 5e3, 10e3, 25e3, 50e3, 100e3),
    "tenor": (7, 30, 90, 180, 365),
}


@dataclass
class Log:
    rfqs: list[Rfq]
    legs: dict[Any, list[RfqLeg]]
    quote: dict[Any, ClientQuote]  # the RFQ's quote that was not superseded
    requests: list[DealerRequest]
    quotes: list[DealerQuote]
    fills: list[Fill]
    snapshots: list[MarketSnapshot]
    snapshot_by_id: dict[Any, MarketSnapshot]
    dealer_name: dict[Any, str]

    def window(self, since: datetime, until: datetime, **flt: str) -> list[Rfq]:
        return [
            r
            for r in self.rfqs
            if since <= r.created_at < until
            and all(getattr(r, k) == v for k, v in flt.items() if v is not None)
        ]


async def load(session: AsyncSession) -> Log:
    rfqs = list((await session.scalars(select(Rfq))).all())
    legs: dict[Any, list[RfqLeg]] = defaultdict(list)
    for leg in (await session.scalars(select(RfqLeg).order_by(RfqLeg.leg_index))).all():
        legs[leg.rfq_id].append(leg)
    quote = {
        q.rfq_id: q
        for q in (await session.scalars(select(ClientQuote))).all()
        if q.status != "superseded"
    }
    snaps = list((await session.scalars(select(MarketSnapshot))).all())
    return Log(
        rfqs=rfqs,
        legs=legs,
        quote=quote,
        requests=list((await session.scalars(select(DealerRequest))).all()),
        quotes=list((await session.scalars(select(DealerQuote))).all()),
        fills=list((await session.scalars(select(Fill))).all()),
        snapshots=snaps,
        snapshot_by_id={s.id: s for s in snaps},
        dealer_name={d.id: d.name for d in (await session.scalars(select(Dealer))).all()},
    )


def label(edges: tuple[float, ...], x: float | None) -> str | None:
    if x is None:
        return None

    def short(v: float) -> str:
        for div, suffix in ((1e6, "m"), (1e3, "k")):
            if v >= div and v % (div / 10) == 0:
                return f"{v / div:g}{suffix}"
        return f"{v:g}"

    i = bisect.bisect_right(edges, x)
    if i == 0:
        return f"<{short(edges[0])}"
    if i == len(edges):
        return f"{short(edges[-1])}+"
    return f"{short(edges[i - 1])}-{short(edges[i])}"


def rfq_dim(log: Log, r: Rfq, dim: str) -> Any:
    q = log.quote.get(r.id)
    if dim == "day":
        return r.created_at.date().isoformat()
    if dim == "hour":
        return r.created_at.hour
    if dim == "size_contracts":
        return label(EDGES[dim], float(r.quantity))
    if dim == "size_notional":
        if q is None or q.snapshot_id is None:
            return None
        spot = float(log.snapshot_by_id[q.snapshot_id].spot)
        return label(EDGES[dim], float(r.quantity) * spot)
    if dim == "size_vega":
        v = None if q is None else q.greeks.get("gross_vega_usd_per_vol_point")
        return label(EDGES[dim], None if v is None else float(v))
    if dim == "tenor":
        last = max(leg.expiry for leg in log.legs[r.id])
        return label(EDGES[dim], float((last - r.created_at.date()).days))
    return getattr(r, dim)


Key = tuple[Any, ...]


def keyer(log: Log, dims: list[str]) -> Callable[[Rfq, str | None], Key]:
    def key(r: Rfq, dealer: str | None = None) -> Key:
        return tuple(dealer if d == "dealer" else rfq_dim(log, r, d) for d in dims)

    return key


def rfq_hit_ratio(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    out: dict[Key, dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "quoted": 0, "traded": 0, "open": 0, "traded_quantity": 0.0}
    )
    for r in rfqs:
        row = out[key(r, None)]
        final = r.state not in OPEN
        row["requests"] += 1
        row["quoted"] += int(r.id in log.quote and final)
        row["traded"] += int(r.state in TRADED)
        row["open"] += int(not final)
        if r.state in TRADED:
            row["traded_quantity"] += float(r.filled_quantity or 0)
    for row in out.values():
        row["hit_ratio"] = row["traded"] / row["quoted"] if row["quoted"] else None
    return dict(out)


def window_requests(log: Log, rfqs: list[Rfq]) -> list[tuple[Rfq, DealerRequest]]:
    by_id = {r.id: r for r in rfqs}
    return [
        (by_id[d.rfq_id], d) for d in log.requests if d.rfq_id in by_id and d.outcome != "skipped"
    ]


def dealer_hit_ratio(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    """Each dealer's hit ratio: requests won / requests answered with a firm price."""
    key = keyer(log, dims)
    out: dict[Key, dict[str, Any]] = defaultdict(
        lambda: {"requests": 0, "quoted": 0, "traded": 0, "open": 0, "traded_quantity": 0.0}
    )
    for r, d in window_requests(log, rfqs):
        row = out[key(r, log.dealer_name[d.dealer_id])]
        row["requests"] += 1
        row["quoted"] += int(d.outcome in ANSWERED)
        row["traded"] += int(d.outcome == "won")
        row["open"] += int(d.outcome == "pending")
        if d.outcome == "won":
            row["traded_quantity"] += float(d.fill_quantity or 0)
    for row in out.values():
        row["hit_ratio"] = row["traded"] / row["quoted"] if row["quoted"] else None
    return dict(out)


def firm_quotes(log: Log, rfqs: list[Rfq]) -> dict[Any, list[DealerQuote]]:
    ids = {r.id for r in rfqs}
    out: dict[Any, list[DealerQuote]] = defaultdict(list)
    for q in log.quotes:
        if q.rfq_id in ids and q.status in FIRM:
            out[q.rfq_id].append(q)
    return out


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def funnel(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    names = ("asked", "answered", "best", "won", "declined", "no_response", "error")
    out: dict[Key, dict[str, Any]] = defaultdict(lambda: dict.fromkeys(names, 0))
    for r, d in window_requests(log, rfqs):
        row = out[key(r, log.dealer_name[d.dealer_id])]
        row["asked"] += 1
        row["answered"] += int(d.outcome in ANSWERED)
        for o in ("won", "declined", "no_response", "error"):
            row[o] += int(d.outcome == o)
    by_id = {r.id: r for r in rfqs}
    for rid, quotes in firm_quotes(log, rfqs).items():
        r = by_id[rid]
        wanted = r.accepted_side or r.side
        asks = [_f(q.ask_coin) for q in quotes if q.ask_coin is not None]
        bids = [_f(q.bid_coin) for q in quotes if q.bid_coin is not None]
        for q in quotes:
            best = (wanted != "sell" and asks and _f(q.ask_coin) == min(asks)) or (  # type: ignore[type-var]
                wanted != "buy" and bids and _f(q.bid_coin) == max(bids)  # type: ignore[type-var]
            )
            if best:
                out[key(r, log.dealer_name[q.dealer_id])]["best"] += 1
    return dict(out)


def response_times(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    values: dict[Key, list[float]] = defaultdict(list)
    for r, d in window_requests(log, rfqs):
        if d.outcome in ANSWERED and d.first_quote_at and d.sent_at:
            # whole milliseconds, rounded down: the report's resolution
            ms = (d.first_quote_at - d.sent_at) // timedelta(milliseconds=1)
            values[key(r, log.dealer_name[d.dealer_id])].append(ms)
    return {
        k: {
            "answered": len(v),
            "ttfq_p50_ms": float(np.percentile(v, 50)),
            "ttfq_p95_ms": float(np.percentile(v, 95)),
            "ttfq_mean_ms": float(np.mean(v)),
        }
        for k, v in values.items()
    }


def units(price: Any, per: int = 10_000) -> int:
    """A price in whole ``1/per`` units (ticks of 1e-4 coin, or cents), rounded half away
    from zero (the reports' resolution), from the exact decimal."""
    d = Decimal(str(price)) * per
    return int(d.to_integral_value(rounding=ROUND_HALF_UP))


def _stats(v: list[int], per: int = 10_000) -> tuple[float, float]:
    return sum(v) / (len(v) * per), float(np.median(v)) / per


def dealer_width(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    by_id = {r.id: r for r in rfqs}
    values: dict[Key, list[int]] = defaultdict(list)
    for rid, quotes in firm_quotes(log, rfqs).items():
        for q in quotes:
            if q.bid_coin is not None and q.ask_coin is not None:
                values[key(by_id[rid], log.dealer_name[q.dealer_id])].append(
                    units(q.ask_coin) - units(q.bid_coin)
                )
    return {
        k: {"quotes": len(v), "width_coin_mean": _stats(v)[0],
            "width_coin_p50": _stats(v)[1], "width_usd_mean": None}
        for k, v in values.items()
    }  # fmt: skip


def client_width(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    coin: dict[Key, list[int]] = defaultdict(list)
    usd: dict[Key, list[int]] = defaultdict(list)
    for r in rfqs:
        q = log.quote.get(r.id)
        if q is not None and q.bid_coin is not None and q.ask_coin is not None:
            coin[key(r, None)].append(units(q.ask_coin) - units(q.bid_coin))
            usd[key(r, None)].append(units(q.ask_usd, 100) - units(q.bid_usd, 100))
    return {
        k: {"quotes": len(v), "width_coin_mean": _stats(v)[0],
            "width_coin_p50": _stats(v)[1], "width_usd_mean": _stats(usd[k], 100)[0]}
        for k, v in coin.items()
    }  # fmt: skip


def cover(log: Log, rfqs: list[Rfq], dims: list[str]) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    by_id = {r.id: r for r in rfqs}
    values: dict[Key, list[int]] = defaultdict(list)
    for rid, quotes in firm_quotes(log, rfqs).items():
        r = by_id[rid]
        wanted = r.accepted_side or r.side
        for side in ("bid", "ask"):
            if (side == "bid" and wanted == "buy") or (side == "ask" and wanted == "sell"):
                continue
            priced = [(units(getattr(q, f"{side}_coin")), q) for q in quotes
                      if getattr(q, f"{side}_coin") is not None]  # fmt: skip
            if len(priced) < 2:
                continue
            priced.sort(key=lambda pq: (pq[0] if side == "ask" else -pq[0], pq[1].received_at))
            (p1, q1), (p2, _) = priced[0], priced[1]
            values[key(r, log.dealer_name[q1.dealer_id])].append(abs(p1 - p2))
    return {
        k: {"observations": len(v), "cover_coin_mean": _stats(v)[0],
            "cover_coin_p50": _stats(v)[1]}
        for k, v in values.items()
    }  # fmt: skip


def window_fills(log: Log, rfqs: list[Rfq], counterparty: str) -> list[tuple[Rfq, Fill]]:
    by_id = {r.id: r for r in rfqs}
    return [(by_id[f.rfq_id], f) for f in log.fills
            if f.rfq_id in by_id and f.counterparty == counterparty]  # fmt: skip


def price_improvement(
    log: Log, rfqs: list[Rfq], dims: list[str], counterparty: str
) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    out: dict[Key, dict[str, Any]] = defaultdict(
        lambda: {"fills": 0, "quantity": 0.0, "vs_theo_usd": 0.0, "vs_mid_usd": 0.0,
                 "screen_mid_fills": 0}
    )  # fmt: skip
    for r, f in window_fills(log, rfqs, counterparty):
        q = log.quote[r.id]
        theo = float(q.theo_usd)
        screen = q.greeks.get("screen_mid_usd")
        mid = theo if screen is None else float(screen)
        taker_buys = f.side == ("sell" if counterparty == "client" else "buy")
        s = 1.0 if taker_buys else -1.0
        qty, px = float(f.quantity), float(f.price_usd)
        dealer = log.dealer_name.get(f.dealer_id) if f.dealer_id else None
        row = out[key(r, dealer)]
        row["fills"] += 1
        row["quantity"] += qty
        row["vs_theo_usd"] += s * (theo - px) * qty
        row["vs_mid_usd"] += s * (mid - px) * qty
        row["screen_mid_fills"] += int(screen is not None)
    for row in out.values():
        row["vs_theo_usd_per_unit"] = row["vs_theo_usd"] / row["quantity"]
        row["vs_mid_usd_per_unit"] = row["vs_mid_usd"] / row["quantity"]
    return dict(out)


HORIZONS = (("1m", 60), ("5m", 300), ("30m", 1800))


def markouts(
    log: Log, rfqs: list[Rfq], dims: list[str], counterparty: str
) -> dict[Key, dict[str, Any]]:
    """Re-price each traded package with the quant package pricer on the first snapshot of
    its underlying taken in [t + h, t + 2h)."""
    key = keyer(log, dims)
    by_und: dict[str, list[MarketSnapshot]] = defaultdict(list)
    for s in log.snapshots:
        by_und[s.underlying].append(s)
    for v in by_und.values():
        v.sort(key=lambda s: s.taken_at)
    out: dict[Key, dict[str, Any]] = {}
    for r, f in window_fills(log, rfqs, counterparty):
        dealer = log.dealer_name.get(f.dealer_id) if f.dealer_id else None
        row = out.setdefault(
            key(r, dealer),
            {"fills": 0, "quantity": 0.0}
            | {f"markout_{n}_usd": None for n, _ in HORIZONS}
            | {f"priced_{n}": 0 for n, _ in HORIZONS}
            | {f"qty_{n}": 0.0 for n, _ in HORIZONS},
        )
        qty = float(f.quantity)
        row["fills"] += 1
        row["quantity"] += qty
        legs = log.legs[r.id]
        for name, h in HORIZONS:
            lo, hi = f.filled_at + timedelta(seconds=h), f.filled_at + timedelta(seconds=2 * h)
            later = next((s for s in by_und[r.underlying] if lo <= s.taken_at < hi), None)
            if later is None:
                continue
            snap = Snap.from_dict(later.data)
            exps = [leg.expiry for leg in legs]
            strikes = np.array([float(leg.strike) for leg in legs])
            pk = price_package(
                snap.forwards(exps),
                strikes,
                snap.times(exps),
                snap.vols(exps, strikes),
                np.array([leg.option_type == "call" for leg in legs]),
                np.array([leg.ratio * (1 if leg.direction == "buy" else -1) for leg in legs],
                         dtype=float),
                hedge_reference=_f(r.hedge_reference),
            )  # fmt: skip
            s = 1.0 if f.side == "buy" else -1.0
            m = s * (pk.theo_usd - float(f.price_usd)) * qty
            row[f"markout_{name}_usd"] = (row[f"markout_{name}_usd"] or 0.0) + m
            row[f"priced_{name}"] += 1
            row[f"qty_{name}"] += qty
    for row in out.values():
        for name, _ in HORIZONS:
            total, q = row[f"markout_{name}_usd"], row.pop(f"qty_{name}")
            row[f"markout_{name}_usd_per_unit"] = None if total is None else total / q
    return out


def calibration(
    log: Log, rfqs: list[Rfq], dims: list[str], model: str, buckets: int
) -> dict[Key, dict[str, Any]]:
    key = keyer(log, dims)
    obs: list[tuple[Key, float, int]] = []
    if model == "hit":
        for r in rfqs:
            q = log.quote.get(r.id)
            if q is None or r.state in OPEN or q.status not in ("accepted", "passed", "expired"):
                continue
            for p, price, client_side in ((q.p_hit_bid, q.bid_coin, "sell"),
                                          (q.p_hit_ask, q.ask_coin, "buy")):  # fmt: skip
                if p is not None and price is not None:
                    y = int(q.status == "accepted" and r.accepted_side == client_side)
                    obs.append((key(r, None), p, y))
    else:
        for r, d in window_requests(log, rfqs):
            p = d.p_answer if model == "fill" else d.p_win
            if p is None or d.outcome == "pending":
                continue
            y = int(d.outcome in ANSWERED) if model == "fill" else int(d.outcome == "won")
            obs.append((key(r, log.dealer_name[d.dealer_id]), p, y))
    groups: dict[Key, list[tuple[float, int]]] = defaultdict(list)
    for k, p, y in obs:
        b = min(int(np.floor(p * buckets)), buckets - 1)
        groups[(*k, b)].append((p, y))
    return {
        k: {
            "n": len(v),
            "predicted": float(np.mean([p for p, _ in v])),
            "realised": float(np.mean([y for _, y in v])),
            "brier": float(np.mean([(p - y) ** 2 for p, y in v])),
        }
        for k, v in groups.items()
    }
