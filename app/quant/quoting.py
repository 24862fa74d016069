"""Optimal quoting: Guéant's market-making framework, the one-shot RFQ markup and the desk's
inventory cost.

Notation (QUANT.md §2, Guéant 2017 "Optimal market making", AMF 24(2), arXiv:1605.01862)
-----------------------------------------------------------------------------------------
* δ^b = S − S^b, δ^a = S^a − S: half-spreads (price units) of the bid and the ask.
* Λ(δ): fill intensity (per unit of time) or, with λ = 1, hit probability of one request.
* Δ (``size``): trade size; q: inventory (same unit as Δ); σ: price volatility per √time;
  γ: risk aversion (1/price unit); ξ = γ for Model A (CARA), ξ = 0 for Model B (risk-adjusted
  expectation).
* Hamiltonian (3.10): H_ξ(p) = sup_δ (Λ(δ)/ξ)(1 − e^{−ξΔ(δ−p)}) (ξ > 0),
  H_0(p) = Δ sup_δ Λ(δ)(δ − p); its maximiser δ̃_ξ(p) (3.11) is the quote for a marginal
  cost p (the myopic, one-shot optimum when p is the cost of the trade).

Intensities are small frozen dataclasses implementing :class:`Intensity`; the closed forms
(4.3)–(4.7), (5.18)–(5.19) and the ODE (3.9) take any of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.special import expit, wrightomega

from app.quant.errors import InvalidInput, NoConvergence
from app.quant.types import FloatArray, MarkupResult, MyopicQuote, QuoteLadder, QuotePair

__all__ = [
    "ExponentialIntensity",
    "Intensity",
    "LogisticIntensity",
    "MarkupResult",
    "MyopicQuote",
    "QuoteLadder",
    "QuotePair",
    "closed_form_quotes",
    "closed_form_quotes_multi",
    "exact_quotes_exponential",
    "inventory_skew",
    "myopic_quote",
    "optimal_markup",
    "optimal_markups",
    "solve_quotes_ode",
]

ArrayLike = float | npt.ArrayLike


def _f64(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _check_xi_size(xi: float, size: float) -> None:
    if not (xi >= 0.0 and math.isfinite(xi)):
        raise InvalidInput("xi must be finite and >= 0")
    if not (size > 0.0 and math.isfinite(size)):
        raise InvalidInput("size (Δ) must be finite and > 0")


class Intensity(Protocol):
    """A fill intensity Λ(δ) with its Hamiltonian H_ξ and optimal quote δ̃_ξ (Guéant §3)."""

    def __call__(self, delta: ArrayLike) -> FloatArray:
        """Λ(δ)."""
        ...

    def delta_tilde(self, p: ArrayLike, xi: float = 0.0, size: float = 1.0) -> FloatArray:
        """δ̃_ξ(p) = argmax_δ of the Hamiltonian's objective (3.11)."""
        ...

    def hamiltonian(self, p: ArrayLike, xi: float = 0.0, size: float = 1.0) -> FloatArray:
        """H_ξ(p) (3.10)."""
        ...

    def hamiltonian_d2_at_zero(self, xi: float = 0.0, size: float = 1.0) -> float:
        """H″_ξ(0), the curvature used by the closed forms (4.3)–(4.5), (5.18)–(5.20)."""
        ...


@dataclass(frozen=True, slots=True)
class ExponentialIntensity:
    r"""Λ(δ) = A e^{−kδ} (Avellaneda–Stoikov, GLFT 2013; Guéant 2017 §4.1).

    Parameters
    ----------
    a
        A, intensity at δ = 0 (per unit of time, e.g. s⁻¹).
    k
        Decay k (per price unit, e.g. tick⁻¹ or $⁻¹).

    Notes
    -----
    H_ξ(p) = (AΔ/k) C_ξ e^{−kp}, C_ξ = (1 + ξΔ/k)^{−k/(ξΔ)−1}, C_0 = e^{−1};
    δ̃_ξ(p) = p + ln(1 + ξΔ/k)/(ξΔ) (ξ > 0), p + 1/k (ξ = 0); H″_ξ(0) = AΔk C_ξ.
    """

    a: float
    k: float

    def __post_init__(self) -> None:
        if not (self.a > 0.0 and self.k > 0.0 and math.isfinite(self.a * self.k)):
            raise InvalidInput("ExponentialIntensity needs A > 0 and k > 0")

    def __call__(self, delta: ArrayLike) -> FloatArray:
        return self.a * np.exp(-self.k * _f64(delta))

    def _c(self, xi: float, size: float) -> float:
        if xi == 0.0:
            return math.exp(-1.0)
        z = xi * size / self.k
        return math.exp(-(1.0 / z + 1.0) * math.log1p(z))

    def delta_tilde(self, p: ArrayLike, xi: float = 0.0, size: float = 1.0) -> FloatArray:
        _check_xi_size(xi, size)
        shift = 1.0 / self.k if xi == 0.0 else math.log1p(xi * size / self.k) / (xi * size)
        return _f64(p) + shift

    def hamiltonian(self, p: ArrayLike, xi: float = 0.0, size: float = 1.0) -> FloatArray:
        _check_xi_size(xi, size)
        return self.a * size / self.k * self._c(xi, size) * np.exp(-self.k * _f64(p))

    def hamiltonian_d2_at_zero(self, xi: float = 0.0, size: float = 1.0) -> float:
        _check_xi_size(xi, size)
        return self.a * size * self.k * self._c(xi, size)


@dataclass(frozen=True, slots=True)
class LogisticIntensity:
    r"""Λ(δ) = λ / (1 + e^{α+βδ}) (Barzykin–Bergault–Guéant; Guéant–Manziuk; QUANT.md §2.4).

    With λ = 1 this is the probability that the client hits a quote at half-spread δ.

    Parameters
    ----------
    lam
        λ, request arrival rate (per unit of time), or 1 for a probability.
    alpha
        α (dimensionless): f(0) = 1/(1 + e^α).
    beta
        β > 0 (per price unit, e.g. bp⁻¹).

    Notes
    -----
    With W = Lambert W and W_p = W(e^{−1−α−βp}) (computed as Wright ω(−1−α−βp), equal to
    ``lambertw(exp(·)).real`` without overflow):
    H_0(p) = (Δλ/β) W_p, δ̃_0(p) = p + (1 + W_p)/β, H″_0(0) = Δλβ W_0/(1 + W_0)³, and the hit
    probability at δ̃_0 is W_p/(1 + W_p). For ξ > 0, δ̃ solves
    p = δ − ln(1 + ξΔ(1 + e^{−α−βδ})/β)/(ξΔ) (Newton, monotone from δ = p) and
    H_ξ(p) = Λ(δ̃)(1 − e^{−ξΔ(δ̃−p)})/ξ.
    """

    lam: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        if not (self.lam > 0.0 and self.beta > 0.0 and math.isfinite(self.alpha)):
            raise InvalidInput("LogisticIntensity needs lam > 0, beta > 0, finite alpha")
        if not math.isfinite(self.lam * self.beta):
            raise InvalidInput("LogisticIntensity parameters must be finite")

    def __call__(self, delta: ArrayLike) -> FloatArray:
        return self.lam * self.hit_probability(delta)

    def hit_probability(self, delta: ArrayLike) -> FloatArray:
        """f(δ) = 1/(1 + e^{α+βδ}) = Λ(δ)/λ."""
        return np.asarray(expit(-(self.alpha + self.beta * _f64(delta))), dtype=np.float64)

    def _w(self, p: FloatArray) -> FloatArray:
        return np.asarray(wrightomega(-1.0 - self.alpha - self.beta * p), dtype=np.float64)

    def delta_tilde(self, p: ArrayLike, xi: float = 0.0, size: float = 1.0) -> FloatArray:
        _check_xi_size(xi, size)
        pp = _f64(p)
        if xi == 0.0:
            return pp + (1.0 + self._w(pp)) / self.beta
        return self._delta_tilde_cara(pp, xi, size)

    def _delta_tilde_cara(self, p: FloatArray, xi: float, size: float) -> FloatArray:
        xd = xi * size
        c = xd / self.beta
        log1c, logc = math.log1p(c), math.log(c)
        delta = p.copy()  # φ(p) < 0 and φ is increasing and concave: monotone Newton from p
        for _ in range(100):
            u = self.alpha + self.beta * delta
            phi = delta - np.logaddexp(log1c, logc - u) / xd - p
            dphi = 1.0 + 1.0 / ((1.0 + c) * np.exp(np.minimum(u, 700.0)) + c)
            step = phi / dphi
            delta = delta - step
            if np.all(np.abs(step) <= 1e-15 * (1.0 + np.abs(delta))):
                return delta
        raise NoConvergence("LogisticIntensity.delta_tilde (xi > 0) did not converge")

    def hamiltonian(self, p: ArrayLike, xi: float = 0.0, size: float = 1.0) -> FloatArray:
        _check_xi_size(xi, size)
        pp = _f64(p)
        if xi == 0.0:
            return size * self.lam / self.beta * self._w(pp)
        d = self._delta_tilde_cara(pp, xi, size)
        return self(d) * -np.expm1(-xi * size * (d - pp)) / xi

    def hamiltonian_d2_at_zero(self, xi: float = 0.0, size: float = 1.0) -> float:
        _check_xi_size(xi, size)
        if xi == 0.0:
            w0 = float(self._w(np.zeros(())))
            return size * self.lam * self.beta * w0 / (1.0 + w0) ** 3
        # H′(p) = −ΔΛ(δ̃)e^{−ξΔ(δ̃−p)} (envelope theorem), differentiated once more with
        # δ̃′ = 1/φ′(δ̃), φ′(δ) = 1 + 1/((1 + c)e^{u} + c), c = ξΔ/β, u = α + βδ.
        xd = xi * size
        c = xd / self.beta
        d = float(self._delta_tilde_cara(np.zeros(()), xi, size))
        u = self.alpha + self.beta * d
        lam_d = float(self(d))
        dlam = -self.beta * lam_d * float(expit(u))
        dd = 1.0 / (1.0 + 1.0 / ((1.0 + c) * math.exp(min(u, 700.0)) + c))
        e = math.exp(-xd * d)
        return -size * e * (dlam * dd - xd * lam_d * (dd - 1.0))


# ---------------------------------------------------------------------------------------------
# one-shot quotes and the generic markup optimiser
# ---------------------------------------------------------------------------------------------


def myopic_quote(
    p: ArrayLike, intensity: LogisticIntensity, xi: float = 0.0, size: float = 1.0
) -> MyopicQuote:
    r"""One-shot optimal half-spread δ* = argmax_δ Λ(δ)(δ − p) for a logistic hit probability.

    Parameters
    ----------
    p
        Marginal cost of the trade (price units), e.g. the inventory cost; 0 for a pure RFQ.
    intensity
        Logistic intensity; with ``lam = 1`` the hit probability of one request.
    xi, size
        ξ > 0 gives the CARA version (Guéant 2017 Lemma 3.1, QUANT.md §1.3).

    Returns
    -------
    MyopicQuote
        ``delta`` = δ*, ``hit_probability`` = f(δ*) = Λ(δ*)/λ, ``expected_pnl`` = Λ(δ*)(δ* − p).

    Notes
    -----
    ξ = 0: δ* = p + (1 + W(e^{−1−α−βp}))/β, f(δ*) = W/(1 + W) (QUANT.md A5, A6).

    Examples
    --------
    >>> q = myopic_quote(0.0, LogisticIntensity(1.0, -0.3, 5.0))
    >>> round(float(q.delta), 4), round(float(q.hit_probability), 4)
    (0.27, 0.2592)
    """
    pp = _f64(p)
    d = intensity.delta_tilde(pp, xi, size)
    hit = intensity.hit_probability(d)
    return MyopicQuote(delta=d, hit_probability=hit, expected_pnl=intensity.lam * hit * (d - pp))


_LOG_OFFSETS = np.geomspace(1e-9, 1e12, 128)  # scale-free first pass for markup − cost
_UNIT_GRID = np.linspace(-1.0, 1.0, 41)


def _parabola_vertex(x: FloatArray, y: FloatArray, i: int, reach: float = 1.0) -> float:
    """Vertex of the parabola through (x[i−1..i+1], y[i−1..i+1]), kept within ``reach`` times
    the bracket [x[i−1], x[i+1]] around x[i]; x[i] itself if the parabola is not concave."""
    x0, x1, x2 = x[i - 1 : i + 2].tolist()  # Python floats: scalar numpy maths is slow
    y0, y1, y2 = y[i - 1 : i + 2].tolist()
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    # concave ⇔ the second divided difference is negative
    curv = (y2 - y1) / (x2 - x1) - (y1 - y0) / (x1 - x0)
    if not (den != 0.0 and curv < 0.0):
        return float(x1)
    num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
    lo, hi = x1 - reach * (x1 - x0), x1 + reach * (x2 - x1)
    return float(min(max(x1 - 0.5 * num / den, lo), hi))


def _markup_on_grid(grid: FloatArray, probs: FloatArray, cost: float) -> MarkupResult:
    """Exact maximiser of (δ − c)·f(δ) for f linearly interpolated between grid nodes."""
    return _markups_on_grid(grid, probs, np.array([cost]))[0]


def _markups_on_grid(grid: FloatArray, probs: FloatArray, costs: FloatArray) -> list[MarkupResult]:
    """:func:`_markup_on_grid` for several costs at once (the same arithmetic per element)."""
    f0, f1 = probs[:-1], probs[1:]
    x0, x1 = grid[:-1], grid[1:]
    slope = (f1 - f0) / (x1 - x0)
    c = costs[:, None]
    # On a segment, (δ − c)(f0 + m(δ − x0)) is quadratic; its vertex solves
    # f0 + m(δ − x0) + m(δ − c) = 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = (x0 + c) / 2.0 - f0 / (2.0 * slope)
    vertex = np.where(slope < 0.0, np.clip(vertex, x0, x1), x0)
    cand = np.concatenate((np.broadcast_to(grid, (len(costs), grid.size)), vertex), axis=1)
    fc = np.concatenate(
        (np.broadcast_to(probs, (len(costs), probs.size)), f0 + slope * (vertex - x0)), axis=1
    )
    pnl = (cand - c) * fc
    best = np.argmax(pnl, axis=1)
    rows = np.arange(len(costs))
    return [
        MarkupResult(float(m), float(f), float(p))
        for m, f, p in zip(cand[rows, best], fc[rows, best], pnl[rows, best], strict=True)
    ]


def optimal_markups(
    hit_probs: npt.ArrayLike, marginal_costs: Sequence[float], *, markup_grid: npt.ArrayLike
) -> list[MarkupResult]:
    """:func:`optimal_markup` of one probability vector on ``markup_grid`` for several
    marginal costs (e.g. the base markup, the size effect and the total of one quote): the
    same results, the inputs checked once."""
    costs = _f64(list(marginal_costs))
    if costs.ndim != 1 or not np.all(np.isfinite(costs)):
        raise InvalidInput("marginal costs must be finite")
    grid, probs = _checked_curve(markup_grid, hit_probs)
    return _markups_on_grid(grid, probs, costs) if costs.size else []


def _checked_curve(
    markup_grid: npt.ArrayLike, hit_probs: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    grid = _f64(markup_grid)
    probs = _f64(hit_probs)
    if grid.ndim != 1 or grid.shape != probs.shape or grid.size < 2:
        raise InvalidInput("markup_grid and hit probabilities must be 1-D of equal size >= 2")
    if not np.all(np.diff(grid) > 0.0) or not np.all(np.isfinite(probs)):
        raise InvalidInput("markup_grid must be increasing and probabilities finite")
    return grid, probs


def optimal_markup(
    hit_prob: Callable[[FloatArray], npt.ArrayLike] | npt.ArrayLike,
    marginal_cost: float,
    *,
    markup_grid: npt.ArrayLike | None = None,
    refinements: int = 2,
) -> MarkupResult:
    r"""Markup δ* maximising the expected P&L f(δ)(δ − c) of one quote, for any hit curve f.

    Parameters
    ----------
    hit_prob
        Either a vectorised callable δ ↦ f(δ) (a decreasing probability curve, e.g. the logistic
        of :class:`LogisticIntensity` or the trained hit model), or the vector f(δ_j) of
        probabilities on ``markup_grid``.
    marginal_cost
        c, the desk's marginal cost of doing the trade (inventory cost from
        :func:`inventory_skew`, hedging cost, …), in the markup's units. Negative when the
        trade reduces risk.
    markup_grid
        Increasing markup grid. Required with a probability vector; with a callable it replaces
        the default first pass (128 points c + 10^{−9…12}, geometric, scale-free).
    refinements
        Dense local passes (41 points each over the two neighbouring cells of the incumbent,
        narrowing the bracket 20-fold each) after the first pass, callable case only; two
        parabolic polishing steps follow. For a step-function f (tree models) the optimum is
        the left limit of a jump and is located to ~20^−refinements of a first-pass cell; pass
        a dense ``markup_grid`` when steps are coarse, as a narrow hump of (δ − c)f(δ) can
        fall between the default first-pass points (46 % apart in δ − c).

    Returns
    -------
    MarkupResult
        ``markup`` δ*, ``hit_probability`` f(δ*), ``expected_pnl`` f(δ*)(δ* − c).

    Notes
    -----
    The objective is the ξ = 0 Hamiltonian's (QUANT.md §1.3, §2.2): at an interior optimum
    δ* − c = −f(δ*)/f′(δ*). A grid search followed by local re-gridding and parabolic polishing
    (5 vectorised calls of f; the markup is then exact to ~1e-8 of the curve's scale, the
    √ε limit of locating a maximum from function values) is used rather
    than Newton, because an empirical or FGP-type f (cusped SEP density)
    can make the objective non-concave (QUANT.md §1.3). With a probability vector, f is taken
    piecewise linear and the maximum over that interpolant is exact. For a log-concave f the
    optimum increases with c (slope 1/(1 + W) for the logistic).
    """
    c = float(marginal_cost)
    if not math.isfinite(c):
        raise InvalidInput("marginal_cost must be finite")
    if not callable(hit_prob):
        if markup_grid is None:
            raise InvalidInput("a probability vector needs its markup_grid")
        grid, probs = _checked_curve(markup_grid, hit_prob)
        return _markup_on_grid(grid, probs, c)

    if markup_grid is None:
        grid = c + _LOG_OFFSETS
    else:
        grid = _f64(markup_grid)
        if grid.ndim != 1 or grid.size < 3 or not (np.diff(grid) > 0.0).all():
            raise InvalidInput("markup_grid must be 1-D, increasing, with >= 3 points")

    def objective(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        f = np.asarray(hit_prob(x), dtype=np.float64)
        return f, (x - c) * f

    for level in range(refinements + 1):
        probs, pnl = objective(grid)
        i = int(pnl.argmax())
        if level == refinements or not math.isfinite(float(pnl[i])):
            break
        lo = grid[max(i - 1, 0)]
        hi = grid[min(i + 1, grid.size - 1)]
        grid = 0.5 * (lo + hi) + 0.5 * (hi - lo) * _UNIT_GRID
    best = MarkupResult(float(grid[i]), float(probs[i]), float(pnl[i]))
    if not (0 < i < grid.size - 1) or not math.isfinite(best.expected_pnl):
        return best
    # Polish: successive parabolic interpolation on ever closer triples x ± h around the
    # incumbent (each step's error is O(d² + h²) of the previous error d and spacing h);
    # a point replaces the incumbent only if it improves the objective (kinks, plateaus).
    spacing = 0.5 * float(grid[i + 1] - grid[i - 1])
    x = _parabola_vertex(grid, pnl, i)
    for h in (spacing / 8.0, spacing / 1024.0):
        pts = np.array([x - h, x, x + h])
        fp, vals = objective(pts)
        j = int(vals.argmax())
        if vals[j] > best.expected_pnl:
            best = MarkupResult(float(pts[j]), float(fp[j]), float(vals[j]))
        x = _parabola_vertex(pts, vals, 1, reach=4.0)
    fx = float(np.asarray(hit_prob(np.array([x])), dtype=np.float64)[0])
    if (x - c) * fx > best.expected_pnl:
        best = MarkupResult(x, fx, (x - c) * fx)
    return best


# ---------------------------------------------------------------------------------------------
# inventory cost
# ---------------------------------------------------------------------------------------------


def _sqrt_psd(m: FloatArray) -> FloatArray:
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    if np.min(w) < -1e-10 * max(1.0, float(np.max(np.abs(w)))):
        raise InvalidInput("covariance must be positive semi-definite")
    return np.asarray((v * np.sqrt(np.maximum(w, 0.0))) @ v.T, dtype=np.float64)


def _gamma_matrix(covariance: FloatArray, curvature: FloatArray) -> FloatArray:
    """Γ = D^{−½}(D^{½} Σ D^{½})^{½} D^{−½}, D = diag(H″_i(0)) (Guéant 2017 eq. 5.20)."""
    dh = np.sqrt(curvature)
    root = _sqrt_psd(dh[:, None] * covariance * dh[None, :])
    return np.asarray(root / dh[:, None] / dh[None, :], dtype=np.float64)


def _check_cov(covariance: FloatArray, d: int) -> None:
    if covariance.shape != (d, d) or not np.all(np.isfinite(covariance)):
        raise InvalidInput(f"covariance must be a finite ({d}, {d}) matrix")


def inventory_skew(
    risk_vector_package: npt.ArrayLike,
    desk_inventory: npt.ArrayLike,
    covariance: npt.ArrayLike,
    gamma: float,
    *,
    hamiltonian_curvature: npt.ArrayLike | None = None,
) -> float:
    r"""Marginal inventory cost of taking a package's risk onto the desk's book.

    Parameters
    ----------
    risk_vector_package
        x: the risk-factor exposures the desk *acquires* (e.g. delta in coins and vega in USD
        per vol point, per underlying/expiry bucket): +greeks of the package when the desk buys
        it (client sells), −greeks when the desk sells it.
    desk_inventory
        q: the desk's current exposures to the same factors.
    covariance
        Σ: covariance of the factors' moves (price units per unit of exposure, squared). For
        the default form, over the holding horizon (e.g. per day × expected days to unwind);
        with ``hamiltonian_curvature``, per unit of time of the intensities.
    gamma
        γ: risk aversion (1 / price unit).
    hamiltonian_curvature
        Optional D = H″_{ξ,i}(0) per factor (or one scalar), e.g. from
        :meth:`Intensity.hamiltonian_d2_at_zero`; selects the stationary Guéant closed form.

    Returns
    -------
    float
        c = θ(q) − θ(q + x): the value the desk gives up by going from q to q + x, in price
        units; add it to the markup's cost (``optimal_markup(f, c)``). Positive when x adds to
        the risk the desk already runs.

    Notes
    -----
    The value function is approximated by a quadratic θ(q) ≈ −½ qᵀAq, hence
    c = qᵀAx + ½ xᵀAx with

    * default (Model B, finite horizon; the Avellaneda–Stoikov expansion of QUANT.md §2.3,
      δ^b − δ̃ = ((2q + 1)/2)γσ²(T − t)): A = γΣ;
    * with D (Guéant 2017 eqs 5.18–5.20, Bergault–Evangelista–Guéant–Vieira 2021):
      A = √(γ/2) Γ, Γ = D^{−½}(D^{½}ΣD^{½})^{½}D^{−½}. For x = Δeᵢ, c/Δ is exactly the argument
      of δ̃ⁱ in (5.18) (bid) and for x = −Δeᵢ that of (5.19) (ask).

    A desk long vega pays a positive cost to buy more vega, so it bids lower; selling vega
    (x < 0) earns it a negative cost, so it offers lower too.
    """
    x = _f64(risk_vector_package)
    q = _f64(desk_inventory)
    cov = _f64(covariance)
    if x.ndim != 1 or q.shape != x.shape:
        raise InvalidInput("risk_vector_package and desk_inventory must be 1-D of equal length")
    _check_cov(cov, x.size)
    if not (gamma >= 0.0 and math.isfinite(gamma)):
        raise InvalidInput("gamma must be finite and >= 0")
    if hamiltonian_curvature is None:
        a = gamma * cov
    else:
        dh = np.broadcast_to(_f64(hamiltonian_curvature), x.shape)
        if not np.all((dh > 0.0) & (dh < np.inf)):
            raise InvalidInput("hamiltonian_curvature must be positive and finite")
        a = math.sqrt(0.5 * gamma) * _gamma_matrix(cov, dh)
    ax = a @ x
    return float(q @ ax + 0.5 * (x @ ax))


# ---------------------------------------------------------------------------------------------
# closed-form approximations (Guéant 2017 §4–5)
# ---------------------------------------------------------------------------------------------


def closed_form_quotes(
    inventory: ArrayLike,
    sigma: float,
    gamma: float,
    intensity: Intensity,
    xi: float = 0.0,
    size: float = 1.0,
) -> QuotePair:
    r"""Closed-form approximate optimal quotes for one asset (Guéant 2017 eqs 4.3–4.5).

    Parameters
    ----------
    inventory
        q (units of the asset, multiples of Δ).
    sigma
        σ, price volatility per √time (time unit of the intensity).
    gamma
        γ, risk aversion (1 / price unit).
    intensity
        Fill intensity (same on both sides).
    xi
        ξ = γ for Model A (GLFT), ξ = 0 for Model B.
    size
        Δ, trade size.

    Returns
    -------
    QuotePair
        δ^b(q) ≈ δ̃_ξ(((2q + Δ)/2) s), δ^a(q) ≈ δ̃_ξ(−((2q − Δ)/2) s), s = √(γσ²/(2H″_ξ(0))).

    Notes
    -----
    For Λ = Ae^{−kδ} this is (4.6)/(4.7): δ^b ≈ ln(1 + ξΔ/k)/(ξΔ)
    + ((2q + Δ)/2)√(γσ²/(2AΔk) (1 + ξΔ/k)^{k/(ξΔ)+1}), the GLFT (2013) formula when Δ = 1,
    ξ = γ. Accurate for small |q| (QUANT.md §2.6). Reference values: A1 (3.3129 ticks), A4.
    """
    if not (sigma >= 0.0 and gamma > 0.0):
        raise InvalidInput("need sigma >= 0 and gamma > 0")
    q = _f64(inventory)
    h2 = intensity.hamiltonian_d2_at_zero(xi, size)
    if not h2 > 0.0:
        raise InvalidInput("closed form needs H''(0) > 0")
    slope = math.sqrt(gamma * sigma * sigma / (2.0 * h2))
    return QuotePair(
        bid=intensity.delta_tilde((q + 0.5 * size) * slope, xi, size),
        ask=intensity.delta_tilde(-(q - 0.5 * size) * slope, xi, size),
    )


def closed_form_quotes_multi(
    inventory: npt.ArrayLike,
    covariance: npt.ArrayLike,
    gamma: float,
    intensities: Sequence[Intensity],
    xi: float = 0.0,
    sizes: npt.ArrayLike = 1.0,
) -> QuotePair:
    r"""Closed-form quotes for d assets with correlated prices (Guéant 2017 eqs 5.18–5.20).

    Parameters
    ----------
    inventory
        q, shape (d,).
    covariance
        Σ, (d, d) covariance of price moves per unit of time.
    gamma
        Risk aversion γ.
    intensities
        One intensity per asset.
    xi
        ξ (γ: Model A, 0: Model B).
    sizes
        Δⁱ per asset (scalar or (d,)).

    Returns
    -------
    QuotePair
        Arrays (d,):
        δ^{i,b} ≈ δ̃ⁱ(√(γ/2)[Γᵢᵢ(2qⁱ + Δⁱ)/2 + Σ_{j≠i} Γᵢⱼ qʲ]),
        δ^{i,a} ≈ δ̃ⁱ(−√(γ/2)[Γᵢᵢ(2qⁱ − Δⁱ)/2 + Σ_{j≠i} Γᵢⱼ qʲ]),
        Γ = D^{−½}(D^{½}ΣD^{½})^{½}D^{−½}, D = diag(H″_{ξ,i}(0)).

    Notes
    -----
    Implemented from (5.18)–(5.19) directly (the transcription flags a layout ambiguity in
    printed 5.17). With d = 1 this is :func:`closed_form_quotes`.
    """
    q = _f64(inventory)
    d = q.size
    if q.ndim != 1 or len(intensities) != d:
        raise InvalidInput("inventory must be 1-D with one intensity per asset")
    cov = _f64(covariance)
    _check_cov(cov, d)
    if not gamma > 0.0:
        raise InvalidInput("gamma must be > 0")
    sz = np.broadcast_to(_f64(sizes), (d,))
    pairs = list(zip(intensities, sz.tolist(), strict=True))
    h2 = np.array([it.hamiltonian_d2_at_zero(xi, s) for it, s in pairs])
    if not np.all(h2 > 0.0):
        raise InvalidInput("closed form needs H''(0) > 0 for every asset")
    g = _gamma_matrix(cov, h2)
    gq = g @ q
    half = 0.5 * np.diag(g) * sz
    scale = math.sqrt(0.5 * gamma)
    pb = scale * (gq + half)
    pa = -scale * (gq - half)
    bid = np.array([float(it.delta_tilde(p, xi, s)) for (it, s), p in zip(pairs, pb, strict=True)])
    ask = np.array([float(it.delta_tilde(p, xi, s)) for (it, s), p in zip(pairs, pa, strict=True)])
    return QuotePair(bid=bid, ask=ask)


# ---------------------------------------------------------------------------------------------
# exact quotes: the ODE system (3.9)
# ---------------------------------------------------------------------------------------------


def _inventory_grid(q_max: float, size: float) -> FloatArray:
    steps = q_max / size
    n = round(steps)
    if n < 1 or abs(steps - n) > 1e-9 * max(1.0, steps):
        raise InvalidInput("q_max must be a positive multiple of size")
    return size * np.arange(-n, n + 1, dtype=np.float64)


def exact_quotes_exponential(
    sigma: float,
    gamma: float,
    intensity: ExponentialIntensity,
    q_max: float,
    horizon: float,
    xi: float | None = None,
    size: float = 1.0,
) -> QuoteLadder:
    r"""Exact quotes at t = 0 for Λ = Ae^{−kδ} by the linear change of variables (GLFT 2013).

    Parameters
    ----------
    sigma, gamma, intensity, size
        As in :func:`closed_form_quotes`.
    q_max
        Inventory limit Q (a multiple of Δ); the grid is −Q, −Q + Δ, …, Q.
    horizon
        T, time to the end of the trading period (time unit of A and σ²).
    xi
        ξ; ``None`` means ξ = γ (Model A, GLFT).

    Returns
    -------
    QuoteLadder
        Quotes and θ(0, q) on the inventory grid, ℓ = 0.

    Notes
    -----
    v_q = exp(kθ(t, q)/Δ) solves the linear system (Guéant 2017 eq. 3.13)
    v′ = Mv, M = diag(kγσ²q²/(2Δ)) − AC_ξ(shift up + shift down), v(T) = 1, so
    v(0) = exp(−MT)·1 (GLFT Props. 1–2), and δ^b = δ̃_ξ((θ(q) − θ(q + Δ))/Δ),
    δ^a = δ̃_ξ((θ(q) − θ(q − Δ))/Δ) (3.14). Reference: QUANT.md A2.
    """
    x = gamma if xi is None else xi
    _check_xi_size(x, size)
    if not (sigma >= 0.0 and gamma > 0.0 and horizon >= 0.0):
        raise InvalidInput("need sigma >= 0, gamma > 0, horizon >= 0")
    q = _inventory_grid(q_max, size)
    k = intensity.k
    eta = intensity.a * intensity._c(x, size)
    m = np.diag(k * gamma * sigma * sigma * q * q / (2.0 * size))
    off = np.full(q.size - 1, -eta)
    m += np.diag(off, 1) + np.diag(off, -1)
    v = expm(-m * horizon) @ np.ones(q.size)
    theta = size / k * np.log(v)
    return _ladder(q, theta, intensity, intensity, x, size)


def _ladder(
    q: FloatArray,
    theta: FloatArray,
    bid_intensity: Intensity,
    ask_intensity: Intensity,
    xi: float,
    size: float,
) -> QuoteLadder:
    """Quotes (3.14)/(3.16) from θ(0, ·); NaN where the inventory limit forbids the side."""
    bid = np.full(q.size, np.nan)
    ask = np.full(q.size, np.nan)
    bid[:-1] = bid_intensity.delta_tilde((theta[:-1] - theta[1:]) / size, xi, size)
    ask[1:] = ask_intensity.delta_tilde((theta[1:] - theta[:-1]) / size, xi, size)
    return QuoteLadder(inventory=q, bid=bid, ask=ask, theta=theta)


def solve_quotes_ode(
    sigma: float,
    gamma: float,
    intensity: Intensity,
    q_max: float,
    horizon: float,
    xi: float = 0.0,
    size: float = 1.0,
    *,
    intensity_ask: Intensity | None = None,
    terminal_theta: npt.ArrayLike | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> QuoteLadder:
    r"""Exact optimal quotes for any intensity by integrating the ODE system (Guéant eq. 3.9).

    Parameters
    ----------
    sigma, gamma, size
        As in :func:`closed_form_quotes`.
    intensity
        Bid-side intensity Λ^b (and ask side unless ``intensity_ask`` is given).
    q_max
        Inventory limit Q (a multiple of Δ).
    horizon
        T (time unit of the intensity); use a long horizon for the stationary quotes.
    xi
        ξ (γ: Model A, 0: Model B).
    intensity_ask
        Λ^a if different from Λ^b.
    terminal_theta
        θ(T, q) = −ℓ(|q|) on the grid (default 0).
    rtol, atol
        Tolerances of the DOP853 integrator.

    Returns
    -------
    QuoteLadder
        θ(0, q) and the quotes δ^b = δ̃^b((θ(q) − θ(q + Δ))/Δ), δ^a = δ̃^a((θ(q) − θ(q − Δ))/Δ).

    Notes
    -----
    0 = −∂ₜθ + ½γσ²q² − 1_{q<Q}H^b_ξ((θ(q) − θ(q + Δ))/Δ) − 1_{q>−Q}H^a_ξ((θ(q) − θ(q − Δ))/Δ),
    integrated backwards from T in τ = T − t with scipy's DOP853 (explicit, 8th order). The
    system is not stiff: its Jacobian is bounded by 2 max|H′| ≈ 2ΔΛ. Reference: QUANT.md A2
    (exponential), closed form ≈ ODE near q = 0.
    """
    _check_xi_size(xi, size)
    if not (sigma >= 0.0 and gamma > 0.0 and horizon > 0.0):
        raise InvalidInput("need sigma >= 0, gamma > 0, horizon > 0")
    q = _inventory_grid(q_max, size)
    ask_int = intensity if intensity_ask is None else intensity_ask
    penalty = 0.5 * gamma * sigma * sigma * q * q
    theta_t = np.zeros(q.size) if terminal_theta is None else _f64(terminal_theta).copy()
    if theta_t.shape != q.shape:
        raise InvalidInput(f"terminal_theta must have shape {q.shape}")

    def rhs(_tau: float, theta: FloatArray) -> FloatArray:
        out = -penalty.copy()
        out[:-1] += intensity.hamiltonian((theta[:-1] - theta[1:]) / size, xi, size)
        out[1:] += ask_int.hamiltonian((theta[1:] - theta[:-1]) / size, xi, size)
        return out

    sol = solve_ivp(rhs, (0.0, horizon), theta_t, method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise NoConvergence(f"solve_quotes_ode: {sol.message}")
    theta0 = np.asarray(sol.y[:, -1], dtype=np.float64)
    return _ladder(q, theta0, intensity, ask_int, xi, size)
