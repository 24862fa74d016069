r"""A residual plan's book-keeping, free of I/O: the model, the schedule, the slices, the costs.

A plan works ``X`` package *units* (each unit trades every leg pro rata to its ratio) on an
Almgren–Chriss schedule of ``N`` slices of ``τ`` seconds, slice ``k`` due at ``start + (k−1)τ``
(it trades at S_{k−1}, as in the discrete model). Each schedule entry keeps the cumulative units
targeted by the end of its slice; a slice that falls short re-solves the slices left from what is
left (:func:`app.quant.scheduling.reschedule`), and after the horizon up to ``max_extra_slices``
more slices try to finish. Legs are released by :func:`app.quant.scheduling.release_legs`, so the
delta of legs done beyond complete units stays within the band.

Everything here works on :class:`PlanState`, a plain copy of the stored plan and its child orders;
the worker loads it, lets these functions decide, and stores the result.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from app.execution.config import ExecutionSettings
from app.marketdata.snapshot import YEAR_SECONDS
from app.quant.scheduling import ExecutionModel, optimal_schedule, release_legs, reschedule

__all__ = [
    "OPEN_STATES",
    "Child",
    "LegShortfall",
    "LegSpec",
    "PlanState",
    "Shortfall",
    "implementation_shortfall",
    "leg_specs",
    "new_plan",
    "package_model",
]

#: child orders not yet final: persisted (maybe sent), or resting at the venue
OPEN_STATES = frozenset({"new", "sent"})
PLAN_FORMAT = 1


@dataclass(frozen=True, slots=True)
class LegSpec:
    """One leg as the plan trades it.

    ``side`` is the desk's side on the venues; ``delta`` and ``beta`` are per contract *long*
    (Black-76 delta in coins; coin-price sensitivity to the underlying's Brownian factor).
    """

    instrument: str
    ratio: int
    side: str
    arrival_price_coin: float | None = None
    delta: float = 0.0
    beta_coin_per_sqrt_s: float = 0.0

    @property
    def sign(self) -> int:
        """+1 when the desk buys the leg, −1 when it sells it."""
        return 1 if self.side == "buy" else -1

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "ratio": self.ratio,
            "side": self.side,
            "arrival_price_coin": self.arrival_price_coin,
            "delta": self.delta,
            "beta_coin_per_sqrt_s": self.beta_coin_per_sqrt_s,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LegSpec:
        return cls(
            instrument=str(d["instrument"]),
            ratio=int(d["ratio"]),
            side=str(d["side"]),
            arrival_price_coin=d.get("arrival_price_coin"),
            delta=float(d.get("delta", 0.0)),
            beta_coin_per_sqrt_s=float(d.get("beta_coin_per_sqrt_s", 0.0)),
        )


def leg_specs(
    legs: Sequence[tuple[str, int, str]], greeks: Mapping[str, Any], desk_side: str
) -> list[LegSpec]:
    """Legs of a package as the desk trades them, from the client quote's greeks.

    Parameters
    ----------
    legs
        ``(instrument, ratio, direction)`` per leg, direction for the structure's buyer.
    greeks
        The quote's greeks: ``spot`` and per leg ``forward``, ``vol``, ``price_usd`` and
        ``delta`` (any missing: no arrival price, zero delta and sensitivity for that leg).
    desk_side
        ``"buy"`` if the desk buys the structure on the venues, ``"sell"`` otherwise.
    """
    per_leg = list(greeks.get("legs") or [])
    spot = float(greeks.get("spot") or 0.0)
    out = []
    for i, (instrument, ratio, direction) in enumerate(legs):
        side = direction if desk_side == "buy" else ("sell" if direction == "buy" else "buy")
        g = per_leg[i] if i < len(per_leg) else {}
        arrival = delta = beta = None
        if spot > 0 and g.get("price_usd") is not None:
            arrival = float(g["price_usd"]) / spot
            delta = float(g.get("delta", 0.0))
            fwd, vol = float(g.get("forward", spot)), float(g.get("vol", 0.0))
            beta = (delta * fwd / spot - arrival) * vol / math.sqrt(YEAR_SECONDS)
        out.append(LegSpec(instrument, int(ratio), side, arrival, delta or 0.0, beta or 0.0))
    return out


def package_model(
    legs: Sequence[LegSpec], quantity: float, settings: ExecutionSettings
) -> ExecutionModel:
    r"""Almgren–Chriss parameters of one package unit on the configured venues.

    Parameters
    ----------
    legs
        The package's legs.
    quantity
        X, package units to trade.
    settings
        Horizon, slices, venues, permanent impact, drift, volatility floor.

    Returns
    -------
    ExecutionModel
        With ρ_v = D_v/w_v the venues' book densities, k = 1/Σρ_v their combined impact slope
        and ε̄ = kΣρ_v(s_v + f_v) their density-weighted half spread plus fee (the marginal cost
        of a slice split optimally when every venue takes part), and r_i the ratios:
        ε = ε̄Σr_i, η = τkΣr_i²/2 (so η/τ·n² is the slice's walk up the books), γ = γ_venue·Σr_i²,
        α = α_contract·Σr_i, σ = |Σ sign_i r_i β_i| (floored).
    """
    venues = settings.enabled_venues
    if not venues:
        raise ValueError("no venue is enabled")
    rho = [v.depth_contracts / v.book_width_coin for v in venues]
    slope = 1.0 / math.fsum(rho)
    eps = slope * math.fsum(
        r * (v.half_spread_coin + v.fee_coin_per_contract) for r, v in zip(rho, venues, strict=True)
    )
    sum_r = float(sum(leg.ratio for leg in legs))
    sum_r2 = float(sum(leg.ratio**2 for leg in legs))
    tau = settings.horizon_s / settings.n_slices
    sigma = abs(math.fsum(leg.sign * leg.ratio * leg.beta_coin_per_sqrt_s for leg in legs))
    return ExecutionModel(
        shares=quantity,
        horizon=settings.horizon_s,
        n_periods=settings.n_slices,
        sigma=max(sigma, settings.min_price_vol_coin_per_sqrt_s),
        eta=0.5 * tau * slope * sum_r2,
        gamma=settings.permanent_impact_coin_per_contract * sum_r2,
        epsilon=eps * sum_r,
        drift=settings.expected_drift_coin_per_s * sum_r,
    )


def new_plan(
    legs: Sequence[LegSpec],
    quantity: Decimal,
    start: datetime,
    settings: ExecutionSettings,
    *,
    underlying: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(params, schedule)`` of a new plan: the optimal schedule from ``start``.

    Raises
    ------
    app.quant.errors.QuantError
        The venues' parameters make no valid model (e.g. permanent above temporary impact).
    """
    model = package_model(legs, float(quantity), settings)
    lam = settings.risk_aversion_per_coin
    sched = optimal_schedule(model, lam)
    tau = model.tau
    x = float(quantity)
    schedule = [
        _entry(k + 1, start + timedelta(seconds=k * tau), x - float(sched.holdings[k + 1]), n)
        for k, n in enumerate(sched.trades.tolist())
    ]
    schedule[-1]["target_units"] = x
    params: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "underlying": underlying,
        "start_at": start.isoformat(),
        "slice_s": tau,
        "risk_aversion_per_coin": lam,
        "delta_band_coins": settings.band_for(underlying),
        "lot_size": str(settings.lot_size),
        "max_extra_slices": settings.max_extra_slices,
        "extra_slices": 0,
        "resolves": 0,
        "model": {
            "shares": model.shares,
            "horizon_s": model.horizon,
            "n_slices": model.n_periods,
            "sigma": model.sigma,
            "eta": model.eta,
            "gamma": model.gamma,
            "epsilon": model.epsilon,
            "drift": model.drift,
        },
        "predicted": {"expected_cost_coin": sched.expected_cost, "std_coin": sched.std},
        "planned_units": [e["target_units"] for e in schedule],
        "legs": [leg.to_dict() for leg in legs],
        "venue_fees": {v.name: v.fee_coin_per_contract for v in settings.enabled_venues},
    }
    return params, schedule


def copy_json(value: Any) -> Any:
    """Copy of a JSON-like value (dicts and lists copied, scalars shared): deepcopy's result
    for plan params and schedules, several times faster."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _entry(index: int, due: datetime, target: float, planned: float) -> dict[str, Any]:
    return {
        "slice": index,
        "due_at": due.isoformat(),
        "target_units": target,
        "planned_units": planned,
        "state": "pending",
        "done_units": None,
        "fills": [],
        "notes": [],
    }


@dataclass(slots=True)
class Child:
    """A child order, as stored (a plain copy of the ``child_order`` row)."""

    client_order_id: str
    slice_index: int
    venue: str
    instrument: str
    side: str
    quantity: Decimal
    limit_price: Decimal | None
    created_at: datetime
    state: str = "new"
    filled_quantity: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    sent_at: datetime | None = None

    @property
    def leg(self) -> int:
        """Leg index, read from the deterministic id ``plan:slice:leg:venue``."""
        return int(self.client_order_id.split(":")[2])


@dataclass(slots=True)
class PlanState:
    """A plan and its child orders; the functions below change it, the worker stores it."""

    id: uuid.UUID
    rfq_id: uuid.UUID
    state: str
    side: str
    quantity: Decimal
    arrival_price_coin: Decimal | None
    params: dict[str, Any]
    schedule: list[dict[str, Any]]
    children: list[Child] = field(default_factory=list)
    created_at: datetime | None = None

    def copy(self) -> PlanState:
        """An independent copy (the JSON parts copied, the child orders' immutable fields
        shared)."""
        return replace(
            self,
            params=copy_json(self.params),
            schedule=copy_json(self.schedule),
            children=[replace(c) for c in self.children],
        )

    # ------------------------------------------------------------------ what is known
    @property
    def legs(self) -> list[LegSpec]:
        return [LegSpec.from_dict(d) for d in self.params["legs"]]

    @property
    def lot(self) -> Decimal:
        return Decimal(str(self.params.get("lot_size", "0.1")))

    @property
    def slice_s(self) -> float:
        return float(self.params["slice_s"])

    def model(self) -> ExecutionModel:
        m = self.params["model"]
        return ExecutionModel(
            shares=float(m["shares"]),
            horizon=float(m["horizon_s"]),
            n_periods=int(m["n_slices"]),
            sigma=float(m["sigma"]),
            eta=float(m["eta"]),
            gamma=float(m["gamma"]),
            epsilon=float(m["epsilon"]),
            drift=float(m.get("drift", 0.0)),
        )

    def filled(self) -> list[Decimal]:
        """Contracts filled per leg."""
        out = [Decimal(0)] * len(self.params["legs"])
        for c in self.children:
            out[c.leg] += c.filled_quantity
        return out

    def committed(self) -> list[Decimal]:
        """Contracts filled or possibly still filling (open orders) per leg."""
        out = self.filled()
        for c in self.children:
            if c.state in OPEN_STATES:
                out[c.leg] += c.quantity - c.filled_quantity
        return out

    def units_done(self) -> float:
        """Complete package units done: min over legs of filled/ratio."""
        return min(float(f) / leg.ratio for f, leg in zip(self.filled(), self.legs, strict=True))

    def is_done(self) -> bool:
        return all(
            f >= leg.ratio * self.quantity for f, leg in zip(self.filled(), self.legs, strict=True)
        )

    # ------------------------------------------------------------------------ slices
    def sending_index(self) -> int | None:
        """The slice whose orders were sent (or were about to be) but not yet accounted."""
        for i, e in enumerate(self.schedule):
            if e["state"] == "sending":
                return i
        return None

    def due_index(self, now: datetime) -> int | None:
        """The slice to work now: the latest pending one that is due; the ones it overtakes are
        marked missed and the schedule is re-solved from it (the worker was away)."""
        due = [
            i
            for i, e in enumerate(self.schedule)
            if e["state"] == "pending" and datetime.fromisoformat(e["due_at"]) <= now
        ]
        if not due:
            return None
        for i in due[:-1]:
            self.schedule[i]["state"] = "missed"
        if len(due) > 1:
            self.resolve_from(due[-1])
        return due[-1]

    def releases(self, index: int) -> list[Decimal]:
        """Contracts of each leg to send for slice ``index`` (whole lots; the exact remainder
        when the slice reaches the end of the leg)."""
        legs, lot = self.legs, self.lot
        filled, committed = self.filled(), self.committed()
        raw = release_legs(
            float(self.schedule[index]["target_units"]),
            float(self.quantity),
            [leg.ratio for leg in legs],
            [float(f) for f in filled],
            [float(c) for c in committed],
            [leg.sign * leg.delta for leg in legs],
            float(self.params["delta_band_coins"]),
        )
        out = []
        for leg, c, q in zip(legs, committed, raw.tolist(), strict=True):
            left = leg.ratio * self.quantity - c
            if left <= 0:
                out.append(Decimal(0))
            elif q >= float(left) - 0.5 * float(lot):
                out.append(left)
            else:
                out.append((Decimal(repr(q)) / lot).to_integral_value(ROUND_DOWN) * lot)
        return out

    def finish_slice(self, index: int) -> None:
        """Account slice ``index`` once its orders are final: units done, completion,
        re-solving what is left when it fell short, extra slices after the horizon."""
        entry = self.schedule[index]
        done = self.units_done()
        entry["state"], entry["done_units"] = "done", done
        if self.is_done():
            self.state = "completed"
            return
        if index + 1 < len(self.schedule):
            # releases are floored to whole lots: less than one lot short is rounding
            if done < float(entry["target_units"]) - float(self.lot) - 1e-9:
                self.resolve_from(index + 1)
            return
        if int(self.params.get("extra_slices", 0)) >= int(self.params.get("max_extra_slices", 0)):
            self.state = "incomplete"
            return
        self.params["extra_slices"] = int(self.params.get("extra_slices", 0)) + 1
        due = datetime.fromisoformat(entry["due_at"]) + timedelta(seconds=self.slice_s)
        x = float(self.quantity)
        self.schedule.append(_entry(len(self.schedule) + 1, due, x, x - done))

    def resolve_from(self, index: int) -> None:
        """Re-solve the optimal schedule of what is left over the slices from ``index`` on."""
        entries = self.schedule[index:]
        done, x = self.units_done(), float(self.quantity)
        left = x - done
        self.params["resolves"] = int(self.params.get("resolves", 0)) + 1
        if left <= 0:
            for e in entries:
                e["target_units"], e["planned_units"] = x, 0.0
            return
        sched = reschedule(
            self.model(), float(self.params["risk_aversion_per_coin"]), left, len(entries)
        )
        for e, h, n in zip(entries, sched.holdings[1:], sched.trades, strict=True):
            e["target_units"], e["planned_units"] = done + (left - float(h)), float(n)
        entries[-1]["target_units"] = x

    def add_fills(
        self, index: int, venue: str, leg: int, fills: Sequence[Mapping[str, Any]]
    ) -> None:
        """Record venue fills on slice ``index`` (a trade id is recorded once)."""
        entry = self.schedule[index]
        seen = {f["trade_id"] for f in entry["fills"]}
        for f in fills:
            if f["trade_id"] not in seen:
                entry["fills"].append({**f, "venue": venue, "leg": leg})
                seen.add(f["trade_id"])

    def slice_position(self, slice_index: int) -> int:
        """Position in the schedule of the slice numbered ``slice_index``."""
        for i, e in enumerate(self.schedule):
            if int(e["slice"]) == slice_index:
                return i
        raise KeyError(slice_index)

    def fills(self) -> list[dict[str, Any]]:
        """Every venue fill, in slice order."""
        return [{**f, "slice": e["slice"]} for e in self.schedule for f in e["fills"]]


# --------------------------------------------------------------------------- shortfall
@dataclass(frozen=True, slots=True)
class LegShortfall:
    instrument: str
    side: str
    target: Decimal
    filled: Decimal
    avg_price_coin: float | None
    arrival_price_coin: float | None
    shortfall_coin: float | None


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Implementation shortfall of what was done, against the arrival (decision) prices.

    ``cost_coin`` = Σ_legs side·Σ q(p − arrival) + fees (positive: a cost), in coin; None when
    a leg has no arrival price. ``predicted_coin`` is the model's expected cost of the whole
    plan, for comparison once it completes.
    """

    units_done: float
    units_left: float
    cost_coin: float | None
    fees_coin: float
    cost_per_unit_coin: float | None
    predicted_coin: float | None
    predicted_std_coin: float | None
    legs: tuple[LegShortfall, ...]


def implementation_shortfall(plan: PlanState) -> Shortfall:
    """The plan's implementation shortfall so far (see :class:`Shortfall`)."""
    legs = plan.legs
    fees_table: Mapping[str, float] = plan.params.get("venue_fees", {})
    notional = [Decimal(0)] * len(legs)
    fees = 0.0
    for c in plan.children:
        if c.filled_quantity > 0 and c.avg_price is not None:
            notional[c.leg] += c.filled_quantity * c.avg_price
            fees += float(c.filled_quantity) * fees_table.get(c.venue, 0.0)
    out, total, complete = [], 0.0, True
    for leg, filled, paid in zip(legs, plan.filled(), notional, strict=True):
        avg = float(paid / filled) if filled > 0 else None
        cost = None
        if leg.arrival_price_coin is not None:
            cost = leg.sign * (float(paid) - float(filled) * leg.arrival_price_coin)
            total += cost
        else:
            complete = False
        out.append(
            LegShortfall(
                leg.instrument,
                leg.side,
                leg.ratio * plan.quantity,
                filled,
                avg,
                leg.arrival_price_coin,
                cost,
            )
        )
    done = plan.units_done()
    cost_coin = total + fees if complete else None
    predicted = plan.params.get("predicted", {})
    return Shortfall(
        units_done=done,
        units_left=float(plan.quantity) - done,
        cost_coin=cost_coin,
        fees_coin=fees,
        cost_per_unit_coin=cost_coin / done if cost_coin is not None and done > 0 else None,
        predicted_coin=predicted.get("expected_cost_coin"),
        predicted_std_coin=predicted.get("std_coin"),
        legs=tuple(out),
    )
