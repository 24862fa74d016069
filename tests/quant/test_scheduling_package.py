"""Scheduling additions: adverse drift (eqs 25–26), re-solving, and legging-safe leg releases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from app.quant.errors import InvalidInput
from app.quant.scheduling import (
    ExecutionModel,
    ac_kappa,
    legging_delta,
    legging_headroom,
    linear_schedule,
    optimal_schedule,
    release_legs,
    reschedule,
    schedule_moments,
    simulate_shortfall,
)

TABLE1 = ExecutionModel(1e6, 5.0, 5, 0.95, 2.5e-6, 2.5e-7, 0.0625)
DRIFT = ExecutionModel(1e6, 5.0, 5, 0.95, 2.5e-6, 2.5e-7, 0.0625, drift=0.02)


class TestDrift:
    def test_eq26_closed_form(self) -> None:
        lam = 1e-6
        s = optimal_schedule(DRIFT, lam)
        kappa, _ = ac_kappa(DRIFT, lam)
        t = np.linspace(0.0, 5.0, 6)
        xbar = 0.02 / (2 * lam * 0.95**2)
        closed = ((1e6 + xbar) * np.sinh(kappa * (5.0 - t)) + xbar * np.sinh(kappa * t)) / np.sinh(
            kappa * 5.0
        ) - xbar
        assert_allclose(s.holdings, closed, rtol=1e-9, atol=1e-6)
        assert s.kappa == pytest.approx(kappa)

    def test_risk_neutral_limit_is_a_parabola(self) -> None:
        # λ = 0: constant second difference ατ²/(2η̃), x_j = X(1 − j/N) − ατ²j(N − j)/(4η̃)
        s = optimal_schedule(DRIFT, 0.0)
        j = np.arange(6)
        tau, eta_t = DRIFT.tau, DRIFT.eta_tilde
        assert_allclose(
            s.holdings, 1e6 * (1 - j / 5) - 0.02 * tau**2 * j * (5 - j) / (4 * eta_t), rtol=1e-12
        )

    def test_drift_adds_its_holding_cost_to_e(self) -> None:
        lin = linear_schedule(DRIFT)
        base = linear_schedule(TABLE1)
        # ατΣx_k = α X (T − τ)/2 for the linear schedule
        assert lin.expected_cost - base.expected_cost == pytest.approx(0.02 * 1e6 * 4.0 / 2)
        assert (lin.expected_cost, lin.variance) == pytest.approx(
            schedule_moments(DRIFT, lin.holdings)
        )

    def test_optimal_beats_linear_on_mean_with_adverse_drift(self) -> None:
        for lam in (0.0, 1e-8):  # small λ: the drift, not the risk, sets the pace
            opt = optimal_schedule(DRIFT, lam)
            assert opt.expected_cost < linear_schedule(DRIFT).expected_cost
        # and without drift the linear schedule has the least mean (λ > 0 pays for less risk)
        assert optimal_schedule(TABLE1, 1e-6).expected_cost > linear_schedule(TABLE1).expected_cost

    def test_closed_form_e_and_v_against_monte_carlo_with_drift(self) -> None:
        rng = np.random.default_rng(26)
        for sched in (optimal_schedule(DRIFT, 1e-6), linear_schedule(DRIFT)):
            mc = simulate_shortfall(DRIFT, sched.holdings, 200_000, rng, initial_price=50.0)
            assert abs(mc.mean - sched.expected_cost) < 4 * mc.standard_error
            assert mc.variance == pytest.approx(sched.variance, rel=5 * math.sqrt(2 / 200_000))

    def test_purchases_by_symmetry(self) -> None:
        buy = ExecutionModel(-1e6, 5.0, 5, 0.95, 2.5e-6, 2.5e-7, 0.0625, drift=0.02)
        a, b = optimal_schedule(DRIFT, 1e-6), optimal_schedule(buy, 1e-6)
        assert_allclose(b.holdings, -a.holdings)
        assert b.expected_cost == pytest.approx(a.expected_cost)

    def test_strong_drift_trades_one_way_and_finishes_early(self) -> None:
        m = ExecutionModel(1e6, 5.0, 20, 0.95, 2.5e-6, 2.5e-7, 0.0625, drift=0.5)
        s = optimal_schedule(m, 1e-6)
        assert np.all(np.diff(s.holdings) <= 1e-6)  # never buys back
        assert np.all(s.holdings >= 0)
        assert s.holdings[-3] == pytest.approx(0.0, abs=1e-3)  # done before the horizon
        lam = 1e-6
        base = s.expected_cost + lam * s.variance
        rng = np.random.default_rng(5)
        for _ in range(30):  # no feasible one-way perturbation does better
            n = np.maximum(s.trades + rng.normal(0, 2e3, 20), 0.0)
            n *= 1e6 / n.sum()
            x = np.concatenate(([1e6], 1e6 - np.cumsum(n)))
            x[-1] = 0.0
            e, v = schedule_moments(m, x)
            assert e + lam * v >= base * (1 - 1e-7)

    def test_the_best_one_way_prefix_is_the_qp_optimum(self) -> None:
        from app.quant.scheduling import _one_way_schedule

        m = ExecutionModel(200.0, 600.0, 10, 2e-5, 5.3e-4, 2e-6, 7.9e-4, drift=3e-6)
        lam = 20.0
        fast = optimal_schedule(m, lam)
        e_qp, v_qp = schedule_moments(m, _one_way_schedule(m, lam, 200.0))
        assert fast.expected_cost + lam * fast.variance <= e_qp + lam * v_qp + 1e-12
        assert_allclose(fast.holdings, _one_way_schedule(m, lam, 200.0), atol=1e-2)

    def test_a_favourable_drift_delays_but_never_overshoots(self) -> None:
        m = ExecutionModel(1e6, 5.0, 10, 0.95, 2.5e-6, 2.5e-7, 0.0625, drift=-0.5)
        s = optimal_schedule(m, 1e-7)
        assert np.all(np.diff(s.holdings) <= 1e-3)
        assert s.holdings.max() <= 1e6 + 1e-3
        assert s.trades[0] < s.trades[-1]  # waits for the price to come its way

    def test_drift_with_risk_seeking_is_refused(self) -> None:
        with pytest.raises(InvalidInput):
            optimal_schedule(DRIFT, -1e-7)


class TestReschedule:
    def test_without_shortfall_it_is_the_tail_of_the_original(self) -> None:
        lam = 1e-6
        s = optimal_schedule(TABLE1, lam)
        tail = reschedule(TABLE1, lam, float(s.holdings[2]), 3)
        assert_allclose(tail.holdings, s.holdings[2:], rtol=1e-9, atol=1e-6)

    def test_a_shortfall_is_spread_over_the_slices_left(self) -> None:
        lam = 1e-6
        s = optimal_schedule(TABLE1, lam)
        behind = float(s.holdings[2]) + 50_000
        tail = reschedule(TABLE1, lam, behind, 3)
        assert tail.holdings[0] == pytest.approx(behind)
        assert tail.holdings[-1] == 0.0
        assert np.all(tail.trades > s.trades[2:])

    def test_needs_a_slice(self) -> None:
        with pytest.raises(InvalidInput):
            reschedule(TABLE1, 1e-6, 1.0, 0)


class TestLegging:
    def test_headroom(self) -> None:
        assert legging_headroom([0.55, -0.35], 11.0) == pytest.approx(20.0)
        assert legging_headroom([0.3, 0.2, -0.1], 5.0) == pytest.approx(10.0)
        assert legging_headroom([0.0, 0.0], 1.0) == math.inf
        with pytest.raises(InvalidInput):
            legging_headroom([0.1], -1.0)

    def test_pro_rata_when_everything_fills(self) -> None:
        rel = release_legs(10.0, 100.0, [1, 2], [0, 0], [0, 0], [0.5, -0.2], 1e9)
        assert_allclose(rel, [10.0, 20.0])

    def test_a_leg_that_cannot_fill_holds_the_others(self) -> None:
        # leg 1 never fills: leg 0 may run at most band/0.5 = 4 units ahead
        ratios, deltas, band = [1, 1], [0.5, -0.3], 2.0
        filled = np.zeros(2)
        for target in (5.0, 10.0, 15.0):
            rel = release_legs(target, 100.0, ratios, filled, filled, deltas, band)
            filled = filled + np.array([rel[0], 0.0])
        assert filled[0] == pytest.approx(4.0)
        assert abs(legging_delta(filled, ratios, deltas)) <= band + 1e-12

    def test_never_beyond_the_package(self) -> None:
        rel = release_legs(500.0, 100.0, [1, 3], [90, 270], [95, 270], [0.1, 0.1], 1e9)
        assert_allclose(rel, [5.0, 30.0])

    @settings(max_examples=150, deadline=None)
    @given(
        legs=st.lists(st.tuples(st.integers(1, 4), st.floats(-1.0, 1.0)), min_size=1, max_size=4),
        band=st.floats(0.0, 20.0),
        rounds=st.lists(
            st.tuples(st.floats(0.0, 30.0), st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4)),
            min_size=1,
            max_size=12,
        ),
    )
    def test_the_band_holds_whatever_part_of_the_orders_fills(
        self,
        legs: list[tuple[int, float]],
        band: float,
        rounds: list[tuple[float, list[float]]],
    ) -> None:
        ratios = np.array([r for r, _ in legs], dtype=float)
        deltas = np.array([d for _, d in legs])
        total = 60.0
        filled = np.zeros(len(legs))
        target = 0.0
        for step, fractions in rounds:
            target = min(total, target + step)
            rel = release_legs(target, total, ratios, filled, filled, deltas, band)
            assert np.all(rel >= 0)
            # every subset of the in-flight orders may fill, each in any part
            worst = 0.0
            for corner in np.ndindex(*(2,) * len(legs)):
                done = filled + np.array(corner) * rel
                worst = max(worst, abs(legging_delta(done, ratios, deltas)))
            assert worst <= band * (1 + 1e-9) + 1e-9
            filled = filled + np.array(fractions[: len(legs)]) * rel
            assert np.all(filled <= ratios * total + 1e-9)
            assert abs(legging_delta(filled, ratios, deltas)) <= band * (1 + 1e-9) + 1e-9
