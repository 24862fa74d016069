from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dealers.selection import (
    Candidate,
    SelectionParams,
    choose_dealers,
    expected_fill,
    greedy_order,
)


def fixed(p_answer, p_win, calls=None):
    pa, pw = np.asarray(p_answer, float), np.asarray(p_win, float)

    def predict(n: int):
        if calls is not None:
            calls.append(n)
        return pa, pw

    return predict


def cands(n: int) -> list[Candidate]:
    return [Candidate(f"id{i}", f"d{i}") for i in range(n)]


class TestChooseDealers:
    def test_ranks_by_p_win_then_p_answer(self):
        sel = choose_dealers(
            cands(4),
            fixed([0.9, 0.5, 0.8, 0.2], [0.3, 0.5, 0.3, 0.1]),
            SelectionParams(leak_cost=0.0, max_dealers=4),
        )
        assert [d.name for d in sel.dealers] == ["d1", "d0", "d2", "d3"]
        assert [d.rank for d in sel.dealers] == [1, 2, 3, 4]

    def test_asks_while_the_marginal_fill_beats_the_leak_cost(self):
        # marginals: 0.5, 0.25, 0.125, 0.0625
        sel = choose_dealers(cands(4), fixed([0.9] * 4, [0.5] * 4), SelectionParams(leak_cost=0.1))
        assert sel.k == 3
        assert [d.selected for d in sel.dealers] == [True, True, True, False]
        assert sel.expected_fill == pytest.approx(0.875)
        assert sel.net_value == pytest.approx(0.875 - 0.3)
        assert "< leak cost" in sel.dealers[3].reason

    def test_bounds(self):
        many = choose_dealers(
            cands(6), fixed([0.9] * 6, [0.5] * 6), SelectionParams(leak_cost=0.0, max_dealers=2)
        )
        assert many.k == 2
        assert "2 maximum" in many.dealers[2].reason
        few = choose_dealers(
            cands(3), fixed([0.1] * 3, [0.01] * 3), SelectionParams(leak_cost=0.5, min_dealers=2)
        )
        assert few.k == 2
        assert "2 minimum" in few.dealers[0].reason
        assert "rarely answers" in few.dealers[0].reason

    def test_ineligible_dealers_are_listed_with_their_reason(self):
        cs = [*cands(2), Candidate("x", "btc-only", eligible=False, reason="no ETH")]
        sel = choose_dealers(cs, fixed([0.5, 0.5], [0.2, 0.3]))
        last = sel.dealers[-1]
        assert last.name == "btc-only"
        assert not last.selected
        assert last.rank is None
        assert last.reason == "not eligible: no ETH"

    def test_no_eligible_dealer(self):
        sel = choose_dealers([Candidate("x", "a", eligible=False)], fixed([], []))
        assert sel.k == 0
        assert sel.expected_fill == 0.0

    def test_re_predicts_at_the_chosen_count(self):
        calls: list[int] = []
        sel = choose_dealers(
            cands(5),
            fixed([0.9] * 5, [0.5] * 5, calls),
            SelectionParams(leak_cost=0.1, planned_dealers=2),
        )
        assert calls == [2, 3]
        assert sel.k == 3
        assert sel.n_asked_assumed == 3

    def test_forced_k(self):
        calls: list[int] = []
        sel = choose_dealers(
            cands(5), fixed([0.9] * 5, [0.01] * 5, calls), SelectionParams(leak_cost=1.0), k=4
        )
        assert sel.k == 4
        assert calls == [4]
        assert sum(d.selected for d in sel.dealers) == 4

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=7), st.floats(0.0, 0.3))
    def test_chosen_set_maximises_net_value(self, p_win, cost):
        n = len(p_win)
        params = SelectionParams(leak_cost=cost, max_dealers=n)
        sel = choose_dealers(cands(n), fixed([0.5] * n, p_win), params)
        best = max(
            (
                expected_fill(np.array([p_win[i] for i in s])) - cost * len(s)
                for r in range(1, n + 1)
                for s in itertools.combinations(range(n), r)
            ),
        )
        assert sel.net_value == pytest.approx(best, abs=1e-9)

    @given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10))
    def test_expected_fill_grows_with_each_dealer(self, p):
        arr = np.array(p)
        fills = [expected_fill(arr[greedy_order(arr, arr)][:k]) for k in range(len(arr) + 1)]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(fills))
