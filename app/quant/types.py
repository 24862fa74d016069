"""Frozen result types shared by the quant modules.

All containers are immutable (``frozen=True``). Array-valued containers use ``eq=False``:
element-wise ``==`` on arrays has no single truth value, so identity comparison is the only
meaningful default; compare fields with :func:`numpy.testing.assert_allclose` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "ExecutionCostSample",
    "ExecutionFrontier",
    "ExecutionSchedule",
    "FloatArray",
    "MarkupResult",
    "MyopicQuote",
    "OptionGreeks",
    "PackageRisk",
    "QuoteLadder",
    "QuotePair",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False, slots=True)
class OptionGreeks:
    """Price and first/second-order sensitivities, element-wise over the broadcast inputs.

    Units depend on the producing function; for :func:`app.quant.pricing.black76` they are
    USD per 1 coin of underlying: ``price`` (USD), ``delta`` (d price / d forward, coins),
    ``gamma`` (d delta / d forward, 1/USD), ``vega`` (per 1.00 = 100 vol points), ``theta``
    (d price / d calendar time, USD per year) and ``rho`` (per 1.00 = 10 000 bp of rate).
    """

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray


@dataclass(frozen=True, eq=False, slots=True)
class PackageRisk:
    """Theo and aggregated greeks of a multi-leg package (signed sums over legs).

    ``theo_usd`` already contains ``hedge_adjustment_usd``; ``delta`` is the delta after the
    hedge (0 when a hedge reference was given), ``hedge_delta`` the underlying quantity traded
    in the hedge (``-`` package option delta). ``leg_*`` arrays are per 1 unit long of each leg
    (not multiplied by the signed size). See :func:`app.quant.pricing.price_package`.
    """

    theo_usd: float
    theo_coin: float
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    leg_prices_usd: FloatArray
    leg_deltas: FloatArray
    leg_vegas: FloatArray
    hedge_delta: float
    hedge_adjustment_usd: float


@dataclass(frozen=True, slots=True)
class MarkupResult:
    """Optimal markup ``δ*`` of ``f(δ)(δ − c)``, its hit probability ``f(δ*)`` and the
    expected P&L ``f(δ*)(δ* − c)``; same units as the markup grid / marginal cost."""

    markup: float
    hit_probability: float
    expected_pnl: float


@dataclass(frozen=True, eq=False, slots=True)
class MyopicQuote:
    """One-shot optimal half-spread ``δ*`` with its fill probability / intensity and
    expected P&L per request ``Λ(δ*)(δ* − p)`` (arrays broadcast over the inputs)."""

    delta: FloatArray
    hit_probability: FloatArray
    expected_pnl: FloatArray


@dataclass(frozen=True, eq=False, slots=True)
class QuotePair:
    """Bid and ask half-spreads ``δ^b = S − S^b`` and ``δ^a = S^a − S`` (price units)."""

    bid: FloatArray
    ask: FloatArray


@dataclass(frozen=True, eq=False, slots=True)
class QuoteLadder:
    """Exact (ODE) quotes at time 0 on the inventory grid.

    ``bid[i]`` is NaN at ``q = +Q`` (no more buying) and ``ask[i]`` NaN at ``q = −Q``.
    ``theta`` is Guéant's value-function correction θ(0, q) (price units × inventory).
    """

    inventory: FloatArray
    bid: FloatArray
    ask: FloatArray
    theta: FloatArray


@dataclass(frozen=True, eq=False, slots=True)
class ExecutionSchedule:
    """Almgren–Chriss trajectory: ``holdings[k] = x_k`` at ``times[k] = kτ`` (k = 0..N),
    ``trades[k-1] = n_k = x_{k−1} − x_k`` (k = 1..N), with its expected cost ``E`` and
    variance ``V`` (price units × shares, and its square)."""

    times: FloatArray
    holdings: FloatArray
    trades: FloatArray
    kappa: float
    kappa_tilde: float
    expected_cost: float
    variance: float

    @property
    def std(self) -> float:
        """Standard deviation √V of the implementation shortfall."""
        return float(np.sqrt(self.variance))


@dataclass(frozen=True, eq=False, slots=True)
class ExecutionFrontier:
    """Efficient frontier: ``(E(λ), V(λ))`` of the optimal schedules, one per risk aversion."""

    risk_aversion: FloatArray
    expected_cost: FloatArray
    variance: FloatArray


@dataclass(frozen=True, eq=False, slots=True)
class ExecutionCostSample:
    """Monte-Carlo implementation shortfalls and their summary statistics."""

    costs: FloatArray
    mean: float
    variance: float
    standard_error: float
