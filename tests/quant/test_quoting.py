"""Quoting: Guéant's Hamiltonians, closed forms vs ODE (QUANT.md A1, A2, A4–A6), the markup
optimiser and the desk inventory cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import expit, lambertw, ndtr

from app.quant import (
    ExponentialIntensity,
    Intensity,
    InvalidInput,
    LogisticIntensity,
    closed_form_quotes,
    closed_form_quotes_multi,
    exact_quotes_exponential,
    inventory_skew,
    myopic_quote,
    optimal_markup,
    optimal_markups,
    solve_quotes_ode,
)

REL = 1e-4

# GLFT'13 Figs 1–3 (QUANT.md Ex. 1): ticks, seconds
GLFT = ExponentialIntensity(a=0.9, k=0.3)
GLFT_SIGMA, GLFT_GAMMA, GLFT_T, GLFT_Q = 0.3, 0.01, 600.0, 30

# CDX.NA.IG, Model A (QUANT.md A4): $ per $ of notional, seconds
CDX = ExponentialIntensity(a=9.10e-4, k=1.79e4)
CDX_SIGMA, CDX_GAMMA, CDX_SIZE = 5.83e-6, 6e-5, 50e6
BP = 1e-4


def _at(ladder_q: np.ndarray, values: np.ndarray, q: float) -> float:
    return float(values[int(np.flatnonzero(ladder_q == q)[0])])


class TestReferenceValues:
    def test_a1_glft_closed_form(self) -> None:
        cf = closed_form_quotes(0.0, GLFT_SIGMA, GLFT_GAMMA, GLFT, xi=GLFT_GAMMA)
        assert float(cf.bid) == pytest.approx(3.3129, rel=REL)
        assert float(cf.ask) == pytest.approx(3.3129, rel=REL)
        static = float(GLFT.delta_tilde(0.0, xi=GLFT_GAMMA))
        assert static == pytest.approx(3.2790, rel=REL)
        slope = float(
            closed_form_quotes(1.0, GLFT_SIGMA, GLFT_GAMMA, GLFT, xi=GLFT_GAMMA).bid
        ) - float(cf.bid)
        assert slope == pytest.approx(0.067866, rel=REL)
        assert float(cf.bid) == pytest.approx(static + slope / 2, rel=1e-12)

    def test_a2_glft_exact_quotes(self) -> None:
        ex = exact_quotes_exponential(GLFT_SIGMA, GLFT_GAMMA, GLFT, GLFT_Q, GLFT_T)
        q = ex.inventory
        # QUANT.md values are rounded to 4 decimals
        assert _at(q, ex.bid, 0) == pytest.approx(3.3130, abs=1e-4)
        assert _at(q, ex.ask, 0) == pytest.approx(3.3130, abs=1e-4)
        assert _at(q, ex.bid, 1) == pytest.approx(3.3812, abs=1e-4)
        assert _at(q, ex.ask, 1) == pytest.approx(3.2449, abs=1e-4)
        assert _at(q, ex.bid, 3) == pytest.approx(3.5174, abs=1e-4)
        assert _at(q, ex.ask, 3) == pytest.approx(3.1087, abs=1e-4)
        assert np.isnan(ex.bid[-1])
        assert np.isnan(ex.ask[0])

    def test_a2_table_exact_vs_approx(self) -> None:
        table = {  # q: (exact bid, exact ask, approx bid, approx ask)
            -3: (3.1087, 3.5174, 3.1093, 3.5165),
            -1: (3.2449, 3.3812, 3.2450, 3.3808),
            0: (3.3130, 3.3130, 3.3129, 3.3129),
            1: (3.3812, 3.2449, 3.3808, 3.2450),
            3: (3.5174, 3.1087, 3.5165, 3.1093),
        }
        ex = exact_quotes_exponential(GLFT_SIGMA, GLFT_GAMMA, GLFT, GLFT_Q, GLFT_T)
        for q, (eb, ea, ab, aa) in table.items():
            cf = closed_form_quotes(float(q), GLFT_SIGMA, GLFT_GAMMA, GLFT, xi=GLFT_GAMMA)
            assert _at(ex.inventory, ex.bid, q) == pytest.approx(eb, abs=1e-4)
            assert _at(ex.inventory, ex.ask, q) == pytest.approx(ea, abs=1e-4)
            assert float(cf.bid) == pytest.approx(ab, abs=1e-4)
            assert float(cf.ask) == pytest.approx(aa, abs=1e-4)

    def test_a2_generic_ode_solver_matches_linear_solution(self) -> None:
        ex = exact_quotes_exponential(GLFT_SIGMA, GLFT_GAMMA, GLFT, GLFT_Q, GLFT_T)
        ode = solve_quotes_ode(GLFT_SIGMA, GLFT_GAMMA, GLFT, GLFT_Q, GLFT_T, xi=GLFT_GAMMA)
        inner = np.abs(ex.inventory) <= 10
        assert_allclose(ode.bid[inner], ex.bid[inner], atol=1e-7)
        assert_allclose(ode.ask[inner], ex.ask[inner], atol=1e-7)
        assert_allclose(ode.theta, ex.theta, rtol=1e-6, atol=1e-6)
        assert _at(ode.inventory, ode.bid, 0) == pytest.approx(3.3130, abs=1e-4)

    def test_a4_cdx_closed_form(self) -> None:
        q = np.array([0.0, 50e6, 100e6])
        cf = closed_form_quotes(q, CDX_SIGMA, CDX_GAMMA, CDX, xi=CDX_GAMMA, size=CDX_SIZE)
        # QUANT.md gives 3 decimals (bp)
        assert_allclose(cf.bid / BP, [0.996, 1.956, 2.916], atol=1e-3)
        assert_allclose(cf.ask / BP, [0.996, 0.037, -0.923], atol=1e-3)
        # spread (4.8) is independent of q, skew (4.9) linear in q
        assert_allclose(cf.bid + cf.ask, cf.bid[0] + cf.ask[0], rtol=1e-12)

    @pytest.mark.parametrize(
        ("alpha", "beta", "delta", "hit"),
        [(-0.3, 5.0, 0.2700, 0.2592), (-1.9, 15.0, 0.1300, 0.4873)],
    )
    def test_a5_a6_logistic_myopic_quote(
        self, alpha: float, beta: float, delta: float, hit: float
    ) -> None:
        q = myopic_quote(0.0, LogisticIntensity(1.0, alpha, beta))
        assert float(q.delta) == pytest.approx(delta, abs=1e-4)  # QUANT.md rounds to 4 decimals
        assert float(q.hit_probability) == pytest.approx(hit, abs=1e-4)
        w = lambertw(math.exp(-1 - alpha)).real
        assert float(q.delta) == pytest.approx((1 + w) / beta, rel=1e-12)
        assert float(q.hit_probability) == pytest.approx(w / (1 + w), rel=1e-12)
        # the generic optimiser finds the same optimum
        m = optimal_markup(LogisticIntensity(1.0, alpha, beta).hit_probability, 0.0)
        assert m.markup == pytest.approx(float(q.delta), abs=1e-8 / beta)
        assert m.hit_probability == pytest.approx(float(q.hit_probability), rel=1e-8)
        assert m.expected_pnl == pytest.approx(float(q.expected_pnl), rel=1e-12)


# --------------------------------------------------------------------------------------------
# Hamiltonians: closed forms vs brute force
# --------------------------------------------------------------------------------------------

INTENSITIES = [
    pytest.param(ExponentialIntensity(0.9, 0.3), 0.0, 1.0, id="exp-B"),
    pytest.param(ExponentialIntensity(0.9, 0.3), 0.01, 1.0, id="exp-A"),
    pytest.param(ExponentialIntensity(0.9, 0.3), 0.2, 3.0, id="exp-A-size3"),
    pytest.param(LogisticIntensity(2.0, -0.3, 5.0), 0.0, 1.0, id="logit-B"),
    pytest.param(LogisticIntensity(2.0, -1.9, 15.0), 0.0, 2.0, id="logit-B-size2"),
    pytest.param(LogisticIntensity(2.0, -0.3, 5.0), 0.5, 1.0, id="logit-A"),
    pytest.param(LogisticIntensity(1.0, 1.0, 3.0), 2.0, 1.5, id="logit-A-strong"),
]


def _objective(
    intensity: Intensity, delta: np.ndarray, p: float, xi: float, size: float
) -> np.ndarray:
    lam = intensity(delta)
    if xi == 0.0:
        return np.asarray(size * lam * (delta - p), dtype=np.float64)
    return np.asarray(lam / xi * (1.0 - np.exp(-xi * size * (delta - p))), dtype=np.float64)


@pytest.mark.parametrize(("intensity", "xi", "size"), INTENSITIES)
class TestHamiltonian:
    def test_sup_and_argmax_by_brute_force(self, intensity, xi: float, size: float) -> None:
        for p in (-0.3, 0.0, 0.4, 2.0):
            d_star = float(intensity.delta_tilde(p, xi, size))
            grid = np.linspace(d_star - 1.0, d_star + 1.0, 200_001)
            vals = _objective(intensity, grid, p, xi, size)
            assert float(intensity.hamiltonian(p, xi, size)) == pytest.approx(vals.max(), rel=1e-9)
            assert float(grid[np.argmax(vals)]) == pytest.approx(d_star, abs=2e-5)

    def test_second_derivative_at_zero(self, intensity, xi: float, size: float) -> None:
        h = 1e-4
        fd = (
            intensity.hamiltonian(h, xi, size)
            - 2 * intensity.hamiltonian(0.0, xi, size)
            + intensity.hamiltonian(-h, xi, size)
        ) / h**2
        assert intensity.hamiltonian_d2_at_zero(xi, size) == pytest.approx(float(fd), rel=1e-5)

    def test_first_order_condition(self, intensity, xi: float, size: float) -> None:
        # QUANT.md (3.11): p = δ̃ − ln(1 − ξΔΛ/Λ′)/(ξΔ) (ξ > 0), p = δ̃ + Λ/Λ′ (ξ = 0)
        p = np.array([-0.2, 0.0, 0.3])
        d = intensity.delta_tilde(p, xi, size)
        e = 1e-6
        ratio = intensity(d) / ((intensity(d + e) - intensity(d - e)) / (2 * e))
        back = d + ratio if xi == 0.0 else d - np.log(1 - xi * size * ratio) / (xi * size)
        assert_allclose(back, p, atol=1e-8)


def test_logistic_curvature_formula() -> None:
    # H″_0(0) = Δλβ W0/(1 + W0)³, W0 = W(e^{−1−α}) (QUANT.md §2.4)
    lam, alpha, beta, size = 3.0, -0.3, 5.0, 2.0
    w0 = lambertw(math.exp(-1 - alpha)).real
    got = LogisticIntensity(lam, alpha, beta).hamiltonian_d2_at_zero(0.0, size)
    assert got == pytest.approx(size * lam * beta * w0 / (1 + w0) ** 3, rel=1e-12)


def test_logistic_xi_to_zero_limit() -> None:
    it = LogisticIntensity(1.0, -0.3, 5.0)
    for p in (-0.1, 0.0, 0.2):
        assert float(it.delta_tilde(p, 1e-7)) == pytest.approx(
            float(it.delta_tilde(p, 0.0)), rel=1e-6
        )
        assert float(it.hamiltonian(p, 1e-7)) == pytest.approx(
            float(it.hamiltonian(p, 0.0)), rel=1e-6
        )


def test_logistic_extreme_costs_do_not_overflow() -> None:
    it = LogisticIntensity(1.0, -0.3, 5.0)
    d = it.delta_tilde(np.array([-500.0, 500.0]))
    assert np.all(np.isfinite(d))
    assert np.all(np.isfinite(it.hamiltonian(np.array([-500.0, 500.0]))))
    assert np.all(np.isfinite(it.delta_tilde(np.array([-50.0, 50.0]), xi=0.5)))


# --------------------------------------------------------------------------------------------
# closed form ≈ ODE near zero inventory (logistic intensity, stationary regime)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("xi", [0.0, 0.5])
def test_logistic_closed_form_close_to_ode_near_zero_inventory(xi: float) -> None:
    it = LogisticIntensity(1.0, -0.3, 5.0)  # 1 RFQ/s, β per bp
    sigma, gamma = 0.05, 0.5  # bp/√s, 1/bp
    ode = solve_quotes_ode(sigma, gamma, it, 20, 3000.0, xi=xi)
    qs = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    cf = closed_form_quotes(qs, sigma, gamma, it, xi=xi)
    idx = np.searchsorted(ode.inventory, qs)
    assert cf.bid[2] == pytest.approx(ode.bid[idx][2], rel=1e-3)  # q = 0
    assert_allclose(cf.bid[1:4], ode.bid[idx][1:4], rtol=2e-3)
    assert_allclose(cf.ask[1:4], ode.ask[idx][1:4], rtol=2e-3)
    assert_allclose(cf.bid, ode.bid[idx], rtol=5e-3)
    # symmetric intensities: δ^b(q) = δ^a(−q); inventory skews the quotes
    assert_allclose(ode.bid[idx], ode.ask[idx][::-1], rtol=1e-9)
    assert np.all(np.diff(ode.bid[idx]) > 0)


def test_exponential_closed_form_close_to_ode_near_zero_inventory() -> None:
    ode = solve_quotes_ode(GLFT_SIGMA, GLFT_GAMMA, GLFT, GLFT_Q, GLFT_T, xi=0.0)
    cf = closed_form_quotes(0.0, GLFT_SIGMA, GLFT_GAMMA, GLFT, xi=0.0)
    assert _at(ode.inventory, ode.bid, 0) == pytest.approx(float(cf.bid), rel=1e-4)


# --------------------------------------------------------------------------------------------
# multi-asset closed form and inventory cost
# --------------------------------------------------------------------------------------------


class TestMultiAsset:
    def test_one_asset_reduces_to_single(self) -> None:
        multi = closed_form_quotes_multi(
            [2.0], [[GLFT_SIGMA**2]], GLFT_GAMMA, [GLFT], xi=GLFT_GAMMA
        )
        single = closed_form_quotes(2.0, GLFT_SIGMA, GLFT_GAMMA, GLFT, xi=GLFT_GAMMA)
        assert_allclose(multi.bid, [float(single.bid)], rtol=1e-12)
        assert_allclose(multi.ask, [float(single.ask)], rtol=1e-12)

    def test_uncorrelated_assets_are_independent(self) -> None:
        its: list[Intensity] = [GLFT, LogisticIntensity(1.0, -0.3, 5.0)]
        sig = [0.3, 0.05]
        q = np.array([2.0, -1.0])
        multi = closed_form_quotes_multi(q, np.diag(np.square(sig)), 0.1, its, xi=0.0)
        for i in range(2):
            single = closed_form_quotes(q[i], sig[i], 0.1, its[i], xi=0.0)
            assert multi.bid[i] == pytest.approx(float(single.bid), rel=1e-12)
            assert multi.ask[i] == pytest.approx(float(single.ask), rel=1e-12)

    def test_correlation_transmits_inventory(self) -> None:
        its: list[Intensity] = [GLFT, GLFT]
        cov = 0.09 * np.array([[1.0, 0.8], [0.8, 1.0]])
        flat = closed_form_quotes_multi([0.0, 0.0], cov, 0.01, its, xi=0.01)
        long2 = closed_form_quotes_multi([0.0, 3.0], cov, 0.01, its, xi=0.01)
        # long asset 2, positively correlated: bid asset 1 lower (wider), offer it tighter
        assert long2.bid[0] > flat.bid[0]
        assert long2.ask[0] < flat.ask[0]

    def test_inventory_skew_with_curvature_is_the_5_18_argument(self) -> None:
        its: list[Intensity] = [GLFT, LogisticIntensity(1.0, -0.3, 5.0), GLFT]
        cov = np.array([[0.09, 0.01, 0.0], [0.01, 0.04, -0.02], [0.0, -0.02, 0.16]])
        q = np.array([1.0, -2.0, 3.0])
        gamma, sizes = 0.05, np.array([1.0, 2.0, 1.0])
        curv = np.array(
            [it.hamiltonian_d2_at_zero(0.0, s) for it, s in zip(its, sizes, strict=True)]
        )
        quotes = closed_form_quotes_multi(q, cov, gamma, its, xi=0.0, sizes=sizes)
        for i, it in enumerate(its):
            e = np.zeros(3)
            e[i] = sizes[i]
            p_bid = inventory_skew(e, q, cov, gamma, hamiltonian_curvature=curv) / sizes[i]
            p_ask = inventory_skew(-e, q, cov, gamma, hamiltonian_curvature=curv) / sizes[i]
            assert float(it.delta_tilde(p_bid, 0.0, sizes[i])) == pytest.approx(
                quotes.bid[i], rel=1e-12
            )
            assert float(it.delta_tilde(p_ask, 0.0, sizes[i])) == pytest.approx(
                quotes.ask[i], rel=1e-12
            )


class TestInventorySkew:
    # risk factors: [BTC delta (coins), BTC 30d vega (USD per vol point)]
    cov = np.array([[2.0e6, 50.0], [50.0, 1.0]])  # daily: (1414 USD/coin)², (1 vol pt)²
    gamma = 1e-6  # 1/USD

    def test_default_mean_variance_form(self) -> None:
        x, q = np.array([3.0, -500.0]), np.array([-10.0, 2000.0])
        expected = self.gamma * (q @ self.cov @ x + 0.5 * x @ self.cov @ x)
        assert inventory_skew(x, q, self.cov, self.gamma) == pytest.approx(expected, rel=1e-12)

    def test_vega_long_desk_bids_lower_and_offers_lower(self) -> None:
        package_vega = np.array([0.0, 400.0])  # a vega-long structure (e.g. a straddle)
        flat, long_vega = np.zeros(2), np.array([0.0, 20_000.0])
        # desk buys the package (client sells: our bid) → acquires +vega
        cost_bid_long = inventory_skew(package_vega, long_vega, self.cov, self.gamma)
        cost_bid_flat = inventory_skew(package_vega, flat, self.cov, self.gamma)
        assert cost_bid_long > 0.0
        assert cost_bid_long > cost_bid_flat
        # desk sells it (our offer) → acquires −vega, which reduces its risk
        cost_ask_long = inventory_skew(-package_vega, long_vega, self.cov, self.gamma)
        cost_ask_flat = inventory_skew(-package_vega, flat, self.cov, self.gamma)
        assert cost_ask_long < 0.0 < cost_ask_flat

        hit = LogisticIntensity(1.0, -0.3, 5.0 / 100.0).hit_probability  # markup in USD
        theo = 2_000.0
        bid_long = theo - optimal_markup(hit, cost_bid_long).markup
        bid_flat = theo - optimal_markup(hit, cost_bid_flat).markup
        ask_long = theo + optimal_markup(hit, cost_ask_long).markup
        ask_flat = theo + optimal_markup(hit, cost_ask_flat).markup
        assert bid_long < bid_flat
        assert ask_long < ask_flat
        assert bid_long < ask_long

    @given(
        x=st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=2),
        q=st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=2),
    )
    @settings(max_examples=100, deadline=None)
    def test_round_trip_costs_nothing(self, x: list[float], q: list[float]) -> None:
        # quadratic value function: going q → q + x → q is free
        xa, qa = np.array(x), np.array(q)
        there = inventory_skew(xa, qa, self.cov, self.gamma)
        back = inventory_skew(-xa, qa + xa, self.cov, self.gamma)
        assert there + back == pytest.approx(0.0, abs=1e-9 * (1 + abs(there)))

    def test_errors(self) -> None:
        with pytest.raises(InvalidInput):
            inventory_skew(np.ones(2), np.ones(3), self.cov, self.gamma)
        with pytest.raises(InvalidInput):
            inventory_skew(
                np.ones(2),
                np.ones(2),
                np.array([[1.0, 2.0], [2.0, 1.0]]),
                1.0,
                hamiltonian_curvature=1.0,
            )
        with pytest.raises(InvalidInput):
            inventory_skew(np.ones(2), np.ones(2), self.cov, -1.0)


# --------------------------------------------------------------------------------------------
# the generic markup optimiser
# --------------------------------------------------------------------------------------------


def _logistic_optimum(alpha: float, beta: float, c: float) -> float:
    return c + (1 + float(lambertw(math.exp(-1 - alpha - beta * c)).real)) / beta


class TestOptimalMarkup:
    @pytest.mark.parametrize("c", [-0.5, -0.05, 0.0, 0.1, 0.4, 2.0])
    def test_logistic_matches_closed_form(self, c: float) -> None:
        it = LogisticIntensity(1.0, -0.3, 5.0)
        m = optimal_markup(it.hit_probability, c)
        assert m.markup == pytest.approx(_logistic_optimum(-0.3, 5.0, c), abs=2e-9)
        assert m.expected_pnl == pytest.approx(float(myopic_quote(c, it).expected_pnl), rel=1e-12)

    @pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
    def test_scale_free(self, scale: float) -> None:
        # same curve expressed in other units (e.g. bp vs USD)
        it = LogisticIntensity(1.0, -1.0, 8.0 / scale)
        m = optimal_markup(it.hit_probability, 0.05 * scale)
        exact = _logistic_optimum(-1.0, 8.0 / scale, 0.05 * scale)
        assert m.markup == pytest.approx(exact, abs=1e-8 * scale)

    def test_probability_vector_on_grid(self) -> None:
        it = LogisticIntensity(1.0, -0.3, 5.0)
        grid = np.linspace(0.0, 2.0, 2001)
        m = optimal_markup(it.hit_probability(grid), 0.1, markup_grid=grid)
        exact = _logistic_optimum(-0.3, 5.0, 0.1)
        assert m.markup == pytest.approx(exact, abs=1e-5)  # O(h²) of the interpolation
        # exact over a piecewise-linear curve: f = 1 − δ on [0, 1] → δ* = (1 + c)/2
        lin = np.array([0.0, 0.5, 1.0])
        m2 = optimal_markup(1.0 - lin, 0.2, markup_grid=lin)
        assert m2.markup == pytest.approx(0.6, rel=1e-12)
        assert m2.expected_pnl == pytest.approx(0.4 * 0.4, rel=1e-12)

    def test_fgp_style_curve_non_concave(self) -> None:
        # FGP hit probability (1 − G(y))(1 − pF(y))^n: Gaussian client reservation (ν = 1.7),
        # p = 0.4, n = 3 competitors whose quotes have a cusped (shape 0.7) exponential-power
        # law at 0.5, so (y − c)P(y) is not concave (QUANT.md §1.3).
        def competitor_cdf(y: np.ndarray) -> np.ndarray:
            z = np.abs(y - 0.5) / 0.3
            tail = 0.5 * np.exp(-(z**0.7))
            return np.where(y < 0.5, tail, 1.0 - tail)

        def hit(y: np.ndarray) -> np.ndarray:
            p_done = (1.0 - ndtr((y - 1.7) / 0.5)) * (1.0 - 0.4 * competitor_cdf(y)) ** 3
            return np.asarray(p_done, dtype=np.float64)

        grid = np.linspace(-1.0, 5.0, 600_001)
        for c in (-0.5, 0.0, 0.3, 1.0):
            m = optimal_markup(hit, c)
            vals = (grid - c) * hit(grid)
            assert m.expected_pnl >= vals.max() * (1 - 1e-12)
            assert m.markup == pytest.approx(float(grid[np.argmax(vals)]), abs=2e-5)
            assert m.expected_pnl == pytest.approx(
                (m.markup - c) * float(hit(np.array([m.markup]))[0])
            )

    @settings(max_examples=200, deadline=None)
    @given(
        probs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=60),
        costs=st.lists(st.floats(-3.0, 3.0), min_size=0, max_size=4),
    )
    def test_several_costs_at_once_equal_one_at_a_time(
        self, probs: list[float], costs: list[float]
    ) -> None:
        f = np.minimum.accumulate(np.asarray(probs))  # a hit curve: non-increasing
        grid = np.linspace(0.0, 5.0, len(probs))
        together = optimal_markups(f, costs, markup_grid=grid)
        assert together == [optimal_markup(f, c, markup_grid=grid) for c in costs]

    def test_several_costs_are_checked(self) -> None:
        grid = np.array([0.0, 1.0])
        with pytest.raises(InvalidInput):
            optimal_markups(np.array([0.5, 0.4]), [0.0, float("inf")], markup_grid=grid)
        with pytest.raises(InvalidInput):
            optimal_markups(np.array([0.5, 0.4]), [0.0], markup_grid=grid[::-1])

    def test_zero_probability_curve(self) -> None:
        m = optimal_markup(lambda d: np.zeros_like(d), 1.0)
        assert m.expected_pnl == 0.0
        assert m.hit_probability == 0.0

    def test_errors(self) -> None:
        with pytest.raises(InvalidInput):
            optimal_markup(np.array([0.5, 0.4]), 0.0)
        with pytest.raises(InvalidInput):
            optimal_markup(np.array([0.5, 0.4]), 0.0, markup_grid=np.array([1.0, 0.0]))
        with pytest.raises(InvalidInput):
            optimal_markup(LogisticIntensity(1.0, 0.0, 1.0).hit_probability, float("nan"))


@given(
    alpha=st.floats(-3.0, 2.0),
    beta=st.floats(0.5, 50.0),
    c1=st.floats(-1.0, 1.0),
    dc=st.floats(0.0, 1.0),
)
@settings(max_examples=100, deadline=None)
def test_optimal_markup_monotone_in_marginal_cost(
    alpha: float, beta: float, c1: float, dc: float
) -> None:
    hit = LogisticIntensity(1.0, alpha, beta).hit_probability
    m1, m2 = optimal_markup(hit, c1), optimal_markup(hit, c1 + dc)
    # a maximiser located from function values is exact to ~√ε of the curve's scale 1/β
    tol = 1e-7 / beta
    assert m2.markup >= m1.markup - tol
    # slope dδ*/dc = 1/(1 + W) ∈ (0, 1]
    assert m2.markup - m1.markup <= dc + tol
    assert m1.markup == pytest.approx(_logistic_optimum(alpha, beta, c1), abs=tol)


@given(c1=st.floats(-1.0, 2.0), dc=st.floats(0.0, 1.0))
@settings(max_examples=50, deadline=None)
def test_optimal_markup_monotone_for_any_decreasing_curve(c1: float, dc: float) -> None:
    # Topkis: ln(δ − c) has increasing differences in (δ, c), so δ*(c) is non-decreasing for
    # every positive f, even when (δ − c)f(δ) is not concave (two humps here).
    def hit(y: np.ndarray) -> np.ndarray:
        return np.asarray(0.6 * expit(-3.0 * y) + 0.4 * (1.0 - ndtr((y - 1.5) / 0.1)))

    m1, m2 = optimal_markup(hit, c1), optimal_markup(hit, c1 + dc)
    assert m2.markup >= m1.markup - 1e-7


def test_optimal_markup_step_function_hit_curve() -> None:
    # A tree model (xgboost) gives a decreasing step function: the supremum of (δ − c)f(δ)
    # is the left limit of a jump; the refinement passes home in on it.
    edges = np.array([0.1, 0.25, 0.4, 0.8, 1.2])
    levels = np.array([0.9, 0.8, 0.6, 0.45, 0.2, 0.0])

    def hit(y: np.ndarray) -> np.ndarray:
        return levels[np.searchsorted(edges, y, side="right")]

    for c in (0.0, 0.2, 0.5):
        pnl_at_edges = (edges - c) * levels[:-1]
        best_edge = float(edges[np.argmax(pnl_at_edges)])
        # sawtooth humps narrower than the scale-free first pass can hide between its points
        # (c = 0.5: 0.140 at 1.2⁻ vs 0.135 at 0.8⁻); a caller-supplied grid resolves them
        grid = None if c < 0.5 else np.linspace(c, c + 3.0, 301)
        m = optimal_markup(hit, c, markup_grid=grid)
        assert best_edge - 2e-3 < m.markup < best_edge
        m4 = optimal_markup(hit, c, markup_grid=grid, refinements=4)
        assert best_edge - 1e-5 < m4.markup < best_edge
