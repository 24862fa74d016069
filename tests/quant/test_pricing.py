"""Pricing: textbook anchors (QUANT.md A10–A14), parity, finite-difference greeks, properties."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from app.quant import (
    ImpliedVolNotFound,
    InvalidInput,
    QuantError,
    black76,
    bsm,
    coin_option,
    implied_vol,
    price_package,
)
from app.quant.types import OptionGreeks

REL = 1e-4  # QUANT.md tolerance for closed forms


class TestReferenceValues:
    def test_a10_hull_bsm_call_and_put(self) -> None:
        g = bsm(42.0, 40.0, 0.5, 0.2, np.array([True, False]), 0.10)
        assert_allclose(g.price, [4.7594, 0.8086], rtol=REL)
        d1 = (math.log(42 / 40) + (0.10 + 0.02) * 0.5) / (0.2 * math.sqrt(0.5))
        assert d1 == pytest.approx(0.7693, abs=1e-4)
        assert d1 - 0.2 * math.sqrt(0.5) == pytest.approx(0.6278, abs=1e-4)

    def test_a11_hull_greek_letters(self) -> None:
        g = bsm(49.0, 50.0, 20 / 52, 0.2, True, 0.05)
        assert float(g.price) == pytest.approx(2.4005, rel=REL)
        assert float(g.delta) == pytest.approx(0.5216, rel=REL)
        assert float(g.gamma) == pytest.approx(0.06554, rel=REL)
        assert float(g.vega) == pytest.approx(12.105, rel=REL)
        assert float(g.theta) == pytest.approx(-4.3053, rel=REL)
        assert float(g.rho) == pytest.approx(8.907, rel=REL)

    def test_a12_hull_black76_futures_put(self) -> None:
        g = black76(20.0, 20.0, 4 / 12, 0.25, np.array([False, True]), rate_cc=0.09)
        assert_allclose(g.price, [1.1166, 1.1166], rtol=REL)

    def test_a13_inverse_call(self) -> None:
        usd = black76(100_000.0, 100_000.0, 30 / 365, 0.6, True)
        coin = coin_option(100_000.0, 100_000.0, 30 / 365, 0.6, True)
        assert float(usd.price) == pytest.approx(6853.94, rel=REL)
        assert float(usd.delta) == pytest.approx(0.53427, rel=REL)
        assert float(coin.price) == pytest.approx(0.068539, rel=REL)
        assert float(coin.delta) == pytest.approx(0.46573, rel=REL)
        # QUANT.md §4 finite-difference check: ∂c/∂F = 4.6573e-6 per USD
        h = 1.0
        up = coin_option(100_000.0 + h, 100_000.0, 30 / 365, 0.6, True).price
        dn = coin_option(100_000.0 - h, 100_000.0, 30 / 365, 0.6, True).price
        assert float((up - dn) / (2 * h)) == pytest.approx(4.6573e-6, rel=REL)

    def test_a14_deribit_settlement_example(self) -> None:
        # bought a 100k call for 0.05 BTC, delivery price 125k: payoff (S − K)/S in coin
        payoff = coin_option(125_000.0, 100_000.0, 0.0, 0.6, True)
        assert float(payoff.price) == pytest.approx(0.2, rel=1e-12)
        assert float(payoff.price) - 0.05 == pytest.approx(0.15, rel=1e-12)

    def test_ratio_spread_example(self) -> None:
        # QUANT.md §4: 1x2 call ratio 100k/110k, F = 100k, 30d, 60 %:
        # 313.42 USD, Δ −0.1055, vega −9106
        r = price_package(100_000.0, [100_000.0, 110_000.0], 30 / 365, 0.6, True, [1.0, -2.0])
        assert r.theo_usd == pytest.approx(313.42, rel=REL)
        assert r.delta == pytest.approx(-0.1055, rel=1e-3)
        assert r.vega == pytest.approx(-9106.0, rel=REL)


class TestParityAndLimits:
    @given(
        f=st.floats(1.0, 1e6),
        m=st.floats(-1.5, 1.5),
        t=st.floats(1e-4, 5.0),
        sig=st.floats(0.01, 3.0),
        r=st.floats(-0.05, 0.2),
    )
    @settings(max_examples=200, deadline=None)
    def test_black76_put_call_parity(
        self, f: float, m: float, t: float, sig: float, r: float
    ) -> None:
        k = f * math.exp(m)
        g = black76(f, k, t, sig, np.array([True, False]), r)
        disc = math.exp(-r * t)
        scale = max(f, k)
        assert float(g.price[0] - g.price[1]) == pytest.approx(disc * (f - k), abs=1e-11 * scale)
        assert float(g.delta[0] - g.delta[1]) == pytest.approx(disc, rel=1e-12)
        assert_allclose(g.gamma[0], g.gamma[1], rtol=1e-12)
        assert_allclose(g.vega[0], g.vega[1], rtol=1e-12)

    def test_bsm_put_call_parity_with_yield(self) -> None:
        s, k, t, r, q = 100.0, 95.0, 0.75, 0.04, 0.015
        g = bsm(s, k, t, 0.3, np.array([True, False]), r, q)
        parity = s * math.exp(-q * t) - k * math.exp(-r * t)
        assert float(g.price[0] - g.price[1]) == pytest.approx(parity, rel=1e-12)

    def test_coin_put_call_parity(self) -> None:
        # c_call − c_put = 1 − K/F: long coin-settled call + short put = inverse forward
        g = coin_option(60_000.0, 70_000.0, 0.4, 0.7, np.array([True, False]))
        assert float(g.price[0] - g.price[1]) == pytest.approx(1 - 70_000 / 60_000, rel=1e-12)

    def test_black76_at_expiry_and_zero_vol_is_intrinsic_without_nan(self) -> None:
        k = np.array([90.0, 100.0, 110.0])
        for t, sig in ((0.0, 0.5), (1.0, 0.0), (0.0, 0.0)):
            for is_call in (True, False):
                g = black76(100.0, k, t, sig, is_call, rate_cc=0.05)
                disc = math.exp(-0.05 * t)
                omega = 1.0 if is_call else -1.0
                assert_allclose(g.price, disc * np.maximum(omega * (100.0 - k), 0.0), atol=1e-12)
                assert_allclose(g.delta, disc * omega * np.array([is_call, 0.5, not is_call]))
                for field in (g.gamma, g.vega, g.theta, g.rho, g.price, g.delta):
                    assert np.all(np.isfinite(field))
                assert_allclose(g.gamma, 0.0)
                assert_allclose(g.vega, 0.0)

    def test_tiny_vol_tends_to_intrinsic(self) -> None:
        g = black76(100.0, np.array([90.0, 110.0]), 1.0, 1e-9, True)
        assert_allclose(g.price, [10.0, 0.0], atol=1e-12)
        assert np.all(np.isfinite(g.gamma))

    def test_broadcasting_over_legs_and_shapes(self) -> None:
        g = black76(np.array([100.0, 101.0]), 100.0, 0.5, 0.3, True)
        for name in OptionGreeks.__slots__:
            assert getattr(g, name).shape == (2,)
        g2 = black76(100.0, 100.0, 0.5, 0.3, np.array([[True], [False]]))
        assert g2.gamma.shape == (2, 1)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"forward": -1.0},
            {"forward": float("nan")},
            {"strike": 0.0},
            {"t_years": -0.1},
            {"sigma": -0.2},
            {"sigma": float("inf")},
            {"rate_cc": float("nan")},
        ],
    )
    def test_invalid_inputs_raise(self, kwargs: dict[str, float]) -> None:
        args: dict[str, float] = {
            "forward": 100.0,
            "strike": 100.0,
            "t_years": 0.5,
            "sigma": 0.3,
            "rate_cc": 0.0,
        }
        args.update(kwargs)
        with pytest.raises(InvalidInput):
            black76(is_call=True, **args)
        with pytest.raises(ValueError, match=r"need|finite"):  # QuantError is a ValueError
            coin_option(is_call=True, **args)

    def test_is_call_must_be_boolean(self) -> None:
        with pytest.raises(InvalidInput):
            black76(100.0, 100.0, 0.5, 0.3, np.array([1, 0]))


# --------------------------------------------------------------------------------------------
# analytic vs central finite-difference greeks
# --------------------------------------------------------------------------------------------

CASES = [
    # forward, strike, t, sigma, is_call, rate
    (100.0, 100.0, 0.5, 0.3, True, 0.0),
    (100.0, 80.0, 0.25, 0.5, False, 0.03),
    (64_000.0, 70_000.0, 30 / 365, 0.6, True, 0.05),
    (64_000.0, 50_000.0, 2.0, 0.8, False, 0.0),
    (3_000.0, 3_500.0, 7 / 365, 0.9, True, -0.01),
    (3_000.0, 2_500.0, 1.2, 0.45, True, 0.02),
]


def _central(fn, x: float, h: float) -> float:
    return float((fn(x + h) - fn(x - h)) / (2 * h))


@pytest.mark.parametrize(("f", "k", "t", "sig", "call", "r"), CASES)
class TestFiniteDifferenceGreeks:
    def test_black76(self, f: float, k: float, t: float, sig: float, call: bool, r: float) -> None:
        g = black76(f, k, t, sig, call, r)

        def price(**kw: float) -> float:
            a = {"forward": f, "t_years": t, "sigma": sig, "rate_cc": r} | kw
            return float(black76(strike=k, is_call=call, **a).price)

        hf = 1e-5 * f
        assert float(g.delta) == pytest.approx(
            _central(lambda x: price(forward=x), f, hf), rel=1e-7, abs=1e-10
        )
        fd_gamma = (price(forward=f + hf) - 2 * price() + price(forward=f - hf)) / hf**2
        assert float(g.gamma) == pytest.approx(fd_gamma, rel=1e-4, abs=1e-12)
        fd_gamma_from_delta = _central(lambda x: float(black76(x, k, t, sig, call, r).delta), f, hf)
        assert float(g.gamma) == pytest.approx(fd_gamma_from_delta, rel=1e-7, abs=1e-14)
        assert float(g.vega) == pytest.approx(
            _central(lambda x: price(sigma=x), sig, 1e-5), rel=1e-7, abs=1e-8
        )
        # theta = ∂V/∂t (calendar) = −∂V/∂T
        assert float(g.theta) == pytest.approx(
            -_central(lambda x: price(t_years=x), t, 1e-6 * t), rel=1e-6, abs=1e-8
        )
        assert float(g.rho) == pytest.approx(
            _central(lambda x: price(rate_cc=x), r, 1e-6), rel=1e-7, abs=1e-8
        )

    def test_bsm(self, f: float, k: float, t: float, sig: float, call: bool, r: float) -> None:
        q = 0.01
        g = bsm(f, k, t, sig, call, r, q)

        def price(**kw: float) -> float:
            a = {"spot": f, "t_years": t, "sigma": sig, "rate_cc": r, "div_cc": q} | kw
            return float(bsm(strike=k, is_call=call, **a).price)

        hs = 1e-5 * f
        assert float(g.delta) == pytest.approx(
            _central(lambda x: price(spot=x), f, hs), rel=1e-7, abs=1e-10
        )
        fd_gamma = _central(lambda x: float(bsm(x, k, t, sig, call, r, q).delta), f, hs)
        assert float(g.gamma) == pytest.approx(fd_gamma, rel=1e-7, abs=1e-14)
        assert float(g.vega) == pytest.approx(
            _central(lambda x: price(sigma=x), sig, 1e-5), rel=1e-7, abs=1e-8
        )
        assert float(g.theta) == pytest.approx(
            -_central(lambda x: price(t_years=x), t, 1e-6 * t), rel=1e-6, abs=1e-8
        )
        assert float(g.rho) == pytest.approx(
            _central(lambda x: price(rate_cc=x), r, 1e-6), rel=1e-7, abs=1e-8
        )

    def test_coin_option(
        self, f: float, k: float, t: float, sig: float, call: bool, r: float
    ) -> None:
        g = coin_option(f, k, t, sig, call, r)

        def coin(**kw: float) -> float:
            a = {"forward": f, "t_years": t, "sigma": sig, "rate_cc": r} | kw
            return float(coin_option(strike=k, is_call=call, **a).price)

        hf = 1e-5 * f
        # delta = F ∂c/∂F (net transaction delta), gamma = ∂delta/∂F
        assert float(g.delta) == pytest.approx(
            f * _central(lambda x: coin(forward=x), f, hf), rel=1e-7, abs=1e-12
        )
        fd_gamma = _central(lambda x: float(coin_option(x, k, t, sig, call, r).delta), f, hf)
        assert float(g.gamma) == pytest.approx(fd_gamma, rel=1e-6, abs=1e-15)
        assert float(g.vega) == pytest.approx(
            _central(lambda x: coin(sigma=x), sig, 1e-5), rel=1e-7, abs=1e-12
        )
        assert float(g.theta) == pytest.approx(
            -_central(lambda x: coin(t_years=x), t, 1e-6 * t), rel=1e-6, abs=1e-12
        )
        assert float(g.rho) == pytest.approx(
            _central(lambda x: coin(rate_cc=x), r, 1e-6), rel=1e-7, abs=1e-12
        )
        # net transaction delta = BS delta (coin-discounted) − coin price
        bs_delta = math.exp(-r * t) * float(black76(f, k, t, sig, call).delta)
        assert float(g.delta) == pytest.approx(bs_delta - float(g.price), rel=1e-12, abs=1e-15)
        # coin price = undiscounted USD price / F at zero coin rate
        if r == 0.0:
            assert float(g.price) == pytest.approx(
                float(black76(f, k, t, sig, call).price) / f, rel=1e-12
            )


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------

market = {
    "f": st.floats(10.0, 1e5),
    "t": st.floats(1e-3, 3.0),
    "sig": st.floats(0.05, 2.0),
    "r": st.floats(0.0, 0.1),
    "call": st.booleans(),
}


@given(m=st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=12, unique=True), **market)
@settings(max_examples=150, deadline=None)
def test_price_bounds_monotone_and_convex_in_strike(
    m: list[float], f: float, t: float, sig: float, r: float, call: bool
) -> None:
    k = np.sort(f * np.exp(np.array(m)))
    assume(np.all(np.diff(k) > 1e-6 * f))
    g = black76(f, k, t, sig, call, r)
    disc = math.exp(-r * t)
    omega = 1.0 if call else -1.0
    tol = 1e-10 * f
    lower = disc * np.maximum(omega * (f - k), 0.0)
    upper = disc * (f if call else k)
    assert np.all(g.price >= lower - tol)
    assert np.all(g.price <= upper + tol)
    # calls decrease, puts increase in strike; both convex (butterflies are non-negative)
    assert np.all(omega * np.diff(g.price) <= tol)
    slopes = np.diff(g.price) / np.diff(k)
    assert np.all(np.diff(slopes) >= -1e-9)


@given(**market, m=st.floats(-1.0, 1.0), dsig=st.floats(1e-3, 0.5), dt=st.floats(1e-3, 1.0))
@settings(max_examples=150, deadline=None)
def test_price_increasing_in_vol_and_time(
    f: float, t: float, sig: float, r: float, call: bool, m: float, dsig: float, dt: float
) -> None:
    k = f * math.exp(m)
    tol = 1e-10 * f
    base = float(black76(f, k, t, sig, call).price)
    assert float(black76(f, k, t, sig + dsig, call).price) >= base - tol
    # undiscounted (r = 0) Black-76 value increases with T at fixed forward
    assert float(black76(f, k, t + dt, sig, call).price) >= base - tol


@given(**market, m=st.floats(-0.8, 0.8))
@settings(max_examples=300, deadline=None)
def test_implied_vol_round_trip(
    f: float, t: float, sig: float, r: float, call: bool, m: float
) -> None:
    k = f * math.exp(m)
    g = black76(f, k, t, sig, call, r)
    # Only prices that carry vol information at the 1e-8 level: a 1e-8 relative change of σ
    # must move the price by much more than its rounding (not so for deep ITM / tiny σ√T,
    # where the time value drowns next to the intrinsic value).
    assume(float(g.vega) * sig * 1e-8 > 1e-12 * max(f, k))
    iv = implied_vol(g.price, f, k, t, call, r)
    assert float(iv) == pytest.approx(sig, rel=1e-8, abs=1e-10)


def test_implied_vol_vectorised_and_price_round_trip() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    f = rng.uniform(1e3, 1e5, n)
    k = f * np.exp(rng.uniform(-1.5, 1.5, n))
    t = rng.uniform(1 / 365, 3.0, n)
    sig = rng.uniform(0.05, 2.5, n)
    call = rng.random(n) < 0.5
    r = rng.uniform(0.0, 0.08, n)
    g = black76(f, k, t, sig, call, r)
    keep = (g.price - np.maximum(np.where(call, 1, -1) * (f - k), 0) * np.exp(-r * t)) > 1e-9 * f
    iv = implied_vol(g.price[keep], f[keep], k[keep], t[keep], call[keep], r[keep])
    back = black76(f[keep], k[keep], t[keep], iv, call[keep], r[keep]).price
    assert_allclose(back, g.price[keep], rtol=1e-12, atol=1e-13 * f[keep].max())
    well = g.vega[keep] * sig[keep] * 1e-8 > 1e-12 * np.maximum(f, k)[keep]
    assert well.sum() > 1000
    assert_allclose(iv[well], sig[keep][well], rtol=1e-8)


def test_implied_vol_extremes() -> None:
    f, k, t = 100.0, 100.0, 1.0
    for sig in (1e-3, 0.01, 4.0, 8.0):
        p = black76(f, k, t, sig, True).price
        assert float(implied_vol(p, f, k, t, True)) == pytest.approx(sig, rel=1e-9)
    # deep OTM, small total vol: price ~1e-20
    p = black76(100.0, 200.0, 0.05, 0.3, True).price
    assert 0.0 < float(p) < 1e-15
    assert float(implied_vol(p, 100.0, 200.0, 0.05, True)) == pytest.approx(0.3, rel=1e-9)
    # exactly intrinsic ⇒ zero vol
    assert float(implied_vol(10.0, 110.0, 100.0, 1.0, True)) == 0.0


class TestImpliedVolErrors:
    def test_below_intrinsic(self) -> None:
        with pytest.raises(ImpliedVolNotFound, match="lower no-arbitrage bound") as err:
            implied_vol(np.array([12.0, 9.0]), 110.0, 100.0, 1.0, True)
        assert err.value.index == 1
        assert "intrinsic" in err.value.reason

    def test_above_upper_bound(self) -> None:
        with pytest.raises(ImpliedVolNotFound, match="upper no-arbitrage bound"):
            implied_vol(100.0, 100.0, 90.0, 1.0, True)
        with pytest.raises(ImpliedVolNotFound, match="upper"):
            implied_vol(95.0 * math.exp(-0.05), 100.0, 95.0, 1.0, False, 0.05)

    def test_negative_price_and_expiry(self) -> None:
        with pytest.raises(ImpliedVolNotFound):
            implied_vol(-1.0, 100.0, 100.0, 1.0, True)
        with pytest.raises(ImpliedVolNotFound, match="t_years"):
            implied_vol(1.0, 100.0, 100.0, 0.0, True)
        with pytest.raises(QuantError):
            implied_vol(float("nan"), 100.0, 100.0, 1.0, True)


# --------------------------------------------------------------------------------------------
# packages
# --------------------------------------------------------------------------------------------


class TestPricePackage:
    legs: ClassVar[dict[str, Any]] = {
        "forward": np.array([64_000.0, 64_000.0, 66_000.0, 66_000.0]),
        "strike": np.array([60_000.0, 70_000.0, 60_000.0, 70_000.0]),
        "t_years": np.array([30 / 365, 30 / 365, 90 / 365, 90 / 365]),
        "sigma": np.array([0.55, 0.50, 0.60, 0.58]),
        "is_call": np.array([True, True, False, False]),
        "signed_size": np.array([250.0, -250.0, -250.0, 250.0]),
    }

    def test_signed_sums_match_legs(self) -> None:
        r = price_package(**self.legs, rate_cc=0.02)
        a = self.legs
        g = black76(a["forward"], a["strike"], a["t_years"], a["sigma"], a["is_call"], 0.02)
        n = a["signed_size"]
        assert r.theo_usd == pytest.approx(float(n @ g.price), rel=1e-12)
        assert r.delta == pytest.approx(float(n @ g.delta), rel=1e-12)
        assert r.gamma == pytest.approx(float(n @ g.gamma), rel=1e-12)
        assert r.vega == pytest.approx(float(n @ g.vega), rel=1e-12)
        assert r.theta == pytest.approx(float(n @ g.theta), rel=1e-12)
        assert r.rho == pytest.approx(float(n @ g.rho), rel=1e-12)
        assert_allclose(r.leg_prices_usd, g.price)
        assert_allclose(r.leg_deltas, g.delta)
        assert_allclose(r.leg_vegas, g.vega)
        assert r.hedge_delta == 0.0
        assert r.hedge_adjustment_usd == 0.0

    def test_theo_coin_per_leg_forward_and_with_spot(self) -> None:
        r = price_package(**self.legs)
        a = self.legs
        c = coin_option(a["forward"], a["strike"], a["t_years"], a["sigma"], a["is_call"])
        assert r.theo_coin == pytest.approx(float(a["signed_size"] @ c.price), rel=1e-12)
        r2 = price_package(**self.legs, spot=63_500.0)
        assert r2.theo_coin == pytest.approx(r2.theo_usd / 63_500.0, rel=1e-12)

    def test_hedged_package(self) -> None:
        h = 64_500.0
        plain = price_package(**self.legs)
        hedged = price_package(**self.legs, hedge_reference=h)
        a = self.legs
        n = a["signed_size"]
        expected_adj = float(n @ (plain.leg_deltas * (h - a["forward"])))
        assert hedged.hedge_adjustment_usd == pytest.approx(expected_adj, rel=1e-12)
        assert hedged.theo_usd == pytest.approx(plain.theo_usd + expected_adj, rel=1e-12)
        assert hedged.hedge_delta == pytest.approx(-plain.delta, rel=1e-12)
        assert hedged.delta == 0.0
        assert hedged.vega == plain.vega
        assert hedged.gamma == plain.gamma
        # "vs H" ≈ the package re-valued with every forward moved to H (first order)
        moved = price_package(**{**self.legs, "forward": np.full(4, h)})
        leg_gamma = black76(a["forward"], a["strike"], a["t_years"], a["sigma"], a["is_call"]).gamma
        second_order = 0.5 * float(n @ (leg_gamma * (h - a["forward"]) ** 2))
        third_order_bound = 1e-2 * float(np.abs(n) @ (leg_gamma * (h - a["forward"]) ** 2))
        assert moved.theo_usd - hedged.theo_usd == pytest.approx(
            second_order, abs=third_order_bound
        )

    def test_hedge_sign_single_call(self) -> None:
        # long 1 call, hedge sold at H above the forward: the hedge is worth Δ(H − F) > 0
        plain = price_package(100.0, 100.0, 0.5, 0.3, np.array([True]), np.array([1.0]))
        hedged = price_package(
            100.0, 100.0, 0.5, 0.3, np.array([True]), np.array([1.0]), hedge_reference=102.0
        )
        assert hedged.hedge_delta < 0.0
        assert hedged.hedge_adjustment_usd == pytest.approx(plain.delta * 2.0, rel=1e-12)
        assert hedged.theo_usd > plain.theo_usd

    def test_scalar_broadcast_and_errors(self) -> None:
        r = price_package(100.0, [90.0, 110.0], 0.5, 0.3, True, [1.0, -1.0])
        assert r.leg_prices_usd.shape == (2,)
        with pytest.raises(InvalidInput):
            price_package(100.0, [[90.0, 110.0]], 0.5, 0.3, True, [1.0, -1.0])
        with pytest.raises(InvalidInput):
            price_package(100.0, [90.0, 110.0], 0.5, 0.3, True, [1.0, float("nan")])
        with pytest.raises(InvalidInput):
            price_package(100.0, [90.0, 110.0], 0.5, 0.3, True, [1.0, 1.0], hedge_reference=-1.0)
