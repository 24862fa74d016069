"""Optimal execution of a residual position: Almgren–Chriss (2000) with linear impact.

Model (QUANT.md §3; Almgren & Chriss, "Optimal execution of portfolio transactions",
J. Risk 3(2):5–39, eqs 1–20). Sell X shares over [0, T] in N slices of length τ = T/N:
holdings x_k at t_k = kτ (x_0 = X, x_N = 0), trades n_k = x_{k−1} − x_k.

* Price (1): S_k = S_{k−1} + στ^{½}ξ_k − γn_k (permanent impact g(v) = γv, v = n_k/τ).
* Execution price (2): S̃_k = S_{k−1} − ε sgn(n_k) − (η/τ)n_k (temporary impact h).
* Implementation shortfall X S_0 − Σ n_k S̃_k has mean E(x) = ½γX² + εΣ|n_k| + (η̃/τ)Σn_k²
  (8), η̃ = η − ½γτ, and variance V(x) = σ²τΣx_k² (5), sums over k = 1..N.

Units: any consistent set; in the paper's Table 1, shares, days, $ per share (σ in
$/share/day^½, η in ($/share)/(share/day), γ in $/share², ε in $/share), λ in 1/$.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.quant.errors import InvalidInput
from app.quant.types import ExecutionCostSample, ExecutionFrontier, ExecutionSchedule, FloatArray

__all__ = [
    "ExecutionCostSample",
    "ExecutionFrontier",
    "ExecutionModel",
    "ExecutionSchedule",
    "ac_kappa",
    "efficient_frontier",
    "linear_schedule",
    "optimal_schedule",
    "schedule_moments",
    "simulate_shortfall",
]


@dataclass(frozen=True, slots=True)
class ExecutionModel:
    """Almgren–Chriss parameters (Table 1 of the paper in the examples).

    Parameters
    ----------
    shares
        X, position to liquidate (> 0 sells; < 0 buys, by symmetry).
    horizon
        T, in the time unit of ``sigma`` and ``eta`` (e.g. days).
    n_periods
        N, number of slices.
    sigma
        σ, price volatility (price per share per √time).
    eta
        η, temporary impact coefficient (price per share per (share per time)).
    gamma
        γ, permanent impact coefficient (price per share²).
    epsilon
        ε, fixed cost per share (half spread + fees).
    """

    shares: float
    horizon: float
    n_periods: int
    sigma: float
    eta: float
    gamma: float = 0.0
    epsilon: float = 0.0

    def __post_init__(self) -> None:
        vals = (self.shares, self.horizon, self.sigma, self.eta, self.gamma, self.epsilon)
        if not all(math.isfinite(v) for v in vals):
            raise InvalidInput("ExecutionModel parameters must be finite")
        if self.horizon <= 0.0 or self.n_periods < 1:
            raise InvalidInput("need horizon > 0 and n_periods >= 1")
        if self.sigma < 0.0 or self.gamma < 0.0 or self.epsilon < 0.0:
            raise InvalidInput("need sigma, gamma, epsilon >= 0")
        if self.eta_tilde <= 0.0:
            raise InvalidInput("need eta_tilde = eta - gamma*tau/2 > 0")

    @property
    def tau(self) -> float:
        """τ = T/N, slice length."""
        return self.horizon / self.n_periods

    @property
    def eta_tilde(self) -> float:
        """η̃ = η − ½γτ (eq. 8)."""
        return self.eta - 0.5 * self.gamma * self.horizon / self.n_periods


def ac_kappa(model: ExecutionModel, risk_aversion: float) -> tuple[float, float]:
    r"""Decay rates κ and κ̃ of the optimal trajectory (eqs 16, 19).

    Parameters
    ----------
    model
        Model parameters.
    risk_aversion
        λ (1/price unit) of the mean–variance criterion E + λV (15).

    Returns
    -------
    tuple of float
        (κ, κ̃) with κ̃² = λσ²/η̃ and (2/τ²)(cosh κτ − 1) = κ̃². For λ < 0 the solution
        oscillates: the returned values are then −ω and −ω̃ with κ = iω (signalled by sign).

    Examples
    --------
    >>> m = ExecutionModel(1e6, 5.0, 5, 0.95, 2.5e-6, 2.5e-7, 0.0625)
    >>> [round(v, 4) for v in ac_kappa(m, 1e-6)]
    [0.6071, 0.6164]
    """
    tau = model.tau
    kt2 = risk_aversion * model.sigma**2 / model.eta_tilde
    arg = 1.0 + 0.5 * kt2 * tau * tau
    if kt2 >= 0.0:
        return math.acosh(arg) / tau, math.sqrt(kt2)
    if arg < -1.0:
        raise InvalidInput("risk_aversion too negative: no oscillatory solution on this grid")
    return -math.acos(arg) / tau, -math.sqrt(-kt2)


def _sinh_ratio(kappa: float, a: FloatArray, b: float) -> FloatArray:
    """sinh(κa)/sinh(κb) for 0 ≤ a ≤ b without overflow."""
    return np.asarray(
        np.exp(kappa * (a - b)) * -np.expm1(-2.0 * kappa * a) / -np.expm1(-2.0 * kappa * b),
        dtype=np.float64,
    )


def schedule_moments(model: ExecutionModel, holdings: npt.ArrayLike) -> tuple[float, float]:
    """Mean E (eq. 8) and variance V (eq. 5) of the shortfall of any trajectory x_0..x_N.

    Parameters
    ----------
    model
        Model parameters.
    holdings
        x_k, k = 0..N (x_0 = X, x_N = 0 for a complete liquidation).

    Returns
    -------
    tuple of float
        (E, V) in price units and their square.
    """
    x = np.asarray(holdings, dtype=np.float64)
    if x.shape != (model.n_periods + 1,):
        raise InvalidInput(f"holdings must have N + 1 = {model.n_periods + 1} entries")
    n = x[:-1] - x[1:]
    tau = model.tau
    expected = (
        0.5 * model.gamma * x[0] ** 2
        + model.epsilon * float(np.sum(np.abs(n)))
        + model.eta_tilde / tau * float(n @ n)
    )
    variance = model.sigma**2 * tau * float(x[1:] @ x[1:])
    return float(expected), float(variance)


def linear_schedule(model: ExecutionModel) -> ExecutionSchedule:
    r"""The naive schedule x_k = X(1 − k/N) (λ = 0), with eqs (10)–(11).

    Notes
    -----
    E = ½γX² + εX + η̃X²/T, V = ⅓σ²X²T(1 − 1/N)(1 − 1/(2N)). Reference: QUANT.md A9
    (E = $662,500, V = 1.0830e12 $²).
    """
    n_per = model.n_periods
    big_x, t_end = model.shares, model.horizon
    times = np.linspace(0.0, t_end, n_per + 1)
    holdings = big_x * (1.0 - np.arange(n_per + 1) / n_per)
    expected = (
        0.5 * model.gamma * big_x**2
        + model.epsilon * abs(big_x)
        + model.eta_tilde * big_x**2 / t_end
    )
    variance = model.sigma**2 * big_x**2 * t_end * (1 - 1 / n_per) * (1 - 0.5 / n_per) / 3.0
    return ExecutionSchedule(
        times=times,
        holdings=holdings,
        trades=holdings[:-1] - holdings[1:],
        kappa=0.0,
        kappa_tilde=0.0,
        expected_cost=float(expected),
        variance=float(variance),
    )


def _closed_form_moments(model: ExecutionModel, kappa: float) -> tuple[float, float]:
    """Eq. (20), rewritten with coth and ratios so that large κT does not overflow."""
    tau, t_end, big_x = model.tau, model.horizon, model.shares
    kt, ktau = kappa * t_end, kappa * tau
    # sinh(κτ)/sinh²(κT) and cosh(κ(T−τ))/sinh(κT), both bounded.
    inv_sh = 2.0 * math.exp(-kt) / -math.expm1(-2.0 * kt)  # 1/sinh(κT)
    sh_tau = math.sinh(ktau)
    ratio_cosh = math.exp(-ktau) * (1.0 + math.exp(-2.0 * (kt - ktau))) / -math.expm1(-2.0 * kt)
    expected = (
        0.5 * model.gamma * big_x**2
        + model.epsilon * abs(big_x)
        + model.eta_tilde
        * big_x**2
        * math.tanh(0.5 * ktau)
        * (2.0 * tau / math.tanh(kt) + 2.0 * t_end * sh_tau * inv_sh * inv_sh)
        / (2.0 * tau * tau)
    )
    variance = (
        0.5
        * model.sigma**2
        * big_x**2
        * (tau * ratio_cosh - t_end * sh_tau * inv_sh * inv_sh)
        / sh_tau
    )
    return float(expected), float(variance)


def optimal_schedule(model: ExecutionModel, risk_aversion: float) -> ExecutionSchedule:
    r"""Mean–variance optimal trajectory (eqs 17–20).

    Parameters
    ----------
    model
        Model parameters.
    risk_aversion
        λ ≥ 0 (1/price unit); λ = 0 is the linear schedule; λ < 0 (risk-seeking) gives the
        oscillatory solution sin(ω(T − t_k))/sin(ωT).

    Returns
    -------
    ExecutionSchedule
        x_k = sinh(κ(T − t_k))/sinh(κT)·X (17), n_k (18), κ, κ̃ and E, V from (20) for λ > 0
        (from the exact sums (8), (5) when κT < 1e-3, where (20) loses precision, or λ < 0).

    Notes
    -----
    E = ½γX² + εX + η̃X² tanh(½κτ)(τ sinh 2κT + 2T sinh κτ)/(2τ² sinh² κT),
    V = ½σ²X² (τ sinh κT cosh κ(T − τ) − T sinh κτ)/(sinh² κT sinh κτ).
    Reference: QUANT.md A7 (λ = 1e-6: κ = 0.6071/day, E = $911,227, √V = $603,431).
    """
    if not math.isfinite(risk_aversion):
        raise InvalidInput("risk_aversion must be finite")
    if risk_aversion == 0.0:
        return linear_schedule(model)
    kappa, kappa_t = ac_kappa(model, risk_aversion)
    times = np.linspace(0.0, model.horizon, model.n_periods + 1)
    remaining = model.horizon - times
    if kappa > 0.0:
        holdings = model.shares * _sinh_ratio(kappa, remaining, model.horizon)
        holdings[-1] = 0.0
        if kappa * model.horizon >= 1e-3:
            expected, variance = _closed_form_moments(model, kappa)
        else:  # (20) cancels catastrophically as κ → 0; the sums (8), (5) are exact
            expected, variance = schedule_moments(model, holdings)
    else:
        omega = -kappa
        den = math.sin(omega * model.horizon)
        if abs(den) < 1e-12:
            raise InvalidInput("risk_aversion too negative: sin(ωT) = 0")
        holdings = model.shares * np.sin(omega * remaining) / den
        holdings[-1] = 0.0
        expected, variance = schedule_moments(model, holdings)
    return ExecutionSchedule(
        times=times,
        holdings=holdings,
        trades=holdings[:-1] - holdings[1:],
        kappa=kappa,
        kappa_tilde=kappa_t,
        expected_cost=expected,
        variance=variance,
    )


def efficient_frontier(model: ExecutionModel, risk_aversions: npt.ArrayLike) -> ExecutionFrontier:
    """E(λ) and V(λ) of the optimal schedules over a range of risk aversions.

    Parameters
    ----------
    model
        Model parameters.
    risk_aversions
        λ values (1-D).

    Returns
    -------
    ExecutionFrontier
        Along increasing λ ≥ 0, E increases and V decreases (the frontier is convex, §2.3).
    """
    lams = np.asarray(risk_aversions, dtype=np.float64).ravel()
    e = np.empty_like(lams)
    v = np.empty_like(lams)
    for i, lam in enumerate(lams):
        sched = optimal_schedule(model, float(lam))
        e[i], v[i] = sched.expected_cost, sched.variance
    return ExecutionFrontier(risk_aversion=lams, expected_cost=e, variance=v)


def simulate_shortfall(
    model: ExecutionModel,
    holdings: npt.ArrayLike,
    n_paths: int,
    rng: np.random.Generator,
    *,
    initial_price: float = 0.0,
) -> ExecutionCostSample:
    """Monte Carlo of the implementation shortfall X S_0 − Σ n_k S̃_k under eqs (1)–(2).

    Parameters
    ----------
    model
        Model parameters.
    holdings
        Trajectory x_0..x_N to execute.
    n_paths
        Number of simulated price paths.
    rng
        Seeded generator (the only source of randomness).
    initial_price
        S_0; the shortfall does not depend on it.

    Returns
    -------
    ExecutionCostSample
        Per-path costs, their mean, unbiased variance and the standard error of the mean;
        E[cost] = E (8) and Var[cost] = V (5) exactly.
    """
    x = np.asarray(holdings, dtype=np.float64)
    if x.shape != (model.n_periods + 1,):
        raise InvalidInput(f"holdings must have N + 1 = {model.n_periods + 1} entries")
    if n_paths < 2:
        raise InvalidInput("n_paths must be >= 2")
    tau = model.tau
    n = x[:-1] - x[1:]
    xi = rng.standard_normal((n_paths, model.n_periods))
    steps = model.sigma * math.sqrt(tau) * xi - model.gamma * n  # S_k − S_{k−1}
    prev = initial_price + np.concatenate(
        (np.zeros((n_paths, 1)), np.cumsum(steps[:, :-1], axis=1)), axis=1
    )  # S_{k−1}, k = 1..N
    exec_price = prev - model.epsilon * np.sign(n) - model.eta / tau * n
    costs = x[0] * initial_price - exec_price @ n
    mean = float(np.mean(costs))
    var = float(np.var(costs, ddof=1))
    return ExecutionCostSample(
        costs=costs, mean=mean, variance=var, standard_error=math.sqrt(var / n_paths)
    )
