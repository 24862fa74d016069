"""The simulation: RFQ arrivals, prices, dealer answers, client decisions and fills.

:func:`simulate` returns the log tables (in :data:`ml.export.SCHEMA`, the format the service
writes), the true probabilities of every event it drew (kept apart, never in the log), and an
:class:`Oracle` that gives the true probabilities of any dealer for any simulated RFQ (for
scoring dealer selection against selection with the truth).

The desk policy inside the simulator explores: each RFQ is sent to a random number (2 to 8) of
randomly chosen eligible dealers, and the client sees random markups, so that the log covers
the decisions the trained models will later be asked about.
"""

from __future__ import annotations

import heapq
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from app.domain import Structure, build_legs, last_friday, weekly_expiry
from app.domain.expiries import expiry_datetime
from app.quant.pricing import black76
from ml.export import tables_from_columns
from ml.sim.truth import (
    P_TRANSPORT_ERROR,
    DealerInputs,
    DealerTable,
    DealerTruth,
    client_hit,
    dealer_truth,
    reference_vp,
    vol_z,
)
from ml.sim.world import (
    COMPLEXITY,
    SIM_STRUCTURES,
    SIM_UNDERLYINGS,
    UNDERLYING_PARAMS,
    World,
    build_world,
)

__all__ = ["INVENTORY_HALF_LIFE_DAYS", "Oracle", "SimConfig", "SimResult", "simulate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAY = 86_400.0
YEAR_DAYS = 365.0
INVENTORY_HALF_LIFE_DAYS = 2.0
"""Dealers forget their inventory with this half-life (the features use the same)."""

#: relative RFQ intensity per UTC hour (weekends × 0.35)
HOUR_PROFILE = np.array(
    [
        0.3,
        0.3,
        0.3,
        0.35,
        0.4,
        0.5,
        0.7,
        1.0,
        1.3,
        1.4,
        1.4,
        1.3,
        1.3,
        1.5,
        1.6,
        1.6,
        1.5,
        1.2,
        0.9,
        0.7,
        0.5,
        0.4,
        0.35,
        0.3,
    ]
)
DESK_HIT_ALPHA, DESK_HIT_BETA = -0.4, 2.5  # the desk's configured curve, logged as p_hit


@dataclass(frozen=True)
class SimConfig:
    """What to simulate.

    Parameters
    ----------
    n_rfqs
        Number of RFQs.
    seed
        Seed of the events (arrivals, prices, answers, decisions).
    world_seed
        Seed of the hidden market (:func:`ml.sim.world.build_world`).
    start
        Time of the first possible arrival (UTC).
    rfqs_per_day
        Average arrival rate; ``n_rfqs / rfqs_per_day`` days are simulated.
    deadline_s
        How long dealers have to answer.
    quote_valid_s
        Lifetime of the client quote and the RFQ.
    min_dealers, max_dealers
        Range of the number of dealers asked (uniform, capped by the eligible count).
    """

    n_rfqs: int = 10_000
    seed: int = 7
    world_seed: int = 0
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    rfqs_per_day: float = 800.0
    deadline_s: float = 3.0
    quote_valid_s: float = 30.0
    min_dealers: int = 2
    max_dealers: int = 8
    n_dealers: int = 16
    n_clients: int = 40

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.n_rfqs / self.rfqs_per_day)


@dataclass(frozen=True, eq=False)
class Oracle:
    """Everything needed to compute any dealer's true probabilities for any simulated RFQ.

    Attributes
    ----------
    rfq_ids
        RFQ ids in arrival order (row ``i`` of every array).
    inventory
        ``(rfqs, dealers)``: each dealer's decayed inventory in the RFQ's underlying just
        before it arrived (USD vega), before multiplying by the trade direction.
    direction
        +1/−1: the sign of the vega a dealer takes on if it trades the RFQ; 0 for two-way.
    """

    table: DealerTable
    dealer_names: tuple[str, ...]
    deadline_s: float
    rfq_ids: tuple[str, ...]
    underlying: IntArray
    group: IntArray
    n_legs: IntArray
    notional_usd: FloatArray
    tenor_days: FloatArray
    hour: IntArray
    vol_z: FloatArray
    t_days: FloatArray
    direction: FloatArray
    inventory: FloatArray
    eligible: npt.NDArray[np.bool_]  # (rfqs, dealers)

    def truth(self, rfq: IntArray, dealer: IntArray, n_asked: IntArray) -> DealerTruth:
        """True probabilities of ``dealer`` for RFQ row ``rfq`` if ``n_asked`` were asked."""
        rfq = np.asarray(rfq)
        dealer = np.asarray(dealer)
        scale = np.array([UNDERLYING_PARAMS[u]["inventory_scale_usd"] for u in SIM_UNDERLYINGS])
        und = self.underlying[rfq]
        x = self.inventory[rfq, dealer] * self.direction[rfq] / scale[und]
        inputs = DealerInputs(
            dealer=dealer,
            underlying=und,
            group=self.group[rfq],
            n_legs=self.n_legs[rfq],
            notional_usd=self.notional_usd[rfq],
            tenor_days=self.tenor_days[rfq],
            hour=self.hour[rfq],
            vol_z=self.vol_z[rfq],
            n_asked=np.broadcast_to(np.asarray(n_asked), rfq.shape).astype(np.int64),
            inventory_x=x,
            t_days=self.t_days[rfq],
        )
        return dealer_truth(self.table, inputs, self.deadline_s)


@dataclass
class SimResult:
    """Output of :func:`simulate`.

    Attributes
    ----------
    tables
        The log tables (Arrow, :data:`ml.export.SCHEMA`).
    truth
        ``dealer_request`` (id, p_answer, p_win, p_acceptable, n_asked) and ``client_quote``
        (id, p_hit_bid, p_hit_ask): the true probabilities of the events drawn. Never part of
        the log.
    oracle
        True probabilities of any dealer for any RFQ.
    """

    config: SimConfig
    world: World
    tables: dict[str, pa.Table]
    truth: dict[str, pa.Table]
    oracle: Oracle
    stats: dict[str, Any] = field(default_factory=dict)


class _Ids:
    """UUIDv7-layout ids from simulated time and a seeded generator (reproducible runs)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._buf: list[int] = []

    def _rand(self) -> int:
        if not self._buf:
            raw = self.rng.integers(0, 2**62, size=(4096, 2), dtype=np.int64)
            self._buf = [int(a) << 62 | int(b) for a, b in raw]
        return self._buf.pop()

    def new(self, t: float) -> str:
        ms = int(t * 1000.0)
        rand = self._rand()
        value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
        value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
        return str(uuid.UUID(int=value))


def _json(value: Any) -> str:
    """Canonical JSON text (the form :mod:`ml.export` writes database JSON in)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(round(t, 6), tz=UTC)


def _arrivals(cfg: SimConfig, rng: np.random.Generator) -> FloatArray:
    days = cfg.n_rfqs / cfg.rfqs_per_day
    n_hours = max(1, math.ceil(days * 24))
    start = cfg.start.timestamp()
    hours = np.arange(n_hours)
    weekday = (cfg.start.weekday() + (hours // 24)) % 7
    weight = HOUR_PROFILE[(cfg.start.hour + hours) % 24] * np.where(weekday >= 5, 0.35, 1.0)
    picks = rng.choice(n_hours, size=cfg.n_rfqs, p=weight / weight.sum())
    t = start + (picks + rng.uniform(size=cfg.n_rfqs)) * 3600.0
    return np.sort(t)


def _market(t: FloatArray, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """Spot and ATM vol per underlying at the arrival times: log-vol OU, GBM spot."""
    n = len(t)
    spots = np.empty((len(SIM_UNDERLYINGS), n))
    vols = np.empty((len(SIM_UNDERLYINGS), n))
    dt = np.diff(t, prepend=t[0]) / DAY
    kappa, sd = 1.0 / 8.0, 0.18
    for k, u in enumerate(SIM_UNDERLYINGS):
        p = UNDERLYING_PARAMS[u]
        decay = np.exp(-kappa * dt)
        noise = sd * np.sqrt(1.0 - decay**2) * rng.standard_normal(n)
        x = np.empty(n)
        x_prev = 0.0
        for i in range(n):  # OU recursion
            x_prev = x_prev * decay[i] + noise[i]
            x[i] = x_prev
        sigma = p["vol"] * np.exp(x)
        dty = dt / YEAR_DAYS
        log_ret = -0.5 * sigma**2 * dty + sigma * np.sqrt(dty) * rng.standard_normal(n)
        spots[k] = p["spot"] * np.exp(np.cumsum(log_ret))
        vols[k] = sigma
    return spots, vols


def _expiry_candidates(as_of: date) -> list[date]:
    first = weekly_expiry(as_of)
    out = {first, first + timedelta(days=7), first + timedelta(days=14)}
    y, m = as_of.year, as_of.month
    for k in range(13):
        yy, mm = y + (m - 1 + k) // 12, (m - 1 + k) % 12 + 1
        if k <= 6 or mm in (3, 6, 9, 12):
            lf = last_friday(yy, mm)
            if lf > as_of:
                out.add(lf)
    return sorted(out)


def _round_step(x: float, step: float) -> float:
    return max(step, round(x / step) * step)


def _strikes(structure: str, center: float, width: float, step: float) -> list[float]:
    c = _round_step(center, step)
    w = max(step, _round_step(width, step))
    if structure in ("call", "put", "straddle", "call_calendar", "put_calendar"):
        ks = [c]
    elif structure in ("call_butterfly", "put_butterfly"):
        ks = [c - w, c, c + w]
    elif structure == "call_condor":
        ks = [c - 2 * w, c - w, c + w, c + 2 * w]
    else:
        ks = [c - w, c + w] if structure in ("strangle", "risk_reversal") else [c, c + w]
    lowest = ks[0]
    if lowest < step:
        ks = [k + (step - lowest) for k in ks]
    return ks


def _smile_vol(atm: float, f: float, k: float, t: float) -> float:
    m = math.log(k / f) / math.sqrt(max(t, 1e-4))
    m = max(-3.0, min(3.0, m))
    term = float((max(t, 1.0 / YEAR_DAYS) / 0.25) ** -0.04)
    return max(0.3 * atm, atm * term * (1.0 - 0.06 * m + 0.08 * m * m))


def simulate(cfg: SimConfig, progress: Callable[[int], None] | None = None) -> SimResult:
    """Run the simulation described by ``cfg``.

    Parameters
    ----------
    cfg
        What to simulate.
    progress
        Called with the number of RFQs processed since the last call.

    Returns
    -------
    SimResult
        Log tables, true probabilities and the oracle.
    """
    world = build_world(cfg.world_seed, cfg.n_dealers, cfg.n_clients)
    tab = DealerTable.from_world(world)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, cfg.world_seed, 0xE7E7]))
    ids = _Ids(np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1D5])))
    n = cfg.n_rfqs
    n_d = len(world.dealers)
    t = _arrivals(cfg, rng)
    spots, atm = _market(t, rng)

    # ------------------------------------------------------------ RFQ attributes
    clients = world.clients
    act = np.array([c.activity for c in clients])
    client = rng.choice(len(clients), size=n, p=act / act.sum())
    und = (rng.uniform(size=n) > 0.65).astype(np.int64)  # 0 BTC, 1 ETH
    weights = np.array([c.structure_weights for c in clients])
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    struct_idx = (rng.uniform(size=n)[:, None] > cdf[client]).sum(axis=1)
    struct_idx = np.minimum(struct_idx, len(SIM_STRUCTURES) - 1)
    two_way_share = np.array([c.two_way_share for c in clients])[client]
    buy_share = np.array([c.buy_share for c in clients])[client]
    u_side = rng.uniform(size=n)
    u_side2 = rng.uniform(size=n)
    side = np.where(u_side < two_way_share, "two_way", np.where(u_side2 < buy_share, "buy", "sell"))
    target_tenor = np.clip(np.exp(rng.normal(np.log(40.0), 0.9, n)), 2.0, 300.0)
    z_strike = rng.normal(0.0, 0.6, n)
    width_frac = rng.uniform(0.04, 0.14, n)
    ratio_n = np.where(rng.uniform(size=n) < 0.8, 2, 3)
    q_z = rng.normal(0.0, 0.8, n)
    hedged = rng.uniform(size=n) < 0.5
    channel = np.where(rng.uniform(size=n) < 0.7, "api", "chat")

    # desk markups (vol points): mostly near a sensible level, some far out (exploration)
    def markups() -> FloatArray:
        near = np.exp(rng.normal(np.log(0.55), 0.6, n))
        wide = rng.uniform(0.0, 3.5, n)
        out: FloatArray = np.where(rng.uniform(size=n) < 0.25, wide, near)
        return out

    mk_bid, mk_ask = markups(), markups()
    u_dir = rng.uniform(size=n)
    u_hit = rng.uniform(size=n)
    decide_after = cfg.deadline_s + 0.5 + rng.exponential(8.0, n)
    u_pass = rng.uniform(size=n)

    # legs
    leg_rfq: list[int] = []
    # instrument, expiry, strike, option type, ratio, direction
    leg_rows: list[tuple[str, date, float, str, int, str]] = []
    leg_f: list[float] = []
    leg_t: list[float] = []
    leg_vol: list[float] = []
    exp_cache: dict[date, list[date]] = {}
    quantity = np.empty(n)
    hedge_ref = np.full(n, np.nan)
    for i in range(n):
        u = SIM_UNDERLYINGS[und[i]]
        up = UNDERLYING_PARAMS[u]
        s = float(spots[und[i], i])
        sig = float(atm[und[i], i])
        now = t[i]
        as_of = _dt(now).date()
        cands = exp_cache.get(as_of)
        if cands is None:
            cands = [e for e in _expiry_candidates(as_of) if expiry_datetime(e).timestamp() > now]
            exp_cache[as_of] = cands
        tenors = np.array([(expiry_datetime(e).timestamp() - now) / DAY for e in cands])
        j = int(np.argmin(np.abs(np.log(tenors / target_tenor[i]))))
        structure = SIM_STRUCTURES[struct_idx[i]]
        if structure in (Structure.CALL_CALENDAR, Structure.PUT_CALENDAR):
            later = [k for k in range(len(cands)) if tenors[k] >= tenors[j] + 20.0]
            if not later:
                j = max(0, j - 3)
                later = [k for k in range(len(cands)) if tenors[k] >= tenors[j] + 20.0]
            expiries = [cands[j], cands[later[0]]] if later else [cands[0], cands[-1]]
        else:
            expiries = [cands[j]]
        t1 = (expiry_datetime(expiries[0]).timestamp() - now) / DAY / YEAR_DAYS
        fwd = s * math.exp(0.05 * t1)
        center = fwd * math.exp(float(z_strike[i]) * sig * math.sqrt(t1))
        ks = _strikes(structure.value, center, fwd * float(width_frac[i]) / 2.0, up["step"])
        legs = build_legs(
            u,
            structure,
            [Decimal(repr(k)) for k in ks],
            expiries,
            int(ratio_n[i]) if structure in (Structure.CALL_RATIO, Structure.PUT_RATIO) else None,
        )
        for leg in legs:
            ins = leg.instrument
            tl = (ins.expiry_at.timestamp() - now) / DAY / YEAR_DAYS
            fl = s * math.exp(0.05 * tl)
            kl = float(ins.strike)
            leg_rfq.append(i)
            leg_rows.append(
                (ins.name, ins.expiry, kl, ins.option_type.value, leg.ratio, leg.direction.value)
            )
            leg_f.append(fl)
            leg_t.append(tl)
            leg_vol.append(_smile_vol(sig, fl, kl, tl))
        step_q = 5.0 if u == "BTC" else 50.0
        q = max(up["min_qty"], up["median_qty"] * math.exp(float(q_z[i])))
        quantity[i] = max(up["min_qty"], round(q / step_q) * step_q)
        if hedged[i]:
            hedge_ref[i] = round(s / 10.0) * 10.0 if u == "BTC" else round(s, 0)
    leg_rfq_a = np.array(leg_rfq)
    lf, lt, lv = np.array(leg_f), np.array(leg_t), np.array(leg_vol)
    lk = np.array([r[2] for r in leg_rows])
    is_call = np.array([r[3] == "call" for r in leg_rows])
    sign = np.array([1.0 if r[5] == "buy" else -1.0 for r in leg_rows])
    ratio = np.array([float(r[4]) for r in leg_rows])
    g = black76(lf, lk, lt, lv, is_call)
    n_leg = sign * ratio * quantity[leg_rfq_a]
    starts = np.flatnonzero(np.r_[True, np.diff(leg_rfq_a) != 0])
    n_legs = np.diff(np.r_[starts, len(leg_rfq_a)])

    def per_rfq(x: FloatArray) -> FloatArray:
        out: FloatArray = np.add.reduceat(x, starts)
        return out

    h_leg = np.nan_to_num(hedge_ref[leg_rfq_a], nan=0.0)
    hedged_leg = hedged[leg_rfq_a]
    opt_delta = per_rfq(n_leg * g.delta)
    hedge_adj = per_rfq(np.where(hedged_leg, n_leg * g.delta * (h_leg - lf), 0.0))
    theo_total = per_rfq(n_leg * g.price) + hedge_adj
    vega_pt = per_rfq(n_leg * g.vega) * 0.01
    gross_vega = per_rfq(np.abs(n_leg) * g.vega) * 0.01
    notional = np.maximum.reduceat(np.abs(n_leg), starts) * spots[und, np.arange(n)]
    tenor_days = np.maximum.reduceat(lt, starts) * YEAR_DAYS
    vol_level = per_rfq(lv) / n_legs
    spot = spots[und, np.arange(n)]
    theo_unit = theo_total / quantity
    group = np.array([COMPLEXITY[SIM_STRUCTURES[k].value] for k in struct_idx])
    hours = ((t % DAY) // 3600).astype(np.int64)
    vz = vol_z(vol_level, und)
    t_days = t / DAY
    # sign of the vega the dealer takes on when it trades: the dealer sells what the client buys
    vega_sign = np.sign(vega_pt)
    direction = np.where(side == "buy", -vega_sign, np.where(side == "sell", vega_sign, 0.0))

    # ------------------------------------------------------------ dealer selection
    elig = tab.eligible[:, und].T  # (rfqs, dealers)
    n_elig = elig.sum(axis=1)
    k = rng.integers(cfg.min_dealers, cfg.max_dealers + 1, size=n)
    k = np.minimum(k, n_elig)
    keys = np.where(elig, rng.uniform(size=(n, n_d)), np.inf)
    order = np.argsort(keys, axis=1)
    pair_rfq_l: list[int] = []
    pair_dealer_l: list[int] = []
    pair_rank_l: list[int] = []
    for i in range(n):
        for r in range(int(k[i])):
            pair_rfq_l.append(i)
            pair_dealer_l.append(int(order[i, r]))
            pair_rank_l.append(r + 1)
    pr = np.array(pair_rfq_l, dtype=np.int64)
    pd_ = np.array(pair_dealer_l, dtype=np.int64)
    n_pairs = len(pr)
    base_inputs = DealerInputs(
        dealer=pd_,
        underlying=und[pr],
        group=group[pr],
        n_legs=n_legs[pr],
        notional_usd=notional[pr],
        tenor_days=tenor_days[pr],
        hour=hours[pr],
        vol_z=vz[pr],
        n_asked=k[pr],
        inventory_x=np.zeros(n_pairs),
        t_days=t_days[pr],
    )
    base = dealer_truth(tab, base_inputs, cfg.deadline_s)
    u_err = rng.uniform(size=n_pairs)
    u_will = rng.uniform(size=n_pairs)
    z_lat = rng.standard_normal(n_pairs)
    latency = np.exp(base.latency_mu + tab.lat_sigma[pd_] * z_lat)
    u_decl = rng.uniform(size=n_pairs)
    z_spread = rng.standard_normal(n_pairs)
    z_size = rng.standard_normal(n_pairs)
    capacity = np.array([UNDERLYING_PARAMS[u]["capacity"] for u in SIM_UNDERLYINGS])
    q_size = np.minimum(
        quantity[pr], np.round(capacity[und[pr]] * tab.capacity[pd_] * np.exp(0.3 * z_size), 1)
    )
    q_size = np.maximum(q_size, np.minimum(quantity[pr], 1.0))

    # client decisions (independent of the dealers)
    names = [c.name for c in clients]
    alpha = np.array([c.alpha for c in clients])[client]
    beta = np.array([c.beta for c in clients])[client]
    f_bid = client_hit(alpha, beta, notional, group, mk_bid)
    f_ask = client_hit(alpha, beta, notional, group, mk_ask)
    wants_buy = np.where(side == "buy", True, np.where(side == "sell", False, u_dir < 0.5))
    hit = u_hit < np.where(wants_buy, f_ask, f_bid)
    p_hit_ask = np.where(side == "buy", f_ask, np.where(side == "two_way", 0.5 * f_ask, np.nan))
    p_hit_bid = np.where(side == "sell", f_bid, np.where(side == "two_way", 0.5 * f_bid, np.nan))
    t_decide = t + np.minimum(decide_after, cfg.quote_valid_s - 1.0)

    # ------------------------------------------------------------ sequential part
    inv_scale = np.array([UNDERLYING_PARAMS[u]["inventory_scale_usd"] for u in SIM_UNDERLYINGS])
    inv = np.zeros((n_d, len(SIM_UNDERLYINGS)))
    inv_t = np.full((n_d, len(SIM_UNDERLYINGS)), t[0] if n else 0.0)
    hl = INVENTORY_HALF_LIFE_DAYS * DAY
    pending: list[tuple[float, int, int, float]] = []  # (time, dealer, und, vega change)
    inv_all = np.zeros((n, n_d))
    inv_x = np.zeros(n_pairs)
    answered = np.zeros(n_pairs, dtype=bool)
    willing_a = np.zeros(n_pairs, dtype=bool)
    acceptable = np.zeros(n_pairs, dtype=bool)
    spread = np.zeros(n_pairs)
    alloc = np.zeros(n_pairs)
    pair_start = np.r_[0, np.cumsum(k)]
    will_logit0 = base.willing_logit
    spread0 = base.spread_mean_vp
    in_time = latency <= cfg.deadline_s
    err = u_err < P_TRANSPORT_ERROR
    ref = reference_vp(n_legs)
    vega_unit = vega_pt / quantity
    report_every = max(1, n // 200)
    for i in range(n):
        now = t[i]
        while pending and pending[0][0] < now:
            ft, fd, fu, dv = heapq.heappop(pending)
            inv[fd, fu] = inv[fd, fu] * 2.0 ** (-(ft - inv_t[fd, fu]) / hl) + dv
            inv_t[fd, fu] = ft
        u = int(und[i])
        col = inv[:, u] * 2.0 ** (-(now - inv_t[:, u]) / hl)
        inv_all[i] = col
        acc_idx: list[int] = []
        for p in range(int(pair_start[i]), int(pair_start[i + 1])):
            d = int(pd_[p])
            x = float(col[d]) * float(direction[i]) / float(inv_scale[u])
            inv_x[p] = x
            xc = -3.0 if x < -3.0 else 3.0 if x > 3.0 else x
            logit = float(will_logit0[p]) - float(tab.inv_slope[d]) * xc
            willing = u_will[p] < 1.0 / (1.0 + math.exp(-logit))
            willing_a[p] = willing
            ok = bool(willing and in_time[p] and not err[p])
            answered[p] = ok
            s_p = (
                float(spread0[p])
                + float(tab.spread_inv[d]) * xc
                + float(tab.spread_sd[d]) * float(z_spread[p])
            )
            spread[p] = s_p
            if ok and s_p <= ref[i]:
                acceptable[p] = True
                acc_idx.append(p)
        if hit[i] and acc_idx:
            qty = float(quantity[i])
            sizes = [float(q_size[p]) for p in acc_idx]
            total = sum(sizes)
            scale_q = min(1.0, qty / total)
            dealer_dir = -1.0 if wants_buy[i] else 1.0  # dealer sells what the client buys
            for p, s_q in zip(acc_idx, sizes, strict=True):
                a = max(0.1, math.floor(s_q * scale_q * 10.0 + 1e-9) / 10.0)
                alloc[p] = a
                dv = dealer_dir * float(vega_unit[i]) * a
                heapq.heappush(pending, (float(t_decide[i]) + 0.2, int(pd_[p]), u, dv))
        if progress is not None and (i + 1) % report_every == 0:
            progress(report_every)
    if progress is not None and n % report_every:
        progress(n % report_every)

    final_inputs = DealerInputs(
        dealer=pd_,
        underlying=und[pr],
        group=group[pr],
        n_legs=n_legs[pr],
        notional_usd=notional[pr],
        tenor_days=tenor_days[pr],
        hour=hours[pr],
        vol_z=vz[pr],
        n_asked=k[pr],
        inventory_x=inv_x,
        t_days=t_days[pr],
    )
    truth = dealer_truth(tab, final_inputs, cfg.deadline_s)

    # ------------------------------------------------------------ rows
    rows = _Rows()
    rfq_ids = [ids.new(float(x)) for x in t]
    snap_ids = [ids.new(float(x)) for x in t]
    cq_ids = [ids.new(float(x) + 0.02) for x in t]
    dealer_ids = [
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"rfqdesk-sim/{world.seed}/{d.name}"))
        for d in world.dealers
    ]
    desk_side = np.where(wants_buy, "sell", "buy")  # the desk's side toward the client
    cover_side = np.where(wants_buy, "buy", "sell")  # toward dealers
    for dn, did in zip(world.dealers, dealer_ids, strict=True):
        rows.add(
            "dealer",
            id=did,
            name=dn.name,
            underlyings=_json(list(dn.underlyings)),
            enabled=True,
            created_at=cfg.start,
        )
    dr_ids: list[str] = []
    leg_pos = 0
    for i in range(n):
        t0 = float(t[i])
        rid = rfq_ids[i]
        u = SIM_UNDERLYINGS[und[i]]
        s = float(spot[i])
        q = float(quantity[i])
        nl = int(n_legs[i])
        legs_here = range(leg_pos, leg_pos + nl)
        leg_pos += nl
        # market snapshot and legs
        fwd_map: dict[str, float] = {}
        vol_map: dict[str, float] = {}
        for li, lidx in enumerate(legs_here):
            iname, exp, kk, typ, rat, dirn = leg_rows[lidx]
            fwd_map[exp.isoformat()] = round(float(lf[lidx]), 4)
            vol_map[iname] = round(float(lv[lidx]), 6)
            rows.add(
                "rfq_leg",
                id=ids.new(t0),
                rfq_id=rid,
                leg_index=li,
                instrument=iname,
                expiry=exp,
                strike=kk,
                option_type=typ,
                ratio=rat,
                direction=dirn,
            )
        rows.add(
            "market_snapshot",
            id=snap_ids[i],
            underlying=u,
            taken_at=_dt(t0),
            source="sim",
            spot=round(s, 6),
            data=_json(
                {"atm_vol": round(float(atm[und[i], i]), 6), "forwards": fwd_map, "vols": vol_map}
            ),
        )
        # client quote
        gv = float(gross_vega[i])
        per_vp = gv / q  # USD per unit per vol point of markup
        theo = float(theo_unit[i])
        quote_bid = side[i] in ("sell", "two_way")
        quote_ask = side[i] in ("buy", "two_way")
        bid_usd = theo - float(mk_bid[i]) * per_vp if quote_bid else None
        ask_usd = theo + float(mk_ask[i]) * per_vp if quote_ask else None
        desk_p_bid = 1.0 / (1.0 + math.exp(DESK_HIT_ALPHA + DESK_HIT_BETA * float(mk_bid[i])))
        desk_p_ask = 1.0 / (1.0 + math.exp(DESK_HIT_ALPHA + DESK_HIT_BETA * float(mk_ask[i])))
        traded = bool(hit[i])
        dec = float(t_decide[i])
        expires = t0 + cfg.quote_valid_s
        if traded:
            cq_status, final_state = "accepted", "filled"
        elif u_pass[i] < 0.8:
            cq_status, final_state = "passed", "passed"
        else:
            cq_status, final_state = "expired", "expired"
        expl: dict[str, Any] = {
            "units": "USD per structure unit; vol points are gross-vega vol points",
            "source": "sim",
        }
        expl["bid"] = (
            {
                "markup_usd": float(mk_bid[i]) * per_vp,
                "markup_vol_points": float(mk_bid[i]),
                "hit_probability": desk_p_bid,
            }
            if quote_bid
            else None
        )
        expl["ask"] = (
            {
                "markup_usd": float(mk_ask[i]) * per_vp,
                "markup_vol_points": float(mk_ask[i]),
                "hit_probability": desk_p_ask,
            }
            if quote_ask
            else None
        )
        greeks = {
            "delta_coins": 0.0 if hedged[i] else float(opt_delta[i]),
            "option_delta_coins": float(opt_delta[i]),
            "hedge_delta_coins": -float(opt_delta[i]) if hedged[i] else 0.0,
            "vega_usd_per_vol_point": float(vega_pt[i]),
            "gross_vega_usd_per_vol_point": gv,
            "theo_usd_total": float(theo_total[i]),
            "hedge_adjustment_usd": float(hedge_adj[i]),
            "spot": s,
            "legs": [
                {
                    "forward": float(lf[j]),
                    "t_years": float(lt[j]),
                    "vol": float(lv[j]),
                    "price_usd": float(g.price[j]),
                    "delta": float(g.delta[j]),
                }
                for j in legs_here
            ],
        }
        rows.add(
            "client_quote",
            id=cq_ids[i],
            rfq_id=rid,
            snapshot_id=snap_ids[i],
            created_at=_dt(t0 + 0.02),
            valid_until=_dt(expires),
            theo_usd=theo,
            theo_coin=theo / s,
            bid_coin=bid_usd / s if bid_usd is not None else None,
            ask_coin=ask_usd / s if ask_usd is not None else None,
            bid_usd=bid_usd,
            ask_usd=ask_usd,
            p_hit_bid=desk_p_bid if quote_bid else None,
            p_hit_ask=desk_p_ask if quote_ask else None,
            model_version="logistic-config",
            status=cq_status,
            greeks=_json(greeks),
            explanation=_json(expl),
        )
        # events
        ev: list[tuple[float, str | None, str, str | None, str]] = [
            (t0, None, "new", None, "sim-sales"),
            (t0, "new", "quoting", None, "pricing"),
            (t0 + 0.02, "quoting", "quoted", None, "pricing"),
        ]
        shown = ask_usd if wants_buy[i] else bid_usd  # the price of the side the client wants
        client_usd = float(shown) if shown is not None else math.nan
        if traded:
            accepted_side = "buy" if wants_buy[i] else "sell"
            ev.append(
                (
                    dec,
                    "quoted",
                    "accepted",
                    f"{accepted_side} {q:g} at {client_usd / s:.8f}",
                    names[client[i]],
                )
            )
            ev.append((dec + 0.2, "accepted", "filled", f"filled {q:g} of {q:g}", "fills"))
            end_t = dec + 0.2
        elif final_state == "passed":
            accepted_side = None
            ev.append((dec, "quoted", "passed", None, names[client[i]]))
            end_t = dec
        else:
            accepted_side = None
            ev.append((expires, "quoted", "expired", "deadline passed", "sweeper"))
            end_t = expires
        for seq, (at, fr, to, reason, actor) in enumerate(ev, start=1):
            rows.add(
                "rfq_event",
                id=ids.new(at),
                rfq_id=rid,
                seq=seq,
                at=_dt(at),
                from_state=fr,
                to_state=to,
                reason=reason,
                actor=actor,
            )
        rows.add(
            "rfq",
            id=rid,
            created_at=_dt(t0),
            updated_at=_dt(end_t),
            expires_at=_dt(expires),
            state=final_state,
            client=names[client[i]],
            channel=str(channel[i]),
            underlying=u,
            structure=SIM_STRUCTURES[struct_idx[i]].value,
            side=str(side[i]),
            quantity=q,
            hedge_reference=None if math.isnan(hedge_ref[i]) else float(hedge_ref[i]),
            state_reason=ev[-1][3],
            accepted_side=accepted_side,
            filled_quantity=q if traded else None,
            version=len(ev),
        )
        # dealer requests and quotes
        sent = t0 + 0.01
        residual = q
        for p in range(int(pair_start[i]), int(pair_start[i + 1])):
            d = int(pd_[p])
            drid = ids.new(t0 + 0.005)
            dr_ids.append(drid)
            lat = float(latency[p])
            first_quote_at = None
            error = None
            quote_row: dict[str, Any] | None = None
            if err[p]:
                outcome, error = "error", "HTTP 502 from the dealer's endpoint"
            elif answered[p]:
                first_quote_at = sent + lat
                spread_usd = float(spread[p]) * per_vp
                bid_c = (theo - spread_usd) / s if side[i] in ("sell", "two_way") else None
                ask_c = (theo + spread_usd) / s if side[i] in ("buy", "two_way") else None
                if traded:
                    outcome = "won" if alloc[p] > 0 else "lost"
                    status = outcome
                else:
                    outcome, status = "quoted", "expired"
                quote_row = {
                    "bid_coin": bid_c,
                    "ask_coin": ask_c,
                    "size": float(q_size[p]),
                    "firm": True,
                    "status": status,
                    "refusal_reason": None,
                }
            elif (
                not willing_a[p]
                and u_decl[p] < tab.decline_share[d]
                and 0.5 * lat <= cfg.deadline_s
            ):
                outcome = "declined"
                first_quote_at = sent + 0.5 * lat
                quote_row = {
                    "bid_coin": None,
                    "ask_coin": None,
                    "size": None,
                    "firm": False,
                    "status": "refused",
                    "refusal_reason": _refusal_reason(truth, p, tab, d, int(group[i])),
                }
            else:
                outcome = "no_response"
            fill_q = float(alloc[p]) if alloc[p] > 0 else None
            rows.add(
                "dealer_request",
                id=drid,
                rfq_id=rid,
                dealer_id=dealer_ids[d],
                created_at=_dt(t0 + 0.005),
                rank=int(pair_rank_l[p]),
                selected=True,
                p_answer=None,
                p_win=None,
                model_version="sim-explore",
                disclosed_side=None if side[i] == "two_way" else str(cover_side[i]),
                sent_at=_dt(sent),
                deadline_at=_dt(sent + cfg.deadline_s),
                first_quote_at=_dt(first_quote_at) if first_quote_at else None,
                outcome=outcome,
                error=error,
                fill_quantity=fill_q,
            )
            if quote_row is not None:
                dqid = ids.new(first_quote_at or sent)
                rows.add(
                    "dealer_quote",
                    id=dqid,
                    dealer_request_id=drid,
                    rfq_id=rid,
                    dealer_id=dealer_ids[d],
                    received_at=_dt(first_quote_at or sent),
                    **quote_row,
                )
                if fill_q:
                    price = quote_row["ask_coin"] if wants_buy[i] else quote_row["bid_coin"]
                    rows.add(
                        "fill",
                        id=ids.new(dec + 0.2),
                        rfq_id=rid,
                        filled_at=_dt(dec + 0.2),
                        counterparty="dealer",
                        dealer_id=dealer_ids[d],
                        dealer_quote_id=dqid,
                        side=str(cover_side[i]),
                        quantity=fill_q,
                        price_coin=price,
                        price_usd=price * s,
                    )
                    residual -= fill_q
        if traded:
            rows.add(
                "fill",
                id=ids.new(dec + 0.1),
                rfq_id=rid,
                filled_at=_dt(dec + 0.1),
                counterparty="client",
                dealer_id=None,
                dealer_quote_id=None,
                side=str(desk_side[i]),
                quantity=q,
                price_coin=client_usd / s,
                price_usd=client_usd,
            )
            if residual > 1e-9:
                rows.add(
                    "fill",
                    id=ids.new(dec + 0.2),
                    rfq_id=rid,
                    filled_at=_dt(dec + 0.2),
                    counterparty="desk",
                    dealer_id=None,
                    dealer_quote_id=None,
                    side=str(cover_side[i]),
                    quantity=round(residual, 6),
                    price_coin=client_usd / s,
                    price_usd=client_usd,
                )

    tables = tables_from_columns(rows.columns)
    truth_tables = {
        "dealer_request": pa.table(
            {
                "id": dr_ids,
                "rfq_id": [rfq_ids[i] for i in pr],
                "dealer": [world.dealers[d].name for d in pd_],
                "n_asked": k[pr],
                "p_answer": truth.p_answer,
                "p_acceptable": truth.p_acceptable,
                "p_win": truth.p_win,
                "inventory_x": inv_x,
            }
        ),
        "client_quote": pa.table(
            {
                "id": cq_ids,
                "rfq_id": rfq_ids,
                "p_hit_bid": pa.array(p_hit_bid, from_pandas=True),
                "p_hit_ask": pa.array(p_hit_ask, from_pandas=True),
            }
        ),
    }
    oracle = Oracle(
        table=tab,
        dealer_names=tuple(d.name for d in world.dealers),
        deadline_s=cfg.deadline_s,
        rfq_ids=tuple(rfq_ids),
        underlying=und,
        group=group,
        n_legs=n_legs,
        notional_usd=notional,
        tenor_days=tenor_days,
        hour=hours,
        vol_z=vz,
        t_days=t_days,
        direction=direction,
        inventory=inv_all,
        eligible=elig,
    )
    stats = {
        "rfqs": n,
        "dealer_requests": n_pairs,
        "answer_rate": float(answered.mean()) if n_pairs else 0.0,
        "client_hit_rate": float(hit.mean()) if n else 0.0,
        "days": float((t[-1] - t[0]) / DAY) if n else 0.0,
    }
    return SimResult(cfg, world, tables, truth_tables, oracle, stats)


def _refusal_reason(truth: DealerTruth, p: int, tab: DealerTable, d: int, group: int) -> str:
    if truth.size_penalty[p] < -1.0:
        return "size too large"
    if truth.tenor_penalty[p] < 0:
        return "tenor outside our range"
    if tab.group[d, group] < -1.5:
        return "structure not supported"
    if truth.hour_penalty[p] < 0:
        return "desk closed"
    return "no appetite"


class _Rows:
    """Column lists per table, filled row by row."""

    def __init__(self) -> None:
        from ml.export import SCHEMA

        self.columns: dict[str, dict[str, list[Any]]] = {
            name: {f.name: [] for f in schema} for name, schema in SCHEMA.items()
        }

    def add(self, table: str, **values: Any) -> None:
        cols = self.columns[table]
        for name, col in cols.items():
            col.append(values[name])
