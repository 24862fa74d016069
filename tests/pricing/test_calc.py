"""The client quote computation: theo, ticks, markups, inventory skew, risk limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from app.marketdata.snapshot import ExpirySlice, MarketSnapshot, SviParams
from app.pricing.calc import LegSpec, QuoteParams, compute_quote
from app.pricing.hit import LogisticHitCurve
from app.pricing.risk import vega_factor
from app.quant.pricing import black76

AS_OF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DEC = date(2026, 12, 25)
MAR = date(2027, 3, 26)


def snapshot(spot: float = 65000.0) -> MarketSnapshot:
    def sl(expiry: date, basis: float, atm: float) -> ExpirySlice:
        t = (
            datetime(expiry.year, expiry.month, expiry.day, 8, tzinfo=UTC) - AS_OF
        ).total_seconds() / (365 * 86400)
        w = atm**2 * t
        return ExpirySlice(
            expiry=expiry,
            t_years=t,
            forward=spot * np.exp(basis * t),
            svi=SviParams(a=0.8 * w, b=0.2 * w / 0.1, rho=-0.3, m=0.0, sigma=0.1),
        )

    return MarketSnapshot(
        underlying="BTC",
        as_of=AS_OF,
        spot=spot,
        source="test",
        slices=(sl(DEC, 0.05, 0.55), sl(MAR, 0.05, 0.6)),
    )


PARAMS = QuoteParams(
    risk_aversion_per_usd=2e-6,
    horizon_days=1.0,
    vol_of_vol_points_per_day=2.5,
    spot_vol_correlation=-0.4,
    vega_term_decorrelation_years=0.5,
    tick_coin=Decimal("0.0001"),
    max_abs_delta_coins=2000.0,
    max_abs_vega_usd=2_000_000.0,
)
HIT = LogisticHitCurve(alpha=-0.4, beta=2.5)
CALL_SPREAD = [LegSpec(DEC, 70000.0, True, 1, +1), LegSpec(DEC, 80000.0, True, 1, -1)]
STRADDLE = [LegSpec(DEC, 65000.0, True, 1, +1), LegSpec(DEC, 65000.0, False, 1, +1)]


def quote(legs, side="two_way", inventory=None, hedge=None, quantity=250.0, params=PARAMS):
    return compute_quote(
        snapshot(),
        legs,
        quantity=quantity,
        side=side,
        hedge_reference=hedge,
        structure="x",
        client=None,
        inventory=inventory or {},
        params=params,
        hit=HIT,
    )


def test_theo_is_the_signed_sum_of_black76_legs() -> None:
    snap = snapshot()
    calc = quote(CALL_SPREAD)
    f = snap.forward(DEC)
    t = snap.t_years(DEC)
    v1, v2 = snap.vol(DEC, 70000.0), snap.vol(DEC, 80000.0)
    expected = float(black76(f, 70000.0, t, v1, True).price) - float(
        black76(f, 80000.0, t, v2, True).price
    )
    assert calc.theo_usd == pytest.approx(expected, rel=1e-9)
    assert calc.theo_coin == pytest.approx(expected / snap.spot, rel=1e-9)


def test_two_way_brackets_theo_and_prices_sit_on_the_tick_away_from_the_client() -> None:
    calc = quote(CALL_SPREAD)
    assert calc.bid is not None
    assert calc.ask is not None
    assert calc.bid.price_usd < calc.theo_usd < calc.ask.price_usd
    spot = snapshot().spot
    for side, up in ((calc.bid, False), (calc.ask, True)):
        assert side.price_coin % Decimal("0.0001") == 0
        exact = side.price_usd / spot
        assert (float(side.price_coin) >= exact) if up else (float(side.price_coin) <= exact)
        assert abs(float(side.price_coin) - exact) < 0.0001
    assert 0 < calc.bid.hit_probability < 1


def test_one_sided_requests_get_one_side() -> None:
    assert quote(CALL_SPREAD, side="buy").bid is None
    assert quote(CALL_SPREAD, side="sell").ask is None


def test_markup_decomposes_into_base_size_and_skew() -> None:
    calc = quote(STRADDLE, inventory={vega_factor("BTC", DEC): 50_000.0})
    for side in (calc.bid, calc.ask):
        assert side is not None
        e = side.explanation
        assert e["base_markup_usd"] + e["size_usd"] + e["inventory_skew_usd"] == pytest.approx(
            side.markup_usd, rel=1e-9
        )


def test_long_vega_desk_bids_and_offers_lower_for_vega_long_packages() -> None:
    flat = quote(STRADDLE)
    long_vega = quote(STRADDLE, inventory={vega_factor("BTC", DEC): 200_000.0})
    assert flat.bid
    assert flat.ask
    assert long_vega.bid
    assert long_vega.ask
    assert long_vega.bid.price_usd < flat.bid.price_usd
    assert long_vega.ask.price_usd < flat.ask.price_usd
    # the explanation shows by how much: the skew is the whole difference to the flat desk
    assert flat.bid.explanation["inventory_skew_usd"] == pytest.approx(0.0, abs=1e-9)
    assert long_vega.bid.explanation["inventory_skew_usd"] > 0  # a wider bid markup
    assert long_vega.ask.explanation["inventory_skew_usd"] < 0  # a tighter (lower) offer
    assert flat.bid.price_usd - long_vega.bid.price_usd == pytest.approx(
        long_vega.bid.explanation["inventory_skew_usd"], rel=1e-6
    )
    assert long_vega.ask.price_usd - flat.ask.price_usd == pytest.approx(
        long_vega.ask.explanation["inventory_skew_usd"], rel=1e-6
    )


def test_a_bigger_package_costs_more_per_unit_to_take_on() -> None:
    small = quote(STRADDLE, side="sell", quantity=25.0)
    big = quote(STRADDLE, side="sell", quantity=1000.0)
    assert small.bid
    assert big.bid
    assert big.bid.explanation["size_usd"] > small.bid.explanation["size_usd"] > 0


def test_hedged_package_has_no_delta_risk() -> None:
    calc = quote(CALL_SPREAD, hedge=64500.0)
    assert calc.greeks["delta_coins"] == pytest.approx(0.0, abs=1e-9)
    assert calc.factors["BTC:delta"] == 0.0
    unhedged = quote(CALL_SPREAD)
    assert unhedged.factors["BTC:delta"] > 0


def test_risk_limit_refuses_the_side_that_would_breach_it() -> None:
    near = {vega_factor("BTC", DEC): 1_990_000.0}
    calc = quote(STRADDLE, inventory=near)
    assert calc.bid is None  # buying more vega would breach
    assert "vega" in calc.refused["bid"]
    assert calc.ask is not None  # selling vega reduces the risk


def test_the_vega_of_an_expiry_already_past_neither_skews_nor_counts_to_the_limits() -> None:
    """Those options have expired: a row the inventory still holds for them is no risk."""
    past = vega_factor("BTC", (AS_OF - timedelta(days=4)).date())
    base = quote(STRADDLE)
    for held in (1_990_000.0, 500_000.0):
        calc = quote(STRADDLE, inventory={past: held})
        assert calc.refused == {}
        for side in ("bid", "ask"):
            mine, plain = getattr(calc, side), getattr(base, side)
            assert mine.explanation["inventory_skew_usd"] == 0.0
            assert mine.price_coin == plain.price_coin
    live = quote(STRADDLE, inventory={vega_factor("BTC", DEC): 500_000.0})
    assert live.bid.explanation["inventory_skew_usd"] != 0.0  # the same size, live, does
