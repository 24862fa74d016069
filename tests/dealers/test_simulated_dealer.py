"""The simulated dealers price what they are sent, "vs H" included, as the desk's theo does."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import numpy as np
import pytest

from app.dealers.simulated import SimDealer, price_request
from app.marketdata.simulated import SimulatedFeed
from app.quant.pricing import price_package

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
EXPIRY = date(2027, 1, 29)


def message(hedge: float | None) -> dict:
    return {
        "underlying": "BTC",
        "side": "two_way",
        "quantity": 50,
        "hedge_reference": hedge,
        "legs": [
            {"instrument": "BTC-29JAN27-70000-C", "ratio": 1, "direction": "buy"},
            {"instrument": "BTC-29JAN27-80000-C", "ratio": 1, "direction": "sell"},
        ],
    }


def desk_theo_coin(feed: SimulatedFeed, hedge: float | None) -> float:
    snap = feed.snapshot_sync("BTC")
    strikes = np.array([70000.0, 80000.0])
    risk = price_package(
        snap.forwards([EXPIRY, EXPIRY]),
        strikes,
        np.array([snap.t_years(EXPIRY)] * 2),
        snap.vols([EXPIRY, EXPIRY], strikes),
        np.array([True, True]),
        np.array([1.0, -1.0]),
        hedge_reference=hedge,
        spot=snap.spot,
    )
    return risk.theo_coin


@pytest.mark.parametrize("offset", [-0.1, 0.0, 0.1])
def test_a_hedged_request_is_priced_vs_its_reference(offset: float) -> None:
    feed = SimulatedFeed(clock=lambda: NOW)
    dealer = SimDealer("d", "s", edge_vol_points=0.0)
    hedge = feed.snapshot_sync("BTC").spot * (1 + offset)

    def mid(h: float | None) -> float:
        quote = price_request(feed, message(h), dealer, random.Random(3))
        return (quote["bid"] + quote["ask"]) / 2

    # same noise both times: the difference is the delta exchanged at H, to the 4-dp rounding
    moved = mid(hedge) - mid(None)
    want = desk_theo_coin(feed, hedge) - desk_theo_coin(feed, None)
    assert moved == pytest.approx(want, abs=1.5e-4)
    if offset:
        assert abs(want) > 0.01  # the reference matters: a test that could not tell would pass
