"""The ensemble evaluated along the markup axis gives the booster's own numbers, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.axis import AxisEnsemble
from ml.hit.model import HitModel


@pytest.fixture(scope="module")
def shipped() -> tuple[xgb.Booster, AxisEnsemble]:
    booster = HitModel.load().head.booster
    axis = AxisEnsemble.build(booster)
    assert axis is not None, "the shipped hit booster must be served along its markup axis"
    return booster, axis


def _every_cell(axis: AxisEnsemble, row: np.ndarray) -> np.ndarray:
    """``row`` with the axis feature at one value of each cell (below the first cut, then
    each cut: a value equal to a cut is the first of the cut's cell)."""
    at = np.r_[float(axis.cuts[0]) - 1.0, axis.cuts.astype(np.float64)]
    grid = np.tile(row, (len(at), 1))
    grid[:, axis.feature] = at
    return grid


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
value = st.one_of(finite, st.just(float("nan")), st.sampled_from([0.0, 1.0, 2.0, 3.0, 13.0]))


class TestShippedHitBooster:
    @settings(max_examples=60, deadline=None)
    @given(rows=st.lists(st.lists(value, min_size=13, max_size=13), min_size=1, max_size=2))
    def test_margins_and_probabilities_equal_the_booster(self, shipped, rows):
        booster, axis = shipped
        x = np.asarray(rows, dtype=np.float64)
        margins, probs = axis.margins(x), axis.probabilities(x)
        assert margins.shape == probs.shape == (len(rows), len(axis.cuts) + 1)
        for i, row in enumerate(x):
            grid = _every_cell(axis, row)
            np.testing.assert_array_equal(
                margins[i], booster.inplace_predict(grid, predict_type="margin")
            )
            np.testing.assert_array_equal(probs[i], booster.inplace_predict(grid))

    def test_the_axis_column_of_a_row_is_ignored(self, shipped):
        _, axis = shipped
        row = np.array([0.3, 0, 2, 1, 1, 2, 4.6, 15.7, 8.5, 30, 0.35, 0, 0.8])
        other = row.copy()
        other[0] = 4.0
        np.testing.assert_array_equal(axis.margins(row), axis.margins(other))

    def test_cells_follow_float32_comparison(self, shipped):
        _, axis = shipped
        cut = float(axis.cuts[5])
        below = float(np.nextafter(np.float32(cut), np.float32(-np.inf)))
        assert list(axis.cells([below, cut, np.inf, -np.inf])) == [5, 6, len(axis.cuts), 0]


def _train(objective: str, categorical_axis: bool = False, depth: int = 10) -> xgb.Booster:
    """A small booster with categorical features, missing values and deep trees (paths of
    more than 8 decisions)."""
    rng = np.random.default_rng(7)
    n = 3000
    x = np.column_stack(
        [
            rng.uniform(0, 5, n),
            rng.integers(0, 6, n).astype(float),
            rng.normal(size=n),
            rng.normal(size=n),
        ]
    )
    x[rng.random(n) < 0.1, 2] = np.nan
    x[rng.random(n) < 0.05, 1] = np.nan
    logit = 1.5 - 0.8 * x[:, 0] + np.where(np.isin(x[:, 1], [1, 4]), 1.0, -0.5) + x[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-np.nan_to_num(logit)))).astype(float)
    if categorical_axis:
        x[:, 0] = np.floor(x[:, 0])
    types = ["c" if categorical_axis else "q", "c", "q", "q"]
    d = xgb.DMatrix(x, label=y, feature_types=types, enable_categorical=True)
    params = {"objective": objective, "max_depth": depth, "tree_method": "hist", "nthread": 1}
    return xgb.train({**params, "max_cat_to_onehot": 1}, d, num_boost_round=12)


class TestOtherBoosters:
    def test_deep_trees_with_categories_and_missing_values(self):
        booster = _train("binary:logistic")
        axis = AxisEnsemble.build(booster)
        assert axis is not None
        assert axis._leaves.path.shape[1] > 8  # more than one word per path
        rng = np.random.default_rng(3)
        for _ in range(40):
            row = np.array([0.0, rng.integers(-1, 8), rng.normal(), rng.normal()])
            row[rng.random(4) < 0.2] = np.nan
            grid = _every_cell(axis, row)
            np.testing.assert_array_equal(axis.probabilities(row)[0], booster.inplace_predict(grid))

    def test_unsupported_boosters_are_refused(self):
        assert AxisEnsemble.build(_train("reg:squarederror", depth=3)) is None
        assert AxisEnsemble.build(_train("binary:logistic", categorical_axis=True)) is None


def test_the_hit_model_falls_back_to_rows_for_a_nan_markup(monkeypatch):
    model = HitModel.load()
    from app.pricing.hit import HitContext

    ctx = HitContext("BTC", "straddle", "buy", 50.0, 3e6, 4e3, 20.0, None, {"rfq_side": "buy"})
    along = model.curves(np.array([0.1, 1.0]), [ctx])[0]  # along the axis
    assert model._axis is not None

    def no_axis(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a NaN markup must not go along the axis")

    monkeypatch.setattr(model, "_along_axis", no_axis)
    grid = np.array([0.1, np.nan, 1.0])
    curve = model.curves(grid, [ctx])[0]  # row by row through the booster
    assert curve.shape == (3,)
    np.testing.assert_array_equal(curve[[0, 2]], along)


def test_no_markups_give_one_empty_curve_per_context():
    from app.pricing.hit import HitContext

    model = HitModel.load()
    ctx = HitContext("BTC", "straddle", "buy", 50.0, 3e6, 4e3, 20.0, None, {"rfq_side": "buy"})
    curves = model.curves(np.array([]), [ctx, ctx])
    assert [c.shape for c in curves] == [(0,), (0,)]
