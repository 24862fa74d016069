"""The markout pricer against the quant package pricer, and its snapshot reading and cache."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from app.analytics import markouts as mk
from app.analytics.dimensions import CONTRACT_EDGES, NOTIONAL_EDGES, bucket_labels
from app.marketdata.simulated import SimulatedFeed
from app.marketdata.snapshot import MarketSnapshot
from app.quant.pricing import price_package

AS_OF = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def snap() -> MarketSnapshot:
    return SimulatedFeed(seed=3, clock=lambda: AS_OF).snapshot_sync("BTC")


def _trade(snap: MarketSnapshot, expiry: date, hedge: float | None) -> mk.Trade:
    f = snap.spot
    legs = [
        mk.Leg(expiry, round(f / 1000) * 1000, True, 1),
        mk.Leg(expiry, round(f / 1000) * 1000 + 5000, True, -1),
        mk.Leg(expiry, round(f / 1000) * 1000 - 4000, False, -2),
    ]
    return mk.Trade(desk_buys=True, price_usd=1000.0, hedge_reference=hedge, legs=legs)


def _reference(snap: MarketSnapshot, trade: mk.Trade) -> float:
    exps = [leg.expiry for leg in trade.legs]
    strikes = np.array([leg.strike for leg in trade.legs])
    return price_package(
        snap.forwards(exps),
        strikes,
        snap.times(exps),
        snap.vols(exps, strikes),
        np.array([leg.is_call for leg in trade.legs]),
        np.array([float(leg.signed_ratio) for leg in trade.legs]),
        hedge_reference=trade.hedge_reference,
    ).theo_usd


class TestPackageValues:
    @pytest.mark.parametrize("hedge", [None, 64_000.0])
    def test_listed_expiry_equals_the_package_pricer(self, snap, hedge):
        trade = _trade(snap, snap.expiries[5], hedge)
        doc = json.dumps(snap.to_dict())
        (value,) = mk.package_values([trade], [mk.StoredSnapshot(doc)])
        assert value == pytest.approx(_reference(snap, trade), rel=1e-12)

    def test_an_unlisted_expiry_is_interpolated_like_the_snapshot(self, snap):
        between = snap.expiries[6] + timedelta(days=3)
        assert snap.slice_at(between) is None
        trade = _trade(snap, between, None)
        (value,) = mk.package_values([trade], [mk.StoredSnapshot(json.dumps(snap.to_dict()))])
        assert value == pytest.approx(_reference(snap, trade), rel=1e-12)

    def test_another_json_layout_is_read_too(self, snap):
        # e.g. PostgreSQL jsonb, which orders keys its own way and drops the spaces
        doc = json.dumps(snap.to_dict(), sort_keys=True, separators=(",", ":"))
        trade = _trade(snap, snap.expiries[4], None)
        (value,) = mk.package_values([trade], [mk.StoredSnapshot(doc)])
        assert value == pytest.approx(_reference(snap, trade), rel=1e-12)
        (value,) = mk.package_values([trade], [mk.StoredSnapshot(snap.to_dict())])
        assert value == pytest.approx(_reference(snap, trade), rel=1e-12)

    def test_expired_legs_missing_snapshots_and_bad_documents_are_not_priced(self, snap):
        expired = _trade(snap, AS_OF.date() - timedelta(days=1), None)
        fine = _trade(snap, snap.expiries[5], None)
        doc = json.dumps(snap.to_dict())
        values = mk.package_values(
            [expired, fine, fine, fine],
            [mk.StoredSnapshot(doc), None, mk.StoredSnapshot("{not json"),
             mk.StoredSnapshot(doc)],
        )  # fmt: skip
        assert math.isnan(values[0])
        assert math.isnan(values[1])
        assert math.isnan(values[2])
        assert not math.isnan(values[3])

    def test_markout_sign_is_the_desks(self, snap):
        buy = _trade(snap, snap.expiries[5], None)
        sell = mk.Trade(False, buy.price_usd, None, buy.legs)
        values = np.array([1200.0, 1200.0])
        np.testing.assert_allclose(mk.markouts_per_unit([buy, sell], values), [200.0, -200.0])


class TestCache:
    def test_least_recently_used_goes_first(self):
        cache = mk.MarkoutCache(max_entries=2)
        cache.put("a", (1.0,))
        cache.put("b", (2.0,))
        assert cache.get("a") == (1.0,)
        cache.put("c", (3.0,))
        assert cache.get("b") is None
        assert cache.get("a") == (1.0,)
        assert len(cache) == 2

    def test_entries_expire(self):
        cache = mk.MarkoutCache(ttl_s=-1.0)
        cache.put("a", (1.0,))
        assert cache.get("a") is None


def test_bucket_labels():
    assert bucket_labels(CONTRACT_EDGES) == [
        "<10", "10-25", "25-50", "50-100", "100-250", "250-500", "500-1k", "1k-2.5k", "2.5k+"
    ]  # fmt: skip
    assert bucket_labels(NOTIONAL_EDGES)[:2] == ["<100k", "100k-250k"]
    assert bucket_labels(NOTIONAL_EDGES)[-1] == "25m+"
