from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from app.pricing.hit import HitContext
from ml.export import LogData
from ml.features import (
    FEATURE_NAMES,
    FILL_FEATURES,
    HIT_FEATURES,
    FeatureStore,
    FillFeatures,
    build_store,
    hit_matrix,
    iter_hit_sides,
    replay,
    rfq_context,
)
from ml.sim.world import SIM_UNDERLYINGS, UNDERLYING_PARAMS

from ._data import small_sim

DEALERS = [f"sim-dealer-{i:02d}" for i in range(1, 17)]


def features_by_rfq(log: LogData) -> dict[str, np.ndarray]:
    ff = FillFeatures(DEALERS)
    out: dict[str, np.ndarray] = {}

    def visit(rec, store):
        fill = ff.matrix(rec.ctx, [q.dealer for q in rec.requests], rec.n_asked, store)
        hits = [
            hit_matrix(rec.hit_request(side), np.array([m]), store, at=rec.ctx.at)[0]
            for side, m, _ in iter_hit_sides(rec)
        ]
        out[rec.id] = np.concatenate([fill.ravel(), np.ravel(hits)])

    replay(log, visit)
    return out


def perturb(tables: dict[str, pa.Table], rfq_ids: set[str]) -> dict[str, pa.Table]:
    """Change every outcome of the given RFQs: states, sides, dealer answers, latencies,
    fills."""
    keep = pa.array(sorted(rfq_ids))
    out = dict(tables)

    def swap(table: pa.Table, column: str, mapping: dict[str, str]) -> pa.Table:
        mask = pc.is_in(table["rfq_id" if "rfq_id" in table.column_names else "id"], value_set=keep)
        values = [
            mapping.get(v, v) if m else v
            for v, m in zip(table[column].to_pylist(), mask.to_pylist(), strict=True)
        ]
        return table.set_column(
            table.column_names.index(column),
            column,
            pa.array(values, type=table.schema.field(column).type),
        )

    out["rfq"] = swap(
        tables["rfq"], "state", {"filled": "passed", "passed": "filled", "expired": "filled"}
    )
    out["rfq"] = swap(out["rfq"], "accepted_side", {"buy": "sell", "sell": "buy"})
    flip = {
        "quoted": "no_response",
        "won": "declined",
        "lost": "won",
        "no_response": "quoted",
        "declined": "won",
        "error": "quoted",
    }
    out["dealer_request"] = swap(tables["dealer_request"], "outcome", flip)
    out["fill"] = swap(tables["fill"], "side", {"buy": "sell", "sell": "buy"})
    dr = out["dealer_request"]
    mask = pc.is_in(dr["rfq_id"], value_set=keep)
    later = pc.if_else(mask, dr["deadline_at"], dr["first_quote_at"])
    out["dealer_request"] = dr.set_column(
        dr.column_names.index("first_quote_at"), "first_quote_at", later
    )
    return out


class TestPointInTime:
    def test_future_outcomes_do_not_change_past_features(self):
        sim = small_sim()
        rfq = sim.tables["rfq"]
        created = rfq["created_at"].to_pylist()
        ids = rfq["id"].to_pylist()
        cut = sorted(created)[len(created) // 2]
        future = {i for i, c in zip(ids, created, strict=True) if c >= cut}
        before = features_by_rfq(LogData(sim.tables))
        after = features_by_rfq(LogData(perturb(sim.tables, future)))
        past = [i for i, c in zip(ids, created, strict=True) if c <= cut]
        assert past
        for rid in past:
            np.testing.assert_array_equal(before[rid], after[rid])
        changed = sum(not np.array_equal(before[r], after[r], equal_nan=True) for r in future)
        assert changed > len(future) * 0.5  # the perturbation does reach later features

    def test_an_rfq_never_sees_its_own_outcome(self):
        sim = small_sim()
        ids = sim.tables["rfq"]["id"].to_pylist()
        before = features_by_rfq(LogData(sim.tables))
        for rid in ids[100:110]:
            after = features_by_rfq(LogData(perturb(sim.tables, {rid})))
            np.testing.assert_array_equal(before[rid], after[rid])


class TestServingParity:
    def test_service_path_builds_the_training_features(self):
        """Seed a store from the log before an RFQ (service start-up), build the RFQ's context
        from ORM-like objects, and get the training row."""
        sim = small_sim()
        log = LogData(sim.tables)
        ff = FillFeatures(DEALERS)
        target = {}

        def visit(rec, store):
            if rec.index == 1500:
                target["rec"] = rec
                target["fill"] = ff.matrix(
                    rec.ctx, [q.dealer for q in rec.requests], rec.n_asked, store
                )
                side, markup, _ = next(iter(iter_hit_sides(rec)))
                target["hit"] = hit_matrix(
                    rec.hit_request(side), np.array([markup]), store, at=rec.ctx.at
                )
                target["side"], target["markup"] = side, markup

        replay(log, visit)
        rec = target["rec"]
        rfq = sim.tables["rfq"].filter(pc.equal(sim.tables["rfq"]["id"], rec.id)).to_pylist()[0]
        created: datetime = rfq["created_at"]
        # the store as the service holds it: everything known before the RFQ was created
        past = sim.tables["rfq"].filter(
            pc.less(sim.tables["rfq"]["created_at"], pa.scalar(created, pa.timestamp("us", "UTC")))
        )
        store = FeatureStore()
        seeded = build_store(LogData({**sim.tables, "rfq": past}))
        store = seeded
        legs = sorted(
            (r for r in sim.tables["rfq_leg"].to_pylist() if r["rfq_id"] == rec.id),
            key=lambda r: r["leg_index"],
        )
        orm_legs = [
            SimpleNamespace(
                strike=Decimal(str(r["strike"])), ratio=r["ratio"], direction=r["direction"]
            )
            for r in legs
        ]
        quote = next(r for r in sim.tables["client_quote"].to_pylist() if r["rfq_id"] == rec.id)
        ctx = rfq_context(
            at=created.astimezone(UTC),
            underlying=rfq["underlying"],
            structure=rfq["structure"],
            side=rfq["side"],
            quantity=Decimal(str(rfq["quantity"])),
            client=rfq["client"],
            hedge_reference=rfq["hedge_reference"],
            legs=orm_legs,
            greeks=json.loads(quote["greeks"]),
        )
        assert ctx == rec.ctx
        serving = ff.matrix(ctx, [q.dealer for q in rec.requests], rec.n_asked, store)
        np.testing.assert_allclose(serving, target["fill"], rtol=1e-12)
        hc = HitContext(
            underlying=ctx.underlying,
            structure=ctx.structure,
            side=target["side"],
            quantity=ctx.quantity,
            notional_usd=ctx.notional_usd,
            gross_vega_usd=ctx.gross_vega_usd,
            tenor_days=ctx.tenor_days,
            client=ctx.client,
            extra={"rfq_side": ctx.side, "at": created},
        )
        np.testing.assert_allclose(
            hit_matrix(hc, np.array([target["markup"]]), store), target["hit"], rtol=1e-12
        )

    def test_dealer_inventory_is_observable(self):
        """The store's decayed inventory equals the simulator's hidden dealer inventory."""
        sim = small_sim()
        ff = FillFeatures(DEALERS)
        got: list[float] = []
        ids: list[str] = []
        col = FILL_FEATURES.index("d_inventory_kusd")

        def visit(rec, store):
            x = ff.matrix(rec.ctx, [q.dealer for q in rec.requests], rec.n_asked, store)
            scale = UNDERLYING_PARAMS[rec.ctx.underlying]["inventory_scale_usd"] / 1000.0
            got.extend(x[:, col] / scale)
            ids.extend(q.id for q in rec.requests)

        replay(LogData(sim.tables), visit)
        truth = dict(
            zip(
                sim.truth["dealer_request"]["id"].to_pylist(),
                sim.truth["dealer_request"]["inventory_x"].to_pylist(),
                strict=True,
            )
        )
        want = np.array([truth[i] for i in ids])
        assert np.abs(want).max() > 0.05
        np.testing.assert_allclose(got, want, atol=1e-9)
        assert SIM_UNDERLYINGS == ("BTC", "ETH")


class TestDefinitions:
    def test_feature_names(self):
        assert FEATURE_NAMES == {"fill": FILL_FEATURES, "hit": HIT_FEATURES}
        assert len(set(FILL_FEATURES)) == len(FILL_FEATURES)
        assert HIT_FEATURES[0] == "markup_vp"

    def test_store_rates_decay_and_use_priors(self):
        s = FeatureStore()
        t0 = 1_000_000.0
        assert s.dealer_row("d", "BTC", "call", t0, 0.0)[0] == pytest.approx(0.45)
        for i in range(100):
            s.observe_dealer_response("d", "BTC", "call", t0 + i, True, 0.5)
        row = s.dealer_row("d", "BTC", "call", t0 + 100, 0.0)
        assert row[0] > 0.97
        assert row[2] == pytest.approx(0.5, abs=0.02)
        later = s.dealer_row("d", "BTC", "call", t0 + 30 * 86_400, 0.0)
        assert later[0] < 0.6  # ten half-lives later the prior dominates again
        s.observe_dealer_fill("d", "BTC", t0, -2000.0)
        assert s.dealer_inventory("d", "BTC", t0 + 2 * 86_400) == pytest.approx(-1000.0)

    def test_naive_times_are_refused(self):
        with pytest.raises(ValueError, match="naive"):
            FeatureStore().observe_client_result("c", datetime(2026, 1, 1), True, 0.5)
