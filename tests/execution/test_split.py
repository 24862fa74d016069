"""The venue split: least cost against a brute force, and what it promises on any input."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.execution.split import (
    VenueLiquidity,
    liquidity_from_levels,
    split_slice,
)


def brute_force(
    quantity_lots: int, venues: list[VenueLiquidity], lot: float, cap: float | None = None
) -> tuple[int, float]:
    """(lots placed, least cost) over every allocation in whole lots: the most placed first."""
    ranges = []
    for v in venues:
        top = math.floor(v.depth / lot + 1e-9)
        low = math.ceil(v.min_size / lot - 1e-9)
        opts = [0, *range(max(low, 1), top + 1)]
        if cap is not None:
            opts = [
                k for k in opts if k == 0 or v.marginal_cost + v.impact * k * lot <= cap + 1e-12
            ]
        ranges.append(opts)
    best = (0, 0.0)
    for combo in itertools.product(*ranges):
        placed = sum(combo)
        if placed > quantity_lots:
            continue
        cost = sum(v.cost(k * lot) for v, k in zip(venues, combo, strict=True))
        if placed > best[0] or (placed == best[0] and cost < best[1] - 1e-12):
            best = (placed, cost)
    return best


venue_st = st.builds(
    lambda i, a, b, d, m: VenueLiquidity(f"v{i}", a, b, d, m),
    st.integers(0, 10**6),
    st.floats(0.5, 1.5).map(lambda x: round(x, 3)),
    st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.2]),
    st.integers(0, 7).map(float),
    st.integers(0, 3).map(float),
)


def unique(venues: list[VenueLiquidity]) -> list[VenueLiquidity]:
    return [
        VenueLiquidity(f"v{i}", v.marginal_cost, v.impact, v.depth, v.min_size)
        for i, v in enumerate(venues)
    ]


class TestAgainstBruteForce:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(venue_st, min_size=1, max_size=3), st.integers(0, 16))
    def test_least_cost_in_whole_lots(self, venues: list[VenueLiquidity], q: int) -> None:
        venues = unique(venues)
        res = split_slice(float(q), venues, lot=1.0)
        placed, cost = brute_force(q, venues, 1.0)
        assert res.allocated == pytest.approx(placed)
        assert res.expected_cost == pytest.approx(cost, abs=1e-9)

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(venue_st, min_size=1, max_size=3),
        st.integers(0, 16),
        st.floats(0.6, 2.0).map(lambda x: round(x, 3)),
    )
    def test_least_cost_under_a_price_limit(
        self, venues: list[VenueLiquidity], q: int, cap: float
    ) -> None:
        venues = unique(venues)
        res = split_slice(float(q), venues, lot=1.0, max_marginal_cost=cap)
        placed, cost = brute_force(q, venues, 1.0, cap)
        assert res.allocated == pytest.approx(placed)
        assert res.expected_cost == pytest.approx(cost, abs=1e-9)
        assert all(a.last_marginal_cost <= cap + 1e-9 for a in res.allocations)

    def test_half_lots(self) -> None:
        venues = [
            VenueLiquidity("a", 1.0, 0.03, 3.0, 1.0),
            VenueLiquidity("b", 1.02, 0.01, 2.5, 1.5),
            VenueLiquidity("c", 0.99, 0.2, 1.0),
        ]
        for q in range(14):
            res = split_slice(q * 0.5, venues, lot=0.5)
            placed, cost = brute_force(q, venues, 0.5)
            assert res.allocated == pytest.approx(placed * 0.5)
            assert res.expected_cost == pytest.approx(cost, abs=1e-9)


class TestPromises:
    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(venue_st, min_size=0, max_size=6),
        st.floats(0, 40),
        st.sampled_from([0.0, 0.1, 1.0]),
    )
    def test_never_beyond_depth_and_sums_or_reports(
        self, venues: list[VenueLiquidity], q: float, lot: float
    ) -> None:
        venues = unique(venues)
        res = split_slice(q, venues, lot=lot)
        by_name = {v.venue: v for v in venues}
        for a in res.allocations:
            v = by_name[a.venue]
            assert 0 < a.quantity <= v.depth + 1e-9
            assert a.quantity >= v.min_size - 1e-9
            if lot:
                assert a.quantity / lot == pytest.approx(round(a.quantity / lot), abs=1e-6)
        assert res.allocated + res.shortfall == pytest.approx(q, abs=1e-9)
        assert res.allocated <= q + 1e-9
        if res.shortfall == 0:
            assert res.complete
        else:
            assert res.reason in ("depth", "min_size", "price_limit", "lot")
        if all(v.min_size == 0 for v in venues) and sum(v.depth for v in venues) >= q + 1:
            assert res.shortfall < max(lot, 1e-9)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(venue_st, min_size=1, max_size=6), st.floats(0.1, 30))
    def test_continuous_split_equalises_marginal_costs(
        self, venues: list[VenueLiquidity], q: float
    ) -> None:
        venues = [
            VenueLiquidity(v.venue, v.marginal_cost, max(v.impact, 1e-3), v.depth)
            for v in unique(venues)
        ]
        res = split_slice(q, venues)
        got = {a.venue: a.quantity for a in res.allocations}
        inner = [
            v.marginal_cost + v.impact * got[v.venue]
            for v in venues
            if 1e-9 < got.get(v.venue, 0.0) < v.depth - 1e-9
        ]
        if not inner or res.shortfall > 0:
            return
        mu = inner[0]
        assert inner == pytest.approx([mu] * len(inner), abs=1e-9)
        for v in venues:
            x = got.get(v.venue, 0.0)
            if v.depth == 0:
                continue
            if x >= v.depth - 1e-9:
                assert v.marginal_cost + v.impact * v.depth <= mu + 1e-9
            elif x <= 1e-9:
                assert v.marginal_cost >= mu - 1e-9  # idle venues are dearer than the level


class TestResults:
    def test_equal_marginal_costs_in_the_example(self) -> None:
        v = [VenueLiquidity("a", 1.0, 0.01, 100), VenueLiquidity("b", 1.0, 0.02, 100)]
        res = split_slice(30, v)
        assert [round(a.quantity, 9) for a in res.allocations] == [20, 10]
        assert res.complete
        assert {round(a.last_marginal_cost, 9) for a in res.allocations} == {1.2}

    def test_depth_shortfall_is_carried(self) -> None:
        v = [VenueLiquidity("a", 1.0, 0.01, 10), VenueLiquidity("b", 1.1, 0.0, 5)]
        res = split_slice(20, v, lot=1.0)
        assert res.allocated == 15
        assert res.shortfall == 5
        assert res.reason == "depth"
        assert not res.complete

    def test_min_size_shortfall(self) -> None:
        res = split_slice(3, [VenueLiquidity("a", 1.0, 0.0, 10, min_size=5)], lot=1.0)
        assert res.allocations == ()
        assert (res.shortfall, res.reason) == (3, "min_size")

    def test_price_limit_shortfall(self) -> None:
        v = [VenueLiquidity("a", 1.0, 0.01, 100), VenueLiquidity("b", 1.0, 0.02, 100)]
        res = split_slice(30, v, max_marginal_cost=1.1)
        assert res.allocated == pytest.approx(15)
        assert res.reason == "price_limit"

    def test_sub_lot_remainder(self) -> None:
        res = split_slice(2.05, [VenueLiquidity("a", 1.0, 0.01, 100)], lot=0.1)
        assert res.allocated == pytest.approx(2.0)
        assert res.reason == "lot"

    def test_flat_venues_fill_cheapest_first(self) -> None:
        v = [VenueLiquidity("dear", 1.2, 0.0, 10), VenueLiquidity("cheap", 1.0, 0.0, 10)]
        res = split_slice(15, v)
        assert {a.venue: a.quantity for a in res.allocations} == {"cheap": 10, "dear": 5}

    def test_many_venues_with_minimums_choose_greedily_and_stay_feasible(self) -> None:
        venues = [VenueLiquidity(f"v{i}", 1.0 + 0.01 * i, 0.01, 10.0, 4.0) for i in range(12)]
        res = split_slice(30.0, venues, lot=1.0)
        assert res.complete
        assert all(4.0 <= a.quantity <= 10.0 for a in res.allocations)
        _, cost = brute_force(30, venues[:4], 1.0)  # the cheapest four suffice
        assert res.expected_cost <= cost + 1e-9

    def test_invalid_input(self) -> None:
        with pytest.raises(ValueError, match="quantity"):
            split_slice(-1, [])
        with pytest.raises(ValueError, match="unique"):
            split_slice(1, [VenueLiquidity("a", 1, 0, 1), VenueLiquidity("a", 1, 0, 1)])
        with pytest.raises(ValueError, match="impact"):
            VenueLiquidity("a", 1.0, -0.1, 1.0)


class TestLiquidityFromLevels:
    def test_a_linear_book_is_fitted_exactly(self) -> None:
        # level j covers cumulative [j, j+1) at the marginal price of its middle
        asks = [(0.05 + 0.001 * (j + 0.5), 1.0) for j in range(8)]
        liq = liquidity_from_levels("a", "buy", asks, fee=0.0003, min_size=0.1)
        assert liq.marginal_cost == pytest.approx(0.0503)
        assert liq.impact == pytest.approx(0.001)
        assert liq.depth == pytest.approx(8.0)
        bids = [(0.05 - 0.001 * (j + 0.5), 1.0) for j in range(8)]
        sell = liquidity_from_levels("a", "sell", bids, fee=0.0003)
        assert sell.marginal_cost == pytest.approx(0.0003 - 0.05)
        assert sell.impact == pytest.approx(0.001)

    def test_one_level_is_flat_and_empty_is_empty(self) -> None:
        liq = liquidity_from_levels("a", "buy", [(0.05, 3.0)])
        assert (liq.marginal_cost, liq.impact, liq.depth) == (0.05, 0.0, 3.0)
        assert liquidity_from_levels("a", "sell", []).depth == 0.0
