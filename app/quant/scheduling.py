"""Optimal execution of a residual position: Almgren–Chriss (2000) with linear impact.

Model (QUANT.md §3; Almgren & Chriss, "Optimal execution of portfolio transactions",
J. Risk 3(2):5–39, eqs 1–20). Sell X shares over [0, T] in N slices of length τ = T/N:
holdings x_k at t_k = kτ (x_0 = X, x_N = 0), trades n_k = x_{k−1} − x_k.

* Price (1): S_k = S_{k−1} + στ^{½}ξ_k − γn_k (permanent impact g(v) = γv, v = n_k/τ).
* Execution price (2): S̃_k = S_{k−1} − ε sgn(n_k) − (η/τ)n_k (temporary impact h).
* Implementation shortfall X S_0 − Σ n_k S̃_k has mean E(x) = ½γX² + εΣ|n_k| + (η̃/τ)Σn_k²
  (8), η̃ = η − ½γτ, and variance V(x) = σ²τΣx_k² (5), sums over k = 1..N.
* Drift (§4.3 of the paper, eqs 25–26), written here as an *adverse* drift α ≥ 0 (the price
  moves against the trader by ατ per period, e.g. other dealers hedging the same block): it adds
  ατΣx_k to E, and the optimal trajectory solves the FOC
  (x_{j−1} − 2x_j + x_{j+1})/τ² = κ̃²(x_j + x̄), x̄ = α/(2λσ²).
* Packages: a multi-leg structure is worked in *units* (each unit trades every leg pro rata to
  its ratio); :func:`release_legs` holds legs back so that the delta of what is done beyond
  complete units (the legging delta) stays within a band whatever part of the orders in flight
  fills.

Units: any consistent set; in the paper's Table 1, shares, days, $ per share (σ in
$/share/day^½, η in ($/share)/(share/day), γ in $/share², ε in $/share), λ in 1/$.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.linalg import solve_banded
from scipy.optimize import minimize

from app.quant.errors import InvalidInput, NoConvergence
from app.quant.types import ExecutionCostSample, ExecutionFrontier, ExecutionSchedule, FloatArray

__all__ = [
    "ExecutionCostSample",
    "ExecutionFrontier",
    "ExecutionModel",
    "ExecutionSchedule",
    "ac_kappa",
    "efficient_frontier",
    "legging_delta",
    "legging_headroom",
    "linear_schedule",
    "optimal_schedule",
    "release_legs",
    "reschedule",
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
    drift
        α, expected *adverse* price drift (price per share per unit time): the price moves
        against the trader (down for a sale, up for a purchase) by ατ per slice. The paper's
        α with the sign chosen so that α > 0 is a cost; 0 (the default) is the driftless model.
    """

    shares: float
    horizon: float
    n_periods: int
    sigma: float
    eta: float
    gamma: float = 0.0
    epsilon: float = 0.0
    drift: float = 0.0

    def __post_init__(self) -> None:
        vals = (
            self.shares,
            self.horizon,
            self.sigma,
            self.eta,
            self.gamma,
            self.epsilon,
            self.drift,
        )
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
    """Mean E (eq. 8, plus the drift term ατΣx_k) and variance V (eq. 5) of any trajectory.

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
        + model.drift * tau * math.copysign(1.0, x[0]) * float(np.sum(x[1:]))
    )
    variance = model.sigma**2 * tau * float(x[1:] @ x[1:])
    return float(expected), float(variance)


def linear_schedule(model: ExecutionModel) -> ExecutionSchedule:
    r"""The naive schedule x_k = X(1 − k/N) (λ = 0), with eqs (10)–(11).

    Notes
    -----
    E = ½γX² + εX + η̃X²/T (+ ½α|X|(T − τ) with drift), V = ⅓σ²X²T(1 − 1/N)(1 − 1/(2N)).
    Reference: QUANT.md A9 (E = $662,500, V = 1.0830e12 $²).
    """
    n_per = model.n_periods
    big_x, t_end = model.shares, model.horizon
    times = np.linspace(0.0, t_end, n_per + 1)
    holdings = big_x * (1.0 - np.arange(n_per + 1) / n_per)
    expected = (
        0.5 * model.gamma * big_x**2
        + model.epsilon * abs(big_x)
        + model.eta_tilde * big_x**2 / t_end
        + 0.5 * model.drift * abs(big_x) * (t_end - model.tau)
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
        With a drift (``model.drift != 0``, λ ≥ 0 only) the trajectory of eq. (26),
        x_j = [(X + x̄) sinh κ(T − t_j) + x̄ sinh κt_j]/sinh κT − x̄, x̄ = α/(2λσ²), computed
        from its tridiagonal first-order condition (also the λ = 0 limit, a parabola), and
        constrained to trade one way only (0 ≤ x_k ≤ X) when a strong drift would overshoot.

    Notes
    -----
    E = ½γX² + εX + η̃X² tanh(½κτ)(τ sinh 2κT + 2T sinh κτ)/(2τ² sinh² κT),
    V = ½σ²X² (τ sinh κT cosh κ(T − τ) − T sinh κτ)/(sinh² κT sinh κτ).
    Reference: QUANT.md A7 (λ = 1e-6: κ = 0.6071/day, E = $911,227, √V = $603,431).
    """
    if not math.isfinite(risk_aversion):
        raise InvalidInput("risk_aversion must be finite")
    if model.drift != 0.0:
        return _drift_schedule(model, risk_aversion)
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


def _drift_schedule(model: ExecutionModel, risk_aversion: float) -> ExecutionSchedule:
    """Optimal trajectory with a drift: the FOC of E + λV is tridiagonal.

    When the unconstrained solution would trade both ways (a drift strong against the
    impact), the schedule is constrained to n_k ≥ 0. With an adverse drift the constrained
    optimum trades in a prefix of the slices (moving a trade into an earlier idle slice lowers
    the drift cost and the risk at the same impact cost) and solves the FOC on it, so it is the
    best of the one-way prefix solutions; a favourable drift falls back to a small QP.
    """
    if risk_aversion < 0.0:
        raise InvalidInput("a drift needs risk_aversion >= 0")
    n_per = model.n_periods
    sign = math.copysign(1.0, model.shares)
    big_x = abs(model.shares)
    holdings = _foc_holdings(model, risk_aversion, big_x, n_per)
    if not _one_way(holdings):
        if model.drift > 0.0:
            prefixes = (_foc_holdings(model, risk_aversion, big_x, m) for m in range(1, n_per))
            holdings = min(
                (h for h in prefixes if _one_way(h)),
                key=lambda h: _criterion(model, risk_aversion, h),
            )
        else:
            holdings = _one_way_schedule(model, risk_aversion, big_x)
    holdings *= sign
    expected, variance = schedule_moments(model, holdings)
    kappa, kappa_t = ac_kappa(model, risk_aversion) if risk_aversion > 0.0 else (0.0, 0.0)
    return ExecutionSchedule(
        times=np.linspace(0.0, model.horizon, n_per + 1),
        holdings=holdings,
        trades=holdings[:-1] - holdings[1:],
        kappa=kappa,
        kappa_tilde=kappa_t,
        expected_cost=expected,
        variance=variance,
    )


def _foc_holdings(
    model: ExecutionModel, risk_aversion: float, big_x: float, active: int
) -> FloatArray:
    """x_0..x_N solving the FOC with trading in slices 1..``active`` only (x_k = 0 after)."""
    tau = model.tau
    holdings = np.zeros(model.n_periods + 1)
    holdings[0] = big_x
    if active > 1:
        # (η̃/τ)(2x_j − x_{j−1} − x_{j+1}) + λσ²τ x_j = −ατ/2, j = 1..m−1, x_0 = X, x_m = 0
        a = model.eta_tilde / tau
        bands = np.empty((3, active - 1))
        bands[0, :] = -a
        bands[1, :] = 2.0 * a + risk_aversion * model.sigma**2 * tau
        bands[2, :] = -a
        rhs = np.full(active - 1, -0.5 * model.drift * tau)
        rhs[0] += a * big_x
        holdings[1:active] = solve_banded((1, 1), bands, rhs)
    return holdings


def _one_way(holdings: FloatArray) -> bool:
    return not bool(np.any(np.diff(holdings) > 1e-12 * holdings[0]))


def _criterion(model: ExecutionModel, risk_aversion: float, holdings: FloatArray) -> float:
    expected, variance = schedule_moments(model, holdings)
    return expected + risk_aversion * variance


def _one_way_schedule(model: ExecutionModel, risk_aversion: float, big_x: float) -> FloatArray:
    """E + λV over trades n_k ≥ 0 with Σn_k = X (a strong drift would otherwise overshoot).

    A small convex QP in the fractions n_k/X, solved by SLSQP with its exact gradient.
    """
    n_per, tau = model.n_periods, model.tau
    a = model.eta_tilde / tau * big_x
    b = risk_aversion * model.sigma**2 * tau * big_x
    c = model.drift * tau

    def objective(f: FloatArray) -> tuple[float, FloatArray]:
        x = 1.0 - np.cumsum(f)  # x_k / X, k = 1..N
        value = a * float(f @ f) + b * float(x @ x) + c * float(np.sum(x))
        grad_x = 2.0 * b * x + c  # d/dx_k; dx_k/df_j = −1 for j ≤ k
        grad = 2.0 * a * f - np.cumsum(grad_x[::-1])[::-1]
        return value, grad

    start = np.full(n_per, 1.0 / n_per)
    res = minimize(
        objective,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_per,
        constraints=[{"type": "eq", "fun": lambda f: float(np.sum(f)) - 1.0}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    if not res.success:
        raise NoConvergence(f"one-way schedule did not converge: {res.message}")
    f = np.clip(res.x, 0.0, None)
    f /= f.sum()
    x = np.concatenate(([1.0], 1.0 - np.cumsum(f)))
    x[-1] = 0.0
    return np.asarray(big_x * np.clip(x, 0.0, 1.0), dtype=np.float64)


def reschedule(
    model: ExecutionModel, risk_aversion: float, remaining: float, periods_left: int
) -> ExecutionSchedule:
    """Optimal schedule of what is left, on the same slice grid (τ unchanged).

    Parameters
    ----------
    model
        The original model; its slice length τ = T/N and its σ, η, γ, ε, α are kept.
    risk_aversion
        λ, as for :func:`optimal_schedule`.
    remaining
        Shares still to trade (same sign convention as ``model.shares``).
    periods_left
        Slices left, ≥ 1.

    Returns
    -------
    ExecutionSchedule
        The optimal schedule of ``remaining`` over ``periods_left·τ``. Without drift, with no
        shortfall, this is the tail of the original trajectory (the AC solution is time
        consistent: x_j/x_k = sinh κ(T − t_j)/sinh κ(T − t_k)); when fills fell short it
        spreads the shortfall over the slices left.
    """
    if periods_left < 1:
        raise InvalidInput("periods_left must be >= 1")
    sub = ExecutionModel(
        shares=remaining,
        horizon=model.tau * periods_left,
        n_periods=periods_left,
        sigma=model.sigma,
        eta=model.eta,
        gamma=model.gamma,
        epsilon=model.epsilon,
        drift=model.drift,
    )
    return optimal_schedule(sub, risk_aversion)


def legging_headroom(unit_deltas: npt.ArrayLike, band: float) -> float:
    r"""How many package units any leg may run ahead of the slowest one within a delta band.

    Parameters
    ----------
    unit_deltas
        Per leg, the delta one package unit adds once that leg is done, signed by the
        trader's side on the leg: ``ratio_i · side_i · Δ_i`` (e.g. coins of underlying).
    band
        The largest legging delta tolerated, in the units of ``unit_deltas`` (≥ 0).

    Returns
    -------
    float
        h = band / G with G = max(Σ_{d_i > 0} d_i, −Σ_{d_i < 0} d_i); ``inf`` when no leg has
        a delta.

    Notes
    -----
    If every leg's quantity done or in flight lies within [r_i u, r_i (u + h)], with u the
    complete units done, the legging delta Σ d_i e_i (e_i ∈ [0, h] the units leg i is ahead)
    lies in [−h·Σ d_i⁻, h·Σ d_i⁺] ⊂ [−band, band], whichever of the orders in flight fill.

    Examples
    --------
    >>> legging_headroom([0.55, -0.35], 11.0)  # a call spread bought: +0.55, −0.35 per unit
    20.0
    """
    d = np.asarray(unit_deltas, dtype=np.float64).ravel()
    if not (math.isfinite(band) and band >= 0.0) or not np.all(np.isfinite(d)):
        raise InvalidInput("need a finite band >= 0 and finite deltas")
    worst = max(float(d[d > 0.0].sum()), float(-d[d < 0.0].sum()))
    return math.inf if worst == 0.0 else band / worst


def legging_delta(filled: npt.ArrayLike, ratios: npt.ArrayLike, leg_deltas: npt.ArrayLike) -> float:
    r"""Delta of what is done beyond complete package units (the legging exposure).

    Parameters
    ----------
    filled
        Quantity done per leg (≥ 0, in contracts of that leg).
    ratios
        Contracts of each leg per package unit (> 0).
    leg_deltas
        Delta per contract of each leg, signed by the trader's side on it.

    Returns
    -------
    float
        Σ_i Δ_i (F_i − r_i u), u = min_i F_i / r_i.

    Examples
    --------
    >>> legging_delta([10.0, 4.0], [1.0, 1.0], [0.55, -0.35])  # 6 long calls too many
    3.3000000000000003
    """
    f = np.asarray(filled, dtype=np.float64)
    r = np.asarray(ratios, dtype=np.float64)
    d = np.asarray(leg_deltas, dtype=np.float64)
    if f.shape != r.shape or f.shape != d.shape or f.ndim != 1 or f.size == 0:
        raise InvalidInput("filled, ratios and leg_deltas need the same 1-D shape")
    if np.any(r <= 0.0):
        raise InvalidInput("ratios must be > 0")
    units = float(np.min(f / r))
    return float(d @ (f - r * units))


def release_legs(
    target_units: float,
    total_units: float,
    ratios: npt.ArrayLike,
    filled: npt.ArrayLike,
    committed: npt.ArrayLike,
    leg_deltas: npt.ArrayLike,
    band: float,
) -> FloatArray:
    r"""Quantity of each leg to send now so that the package follows its schedule in units
    while the legging delta stays within ``band``, whatever part of the orders in flight fills.

    Parameters
    ----------
    target_units
        Cumulative package units the schedule wants done by the end of this slice.
    total_units
        Units of the whole package (no leg is ever traded beyond ``ratio·total_units``).
    ratios
        Contracts of each leg per package unit (> 0).
    filled
        Contracts of each leg done (filled) so far.
    committed
        Contracts of each leg filled or in flight (≥ ``filled``).
    leg_deltas
        Delta per contract of each leg, signed by the trader's side on it.
    band
        Largest legging delta tolerated (see :func:`legging_headroom`).

    Returns
    -------
    numpy.ndarray
        Per leg, ``max(0, min(r_i·target, r_i·total, r_i·(u + h)) − committed_i)`` with u the
        complete units filled and h the headroom: every leg follows the schedule pro rata,
        except that a leg whose venues could not fill holds the others back (they may run at
        most h units ahead of it).

    Examples
    --------
    >>> release_legs(30.0, 100.0, [1, 1], [20.0, 10.0], [20.0, 10.0], [0.55, -0.35], 11.0)
    array([10., 20.])
    >>> release_legs(30.0, 100.0, [1, 1], [20.0, 10.0], [20.0, 10.0], [0.55, -0.35], 3.3)
    array([0., 6.])
    """
    r = np.asarray(ratios, dtype=np.float64)
    f = np.asarray(filled, dtype=np.float64)
    c = np.asarray(committed, dtype=np.float64)
    d = np.asarray(leg_deltas, dtype=np.float64)
    if not (r.shape == f.shape == c.shape == d.shape) or r.ndim != 1 or r.size == 0:
        raise InvalidInput("ratios, filled, committed and leg_deltas need the same 1-D shape")
    if np.any(r <= 0.0) or np.any(c < f - 1e-12 * np.maximum(1.0, np.abs(f))):
        raise InvalidInput("need ratios > 0 and committed >= filled")
    head = legging_headroom(r * d, band)
    units_done = float(np.min(f / r))
    cap_units = min(target_units, total_units, units_done + head)
    return np.asarray(np.maximum(0.0, r * cap_units - c), dtype=np.float64)


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
        E[cost] = E (8, with the drift term) and Var[cost] = V (5) exactly.
    """
    x = np.asarray(holdings, dtype=np.float64)
    if x.shape != (model.n_periods + 1,):
        raise InvalidInput(f"holdings must have N + 1 = {model.n_periods + 1} entries")
    if n_paths < 2:
        raise InvalidInput("n_paths must be >= 2")
    tau = model.tau
    n = x[:-1] - x[1:]
    xi = rng.standard_normal((n_paths, model.n_periods))
    # S_k − S_{k−1}; the adverse drift moves the price against the trade's direction
    adverse = model.drift * tau * math.copysign(1.0, x[0])
    steps = model.sigma * math.sqrt(tau) * xi - model.gamma * n - adverse
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
