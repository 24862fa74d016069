"""Almgren–Chriss: Table 1 anchors (QUANT.md A7, A9), closed forms vs sums, frontier, MC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.quant import (
    ExecutionModel,
    InvalidInput,
    ac_kappa,
    efficient_frontier,
    linear_schedule,
    optimal_schedule,
    schedule_moments,
    simulate_shortfall,
)

REL = 1e-4
# Table 1: 1M shares over 5 days in 5 slices; σ = 0.95 $/share/day^½ (paper's rounding)
TABLE1 = ExecutionModel(
    shares=1e6, horizon=5.0, n_periods=5, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625
)


class TestReferenceValues:
    def test_a7_optimal_trajectory_lambda_1e6(self) -> None:
        s = optimal_schedule(TABLE1, 1e-6)
        assert s.kappa == pytest.approx(0.6071, rel=REL)
        assert s.kappa_tilde == pytest.approx(0.6164, rel=REL)
        assert s.kappa * TABLE1.horizon == pytest.approx(3.0, abs=0.05)  # paper: κT ≈ 3
        assert_allclose(
            s.holdings, [1_000_000, 541_956, 289_854, 147_897, 62_142, 0], rtol=REL, atol=0.5
        )
        assert s.expected_cost == pytest.approx(911_227, rel=REL)
        assert s.std == pytest.approx(603_431, rel=REL)

    def test_a9_naive_linear_schedule(self) -> None:
        s = linear_schedule(TABLE1)
        assert s.expected_cost == pytest.approx(662_500, rel=REL)
        assert s.variance == pytest.approx(1.0830e12, rel=REL)
        assert s.std == pytest.approx(1_040_673, rel=REL)
        assert_allclose(s.holdings, [1e6, 8e5, 6e5, 4e5, 2e5, 0])
        assert optimal_schedule(TABLE1, 0.0).expected_cost == s.expected_cost

    def test_risk_seeking_lambda_oscillatory_solution(self) -> None:
        s = optimal_schedule(TABLE1, -2e-7)  # QUANT.md §3, trajectory C
        assert_allclose(
            s.holdings, [1e6, 910_056, 750_949, 534_769, 277_946, 0], rtol=REL, atol=0.5
        )
        assert s.expected_cost == pytest.approx(717_958, rel=REL)
        assert s.std == pytest.approx(1_258_654, rel=REL)

    def test_holding_std_matches_paper(self) -> None:
        # paper: σ√T = 2.12 $/share, √V of holding the block to T = $2.12M (rounded)
        held = np.full(TABLE1.n_periods + 1, TABLE1.shares)
        _, v = schedule_moments(TABLE1, held)
        assert math.sqrt(v) == pytest.approx(2.12e6, abs=5e3)
        assert math.sqrt(v) > 2 * linear_schedule(TABLE1).std

    def test_kappa_small_tau_limit(self) -> None:
        # eq. 19: κ → √(λσ²/η) as τ → 0
        fine = ExecutionModel(1e6, 5.0, 5000, 0.95, 2.5e-6, 0.0, 0.0)
        kappa, kappa_t = ac_kappa(fine, 1e-6)
        assert kappa == pytest.approx(math.sqrt(1e-6 * 0.95**2 / 2.5e-6), rel=1e-6)
        assert kappa_t == pytest.approx(kappa, rel=1e-6)


class TestClosedFormsAgainstSums:
    @pytest.mark.parametrize("lam", [1e-9, 1e-7, 1e-6, 2e-6, 1e-5, 1e-3])
    def test_eq20_equals_eq8_and_eq5(self, lam: float) -> None:
        s = optimal_schedule(TABLE1, lam)
        e, v = schedule_moments(TABLE1, s.holdings)
        assert s.expected_cost == pytest.approx(e, rel=1e-10)
        assert s.variance == pytest.approx(v, rel=1e-8)
        # eq. 18: trades
        n = (
            2
            * math.sinh(0.5 * s.kappa * TABLE1.tau)
            / math.sinh(s.kappa * TABLE1.horizon)
            * np.cosh(s.kappa * (TABLE1.horizon - (np.arange(1, 6) - 0.5) * TABLE1.tau))
            * TABLE1.shares
        )
        assert_allclose(s.trades, n, rtol=1e-10)

    def test_linear_formulas_eq10_eq11(self) -> None:
        s = linear_schedule(TABLE1)
        assert (s.expected_cost, s.variance) == pytest.approx(schedule_moments(TABLE1, s.holdings))

    def test_large_kappa_does_not_overflow(self) -> None:
        s = optimal_schedule(TABLE1, 1e3)
        assert np.all(np.isfinite(s.holdings))
        assert math.isfinite(s.expected_cost)
        assert math.isfinite(s.variance)
        # sells almost everything in the first slice
        assert s.holdings[1] < 1e-6 * TABLE1.shares

    def test_optimal_beats_linear_on_the_criterion(self) -> None:
        lam = 1e-6
        opt = optimal_schedule(TABLE1, lam)
        lin = linear_schedule(TABLE1)
        assert opt.expected_cost + lam * opt.variance < lin.expected_cost + lam * lin.variance
        # and no perturbation of the interior holdings improves it (first-order condition)
        rng = np.random.default_rng(3)
        base = opt.expected_cost + lam * opt.variance
        for _ in range(20):
            x = opt.holdings.copy()
            x[1:-1] += rng.normal(0, 1e3, 4)
            e, v = schedule_moments(TABLE1, x)
            assert e + lam * v >= base - 1e-6 * base


def test_efficient_frontier_is_monotone_and_convex() -> None:
    lams = np.geomspace(1e-8, 1e-4, 40)
    f = efficient_frontier(TABLE1, lams)
    assert np.all(np.diff(f.expected_cost) > 0)
    assert np.all(np.diff(f.variance) < 0)
    # convex frontier E(V): slope dE/dV = −λ increasing in V ⇒ E convex in V
    slopes = np.diff(f.expected_cost) / np.diff(f.variance)
    assert np.all(np.diff(slopes[::-1]) > 0)
    assert_allclose(-slopes, np.sqrt(lams[1:] * lams[:-1]), rtol=0.2)


def test_monte_carlo_matches_expected_cost_and_variance() -> None:
    rng = np.random.default_rng(20240101)
    for sched in (optimal_schedule(TABLE1, 1e-6), linear_schedule(TABLE1)):
        mc = simulate_shortfall(TABLE1, sched.holdings, 200_000, rng, initial_price=50.0)
        assert abs(mc.mean - sched.expected_cost) < 3 * mc.standard_error
        # sample variance: relative standard error √(2/(n−1)) for Gaussian costs
        assert mc.variance == pytest.approx(sched.variance, rel=4 * math.sqrt(2 / 200_000))


def test_monte_carlo_is_reproducible_with_the_seed() -> None:
    h = linear_schedule(TABLE1).holdings
    a = simulate_shortfall(TABLE1, h, 1000, np.random.default_rng(1))
    b = simulate_shortfall(TABLE1, h, 1000, np.random.default_rng(1))
    assert_allclose(a.costs, b.costs)


def test_invalid_models() -> None:
    with pytest.raises(InvalidInput):
        ExecutionModel(1e6, 5.0, 5, 0.95, eta=1e-7, gamma=2.5e-7)  # η̃ < 0
    with pytest.raises(InvalidInput):
        ExecutionModel(1e6, 0.0, 5, 0.95, 2.5e-6)
    with pytest.raises(InvalidInput):
        schedule_moments(TABLE1, np.zeros(3))
    with pytest.raises(InvalidInput):
        optimal_schedule(TABLE1, -1.0)
