from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.pricing.hit import HitContext, HitCurve
from app.quant.quoting import optimal_markup
from ml.evaluate import evaluate, write_predictions_csv
from ml.export import LogData
from ml.features import STRUCTURES, FeatureStore, rfq_context
from ml.fill.model import FillModel
from ml.fill.train import train_fill
from ml.hit.model import HitModel
from ml.hit.train import train_hit
from ml.registry import load_artifact

from ._data import small_sim

GRID = np.concatenate([np.linspace(0.0, 0.5, 51)[:-1], np.linspace(0.5, 5.0, 91)])


@pytest.fixture(scope="module")
def hit_model() -> HitModel:
    return HitModel.load()


@pytest.fixture(scope="module")
def fill_model() -> FillModel:
    return FillModel.load()


contexts = st.builds(
    HitContext,
    underlying=st.sampled_from(["BTC", "ETH", "SOL"]),
    structure=st.sampled_from([*STRUCTURES, "unknown"]),
    side=st.sampled_from(["buy", "sell"]),
    quantity=st.floats(1, 5_000),
    notional_usd=st.floats(1e4, 5e8),
    gross_vega_usd=st.floats(10, 1e6),
    tenor_days=st.floats(0.5, 400),
    client=st.sampled_from([None, "sim-client-01", "new-client"]),
    extra=st.sampled_from([None, {"rfq_side": "two_way"}, {"rfq_side": "buy", "n_legs": 3}]),
)


class TestHitModel:
    @settings(max_examples=80, deadline=None)
    @given(ctx=contexts)
    def test_monotone_decreasing_in_the_markup(self, hit_model: HitModel, ctx: HitContext):
        p = hit_model.probabilities(GRID, ctx)
        assert p.shape == GRID.shape
        assert np.all((p >= 0) & (p <= 1))
        assert np.all(np.diff(p) <= 0)
        # the booster itself is monotone (the running minimum is only a guard)
        from ml.features import hit_matrix

        raw = hit_model.head.predict(hit_matrix(ctx, GRID, None))
        assert np.all(np.diff(raw) <= 1e-6)

    @settings(max_examples=60, deadline=None)
    @given(
        a=contexts,
        b=contexts,
        grid=st.one_of(
            st.just(GRID),
            st.lists(st.floats(-1.0, 8.0), min_size=1, max_size=300).map(np.array),
        ),
    )
    def test_curves_equal_every_row_evaluated(
        self, hit_model: HitModel, a: HitContext, b: HitContext, grid: np.ndarray
    ):
        """One call for both sides, one row per cell between the trees' markup splits: the
        same numbers, to the bit, as evaluating every markup of each curve on its own."""
        from ml.features import hit_matrix

        fast = hit_model.curves(grid, [a, b])
        for ctx, got in zip((a, b), fast, strict=True):
            order = np.argsort(grid, kind="stable")
            full = np.empty(len(grid))
            full[order] = np.minimum.accumulate(
                hit_model.head.predict(hit_matrix(ctx, grid[order], None))
            )
            np.testing.assert_array_equal(got, full)
        # the cells are those of the markup splits: evaluating a split value and the next
        # float32 below it crosses a cell wall, so cells are not merged across it
        cut = float(hit_model._cuts[len(hit_model._cuts) // 2])
        below = float(np.nextafter(np.float32(cut), np.float32(-np.inf)))
        pair = np.array([below, cut])
        np.testing.assert_array_equal(
            hit_model.curves(pair, [a])[0],
            np.minimum.accumulate(hit_model.head.predict(hit_matrix(a, pair, None))),
        )

    def test_is_a_hit_curve_for_the_pricing_code(self, hit_model: HitModel):
        curve: HitCurve = hit_model
        ctx = HitContext(
            "BTC", "call_spread", "buy", 100.0, 6.4e6, 5_000.0, 30.0, None, {"rfq_side": "buy"}
        )
        probs = curve.probabilities(GRID, ctx)
        best = optimal_markup(probs, 0.0, markup_grid=GRID)
        assert 0.0 < best.markup < 5.0
        assert 0.0 < best.hit_probability < 1.0
        unsorted = GRID[::-1].copy()
        np.testing.assert_allclose(curve.probabilities(unsorted, ctx), probs[::-1])

    def test_two_way_requests_hit_each_side_less(self, hit_model: HitModel):
        one = HitContext(
            "BTC", "call", "buy", 100.0, 6.4e6, 5_000.0, 30.0, None, {"rfq_side": "buy"}
        )
        two = HitContext(
            "BTC", "call", "buy", 100.0, 6.4e6, 5_000.0, 30.0, None, {"rfq_side": "two_way"}
        )
        assert (
            hit_model.probabilities(GRID[:20], two).mean()
            < hit_model.probabilities(GRID[:20], one).mean()
        )

    def test_client_history_moves_the_curve(self, hit_model: HitModel):
        store = FeatureStore()
        for i in range(200):
            store.observe_client_result("eager", 1e9 + i, True, 1.0)
            store.observe_client_result("picky", 1e9 + i, False, 0.3)
        model = HitModel(hit_model.artifact, store)
        ctx = {
            "underlying": "BTC",
            "structure": "call",
            "side": "buy",
            "quantity": 100.0,
            "notional_usd": 6.4e6,
            "gross_vega_usd": 5_000.0,
            "tenor_days": 30.0,
            "extra": {"rfq_side": "buy"},
        }
        eager = model.probabilities(GRID[:40], HitContext(client="eager", **ctx))
        picky = model.probabilities(GRID[:40], HitContext(client="picky", **ctx))
        assert eager.mean() > picky.mean()


class TestFillModel:
    def test_predicts_per_dealer(self, fill_model: FillModel):
        greeks = {
            "vega_usd_per_vol_point": 1200.0,
            "gross_vega_usd_per_vol_point": 5000.0,
            "spot": 64000.0,
            "legs": [
                {"forward": 64500, "t_years": 0.1, "vol": 0.55, "delta": 0.5},
                {"forward": 64500, "t_years": 0.1, "vol": 0.56, "delta": 0.3},
            ],
        }
        legs = [
            {"strike": 65000, "ratio": 1, "direction": "buy"},
            {"strike": 70000, "ratio": 1, "direction": "sell"},
        ]
        ctx = rfq_context(
            at=1.78e9,
            underlying="BTC",
            structure="call_spread",
            side="buy",
            quantity=100,
            client=None,
            hedge_reference=None,
            legs=legs,
            greeks=greeks,
        )
        names = [*fill_model.features.dealers[:5], "a-new-dealer"]
        pa, pw = fill_model.predict(ctx, names, 4, FeatureStore())
        assert pa.shape == pw.shape == (6,)
        assert np.all((pw >= 0) & (pw <= pa) & (pa <= 1))
        predict = fill_model.predictor(ctx, names, FeatureStore())
        np.testing.assert_allclose(predict(4)[1], pw)
        assert not np.allclose(predict(8)[0], pa)  # competition matters


class TestTraining:
    def test_train_save_load_evaluate_predict(self, tmp_path: Path):
        sim = small_sim()
        log = LogData(sim.tables, source="test")
        fill = train_fill(log, tmp_path, rounds=30, version="f1", nthread=1)
        hit = train_hit(log, tmp_path, rounds=30, version="h1", nthread=1)
        for art in (fill, hit):
            again = load_artifact(art.path, art.name)
            assert again.manifest["data"]["rows"] > 0
            assert again.manifest["data"]["fingerprint"] == log.fingerprint()
            assert set(again.manifest["metrics"]) >= set(again.manifest["heads"]) - {
                "win_given_answer"
            }
        report = evaluate(fill, log, sim.truth, tmp_path / "rel.png")
        assert (tmp_path / "rel.png").stat().st_size > 10_000
        heads = {h.head: h for h in report.heads}
        assert set(heads) == {"answer", "win"}
        assert heads["answer"].truth is not None
        assert heads["answer"].log_loss_ratio > 0.9
        n = write_predictions_csv(hit, log, tmp_path / "hit.csv")
        rows = list(csv.DictReader((tmp_path / "hit.csv").open()))
        assert len(rows) == n == sim.tables["client_quote"].num_rows
        assert {"client_quote_id", "p_hit_bid", "p_hit_ask"} <= set(rows[0])
        n = write_predictions_csv(fill, log, tmp_path / "fill.csv")
        assert n == sim.tables["dealer_request"].num_rows
