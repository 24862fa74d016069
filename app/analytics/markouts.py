"""Markouts: traded packages re-priced on the market recorded after the trade.

For a fill of ``q`` structure units at ``P`` USD per unit, its markout at horizon ``h`` is the
desk's P&L per unit ``s · (V_h − P)`` (``s = +1`` when the desk bought the package, ``−1``
when it sold it) where ``V_h`` is the package's value per unit on the snapshot taken at
``t + h`` (the first one of the underlying in ``[t + h, t + 2h)``)::

    V_h = Σ_i ε_i r_i · (C_i + [hedged] Δ_i (H − F_i))

over legs ``i`` of ratio ``r_i`` and direction ``ε_i = ±1`` (the buyer's legs), with ``C_i``,
``Δ_i`` the Black-76 price and delta (:func:`app.quant.pricing.black76`) on the later
snapshot's forward ``F_i``, time to expiry and SVI vol of the leg's strike. A package traded
"vs H" (``hedge_reference``) is valued vs ``H``, as the pricing engine quotes it
(:func:`app.quant.pricing.price_package`): its markout measures what moved the package
other than the delta the client exchanged at ``H``; an unhedged package's includes its delta.

A fill is left out at a horizon (not "priced") when no snapshot was recorded in the interval,
or when a leg has expired by then (the settlement price is not in the snapshot).

Reading the snapshots is the cost (a stored snapshot is ~3 kB of JSON, mostly numbers, and
a 30-day report reads tens of thousands): only the slice of each leg's expiry is decoded,
found by its ``"expiry"`` key in the document's text; a document in another layout, or an
expiry that is not listed (interpolated), goes through :meth:`MarketSnapshot.from_dict`.
A fill's markouts never change once its last interval has closed: the analytics job stores
them then (``fill_markout``, :mod:`app.analytics.jobs`), and a report prices on the fly only
the fills it finds none stored for (the recent ones), keeping those that are final in a
bounded in-process cache (:class:`MarkoutCache`) until the job has stored them.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from app.marketdata.errors import MarketDataError
from app.marketdata.snapshot import MarketSnapshot
from app.quant.pricing import black76

FloatArray = np.ndarray


MARKOUT_HORIZONS_S = (60, 300, 1800)
HORIZON_NAMES = ("1m", "5m", "30m")


@dataclass(frozen=True)
class MarkoutFill:
    """A fill to mark out, as the repository reads it."""

    fill_id: uuid.UUID
    filled_at: datetime
    group: tuple[Any, ...]
    rfq_id: uuid.UUID
    desk_buys: bool
    quantity: float
    price_usd: float
    hedge_reference: float | None
    #: the per-unit markouts stored for it (NaN: unpriced), None when none are stored yet
    stored: tuple[float, ...] | None = None


@dataclass(frozen=True)
class MarkoutLeg:
    rfq_id: uuid.UUID
    expiry: date
    strike: float
    is_call: bool
    signed_ratio: int


@dataclass(frozen=True)
class Leg:
    expiry: date
    strike: float
    is_call: bool
    signed_ratio: int


@dataclass(frozen=True)
class Trade:
    desk_buys: bool
    price_usd: float
    hedge_reference: float | None
    legs: Sequence[Leg]


# a slice as MarketSnapshot.to_dict writes it (json.dumps' default separators)
_NUM = r"(-?[0-9][0-9.eE+-]*)"
_SLICE = re.compile(
    r'\{"expiry": "(\d{4}-\d\d-\d\d)", "t_years": ' + _NUM + r', "forward": ' + _NUM
    + r', "svi": \{"a": ' + _NUM + r', "b": ' + _NUM + r', "rho": ' + _NUM + r', "m": '
    + _NUM + r', "sigma": ' + _NUM + r"\}\}"
)  # fmt: skip
_DECODER = json.JSONDecoder()


class StoredSnapshot:
    """One stored snapshot document, decoded only as far as the legs priced on it need."""

    __slots__ = ("_full", "_slices", "_unreadable", "doc")

    def __init__(self, doc: str | Mapping[str, Any]) -> None:
        self.doc = doc
        self._slices: dict[str, tuple[float, ...] | None] = {}
        self._full: MarketSnapshot | None = None
        self._unreadable = False

    def _slice(self, iso: str) -> tuple[float, ...] | None:
        if iso in self._slices:
            return self._slices[iso]
        found: tuple[float, ...] | None = None
        doc = self.doc
        if isinstance(doc, str):
            at = doc.find(f'"expiry": "{iso}"')
            start = doc.rfind("{", 0, at) if at >= 0 else -1
            m = _SLICE.match(doc, start) if start >= 0 else None
            if m is not None and m.group(1) == iso:
                found = tuple(map(float, m.groups()[1:]))
            elif start >= 0:  # same content, another layout: decode just this object
                try:
                    found = _params(_DECODER.raw_decode(doc, start)[0], iso)
                except (ValueError, KeyError, TypeError):
                    found = None
        else:
            for s in doc.get("slices", ()):
                if s.get("expiry") == iso:
                    found = _params(s, iso)
        self._slices[iso] = found
        return found

    def _snapshot(self) -> MarketSnapshot | None:
        if self._full is None and not self._unreadable:
            try:
                data = json.loads(self.doc) if isinstance(self.doc, str) else self.doc
                self._full = MarketSnapshot.from_dict(data)
            except (MarketDataError, ValueError, TypeError, AttributeError):
                self._unreadable = True
        return self._full

    def leg(self, expiry: date, strike: float) -> tuple[float, float, float] | None:
        """(t_years, forward, vol) of a leg, or None when it cannot be priced here."""
        p = self._slice(expiry.isoformat())
        if p is not None:
            t, fwd, a, b, rho, m, sig = p
            if t > 0.0 and fwd > 0.0 and strike > 0.0:
                k = math.log(strike / fwd) - m
                w = a + b * (rho * k + math.sqrt(k * k + sig * sig))
                return t, fwd, math.sqrt(max(w, 0.0) / t)
        snap = self._snapshot()  # an expiry between listed ones, or an unusual document
        if snap is None:
            return None
        try:
            return snap.t_years(expiry), snap.forward(expiry), snap.vol(expiry, strike)
        except MarketDataError:  # expired by then
            return None


def _params(s: Mapping[str, Any], iso: str) -> tuple[float, ...] | None:
    if s.get("expiry") != iso:
        return None
    v = s["svi"]
    return tuple(
        float(x) for x in (s["t_years"], s["forward"], v["a"], v["b"], v["rho"], v["m"], v["sigma"])
    )


def package_values(
    trades: Sequence[Trade], snapshots: Sequence[StoredSnapshot | None]
) -> FloatArray:
    """``V_h`` per unit of each trade on its snapshot (NaN where it cannot be valued).

    All legs of all trades go through one vectorised :func:`black76` call.
    """
    n = len(trades)
    owner: list[int] = []
    rows: list[tuple[float, float, float]] = []
    strike: list[float] = []
    is_call: list[bool] = []
    weight: list[float] = []
    hedge: list[float] = []
    ok = np.zeros(n, dtype=bool)
    for i, (trade, snap) in enumerate(zip(trades, snapshots, strict=True)):
        if snap is None or not trade.legs:
            continue
        priced = [snap.leg(leg.expiry, leg.strike) for leg in trade.legs]
        known = [p for p in priced if p is not None]
        if len(known) < len(priced):
            continue
        ok[i] = True
        h = math.nan if trade.hedge_reference is None else trade.hedge_reference
        for leg, p in zip(trade.legs, known, strict=True):
            owner.append(i)
            rows.append(p)
            strike.append(leg.strike)
            is_call.append(leg.is_call)
            weight.append(float(leg.signed_ratio))
            hedge.append(h)
    values = np.full(n, np.nan)
    if not owner:
        return values
    tfv = np.array(rows)
    f = tfv[:, 1]
    g = black76(f, np.array(strike), tfv[:, 0], tfv[:, 2], np.array(is_call))
    h_arr = np.array(hedge)
    adj = np.where(np.isnan(h_arr), 0.0, g.delta * (np.nan_to_num(h_arr) - f))
    sums = np.bincount(np.array(owner), weights=np.array(weight) * (g.price + adj), minlength=n)
    values[ok] = sums[ok]
    return values


def markouts_per_unit(trades: Sequence[Trade], values: FloatArray) -> FloatArray:
    """The desk's P&L per unit ``s · (V_h − P)`` (NaN where ``V_h`` is)."""
    sign = np.array([1.0 if t.desk_buys else -1.0 for t in trades])
    price = np.array([t.price_usd for t in trades])
    out: FloatArray = sign * (values - price)
    return out


class MarkoutCache:
    """Final markouts per fill (per unit, one per horizon; NaN = unpriced), least recently
    used out first. Entries expire after ``ttl_s`` so that a snapshot backfilled late is
    eventually seen."""

    def __init__(self, max_entries: int = 400_000, ttl_s: float = 86_400.0) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._data: OrderedDict[Hashable, tuple[float, tuple[float, ...]]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[float, ...] | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, values: tuple[float, ...]) -> None:
        self._data[key] = (time.monotonic() + self.ttl_s, values)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def price_markouts(
    fills: Sequence[MarkoutFill],
    later: Mapping[Any, tuple[Any, ...]],
    legs: Mapping[Any, list[MarkoutLeg]],
    docs: Mapping[Any, str],
) -> FloatArray:
    """Per-unit markouts of the fills, one row per fill and one column per horizon (NaN:
    unpriced), from their later snapshots' ids, their RFQs' legs and the snapshot texts."""
    snaps = {k: StoredSnapshot(v) for k, v in docs.items()}
    trades = [
        Trade(
            desk_buys=f.desk_buys,
            price_usd=f.price_usd,
            hedge_reference=f.hedge_reference,
            legs=[
                Leg(leg.expiry, leg.strike, leg.is_call, leg.signed_ratio)
                for leg in legs.get(f.rfq_id, [])
            ],
        )
        for f in fills
    ]
    none = (None,) * len(MARKOUT_HORIZONS_S)
    out = np.full((len(fills), len(MARKOUT_HORIZONS_S)), np.nan)
    for h in range(len(MARKOUT_HORIZONS_S)):
        ids = [later.get(f.fill_id, none)[h] for f in fills]
        on = [snaps.get(i) if i is not None else None for i in ids]
        out[:, h] = markouts_per_unit(trades, package_values(trades, on))
    return out


def markout_aggregates(
    fills: Sequence[MarkoutFill], per_unit: FloatArray
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Per group: fills and quantity; per horizon, the fills priced, their quantity and their
    total markout (USD)."""
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, f in enumerate(fills):
        groups[f.group].append(i)
    qty = np.array([f.quantity for f in fills])
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for key, idx in groups.items():
        ix = np.array(idx)
        v: dict[str, Any] = {"fills": len(idx), "quantity": float(qty[ix].sum())}
        for h, name in enumerate(HORIZON_NAMES):
            m = per_unit[ix, h]
            priced = ~np.isnan(m)
            v[f"priced_{name}"] = int(priced.sum())
            v[f"qty_{name}"] = float(qty[ix][priced].sum())
            v[f"markout_{name}_usd"] = (
                float((m[priced] * qty[ix][priced]).sum()) if priced.any() else None
            )
        out.append((key, v))
    return out
