"""MarketSnapshot: SVI smiles, interpolation in total variance, forwards, errors, round trip."""

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import expiry_datetime
from app.marketdata import (
    ExpiredExpiry,
    ExpirySlice,
    MarketDataError,
    MarketSnapshot,
    SviParams,
    year_fraction,
)

AS_OF = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SPOT = 65_000.0
EXPIRIES = (date(2026, 3, 6), date(2026, 3, 27), date(2026, 6, 26))
# Forwards with a rising basis; smiles with growing total variance (calendar-arbitrage free).
FORWARDS = (65_050.0, 65_300.0, 66_200.0)
SMILES = (
    SviParams(a=0.0020, b=0.020, rho=-0.30, m=0.00, sigma=0.05),
    SviParams(a=0.0080, b=0.050, rho=-0.25, m=0.01, sigma=0.10),
    SviParams(a=0.0350, b=0.110, rho=-0.20, m=0.02, sigma=0.20),
)


def t_of(expiry: date) -> float:
    return year_fraction(AS_OF, expiry_datetime(expiry))


def make_snapshot(**overrides) -> MarketSnapshot:
    fields = {
        "underlying": "BTC",
        "as_of": AS_OF,
        "spot": SPOT,
        "source": "test",
        "slices": tuple(
            ExpirySlice(e, t_of(e), f, s)
            for e, f, s in zip(EXPIRIES, FORWARDS, SMILES, strict=True)
        ),
    }
    fields.update(overrides)
    return MarketSnapshot(**fields)


@pytest.fixture
def snap() -> MarketSnapshot:
    return make_snapshot()


class TestSviParams:
    def test_total_variance_formula(self):
        p = SviParams(a=0.01, b=0.1, rho=-0.4, m=0.05, sigma=0.2)
        k = 0.3
        expected = 0.01 + 0.1 * (-0.4 * (k - 0.05) + math.sqrt((k - 0.05) ** 2 + 0.04))
        assert p.total_variance(k) == pytest.approx(expected, rel=1e-15)
        grid = np.array([-1.0, 0.0, 0.3])
        np.testing.assert_allclose(
            p.total_variance(grid), [p.total_variance(float(x)) for x in grid], rtol=1e-15
        )
        assert p.implied_vol(k, 0.5) == pytest.approx(math.sqrt(expected / 0.5))

    def test_minimum_and_wings(self):
        p = SviParams(a=0.01, b=0.1, rho=-0.4, m=0.05, sigma=0.2)
        k = np.linspace(-2, 2, 40001)
        assert p.min_total_variance == pytest.approx(float(np.min(p.total_variance(k))), abs=1e-9)
        assert p.wing_slopes == pytest.approx((0.14, 0.06))

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"b": -0.1}, "b must be >= 0"),
            ({"rho": 1.0}, "rho must be in"),
            ({"sigma": 0.0}, "sigma must be > 0"),
            ({"a": -0.5}, "minimum total variance"),
            ({"a": math.nan}, "must be finite"),
            ({"m": "x"}, "must be a number"),
        ],
    )
    def test_invalid_parameters_raise(self, params, message):
        base = {"a": 0.01, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.1}
        with pytest.raises(MarketDataError, match=message):
            SviParams(**(base | params))

    def test_well_behaved_smiles_have_no_arbitrage(self):
        for smile in SMILES:
            assert smile.arbitrage_violations() == ()
            smile.check_no_arbitrage()

    def test_vogt_example_has_butterfly_arbitrage(self):
        # Axel Vogt's SVI (Gatheral & Jacquier 2014, Example 3.1): positive variance, wings
        # within Lee's bound, yet Durrleman's g(k) < 0 (a negative density).
        vogt = SviParams(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)
        problems = vogt.arbitrage_violations()
        assert len(problems) == 1
        assert "butterfly" in problems[0]
        with pytest.raises(MarketDataError, match="arbitrage"):
            vogt.check_no_arbitrage()

    def test_lee_bound(self):
        steep = SviParams(a=0.01, b=1.5, rho=0.5, m=0.0, sigma=0.1)
        assert any("Lee" in p for p in steep.arbitrage_violations())

    def test_round_trip(self):
        p = SMILES[1]
        assert SviParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
        with pytest.raises(MarketDataError, match="malformed"):
            SviParams.from_dict({"a": 1})


class TestLookups:
    def test_t_years_is_act365_to_0800_utc(self, snap):
        e = date(2026, 4, 1)
        seconds = (datetime(2026, 4, 1, 8, tzinfo=UTC) - AS_OF).total_seconds()
        assert snap.t_years(e) == pytest.approx(seconds / (365 * 86400), rel=1e-15)
        assert snap.t_years(EXPIRIES[0]) == snap.slices[0].t_years
        assert snap.expiries == EXPIRIES
        assert snap.slice_at(EXPIRIES[1]) is snap.slices[1]
        assert snap.slice_at(date(2026, 4, 1)) is None

    def test_vol_at_listed_expiry_is_its_svi(self, snap):
        for s in snap.slices:
            for strike in (40_000.0, 60_000.0, s.forward, 70_000.0, 120_000.0):
                k = math.log(strike / s.forward)
                assert snap.vol(s.expiry, strike) == s.svi.implied_vol(k, s.t_years)
                assert snap.vol(s.expiry, strike) == s.vol(strike)
            assert snap.forward(s.expiry) == s.forward
            assert snap.atm_vol(s.expiry) == pytest.approx(
                math.sqrt(s.svi.total_variance(0.0) / s.t_years)
            )

    def test_forward_log_linear_between_slices(self, snap):
        e = date(2026, 5, 1)
        t = t_of(e)
        t1, t2 = snap.slices[1].t_years, snap.slices[2].t_years
        theta = (t - t1) / (t2 - t1)
        expected = math.exp((1 - theta) * math.log(FORWARDS[1]) + theta * math.log(FORWARDS[2]))
        assert snap.forward(e) == pytest.approx(expected, rel=1e-14)
        assert FORWARDS[1] < snap.forward(e) < FORWARDS[2]

    def test_forward_basis_flat_outside(self, snap):
        early = datetime(2026, 3, 3, tzinfo=UTC).date()
        basis_first = math.log(FORWARDS[0] / SPOT) / snap.slices[0].t_years
        assert snap.forward(early) == pytest.approx(SPOT * math.exp(basis_first * t_of(early)))
        late = date(2027, 3, 26)
        basis_last = math.log(FORWARDS[2] / SPOT) / snap.slices[2].t_years
        assert snap.forward(late) == pytest.approx(SPOT * math.exp(basis_last * t_of(late)))

    @pytest.mark.parametrize("k", [-0.4, -0.1, 0.0, 0.05, 0.3])
    def test_vol_linear_in_total_variance_at_constant_moneyness(self, snap, k):
        e = date(2026, 5, 1)
        t = t_of(e)
        t1, t2 = snap.slices[1].t_years, snap.slices[2].t_years
        theta = (t - t1) / (t2 - t1)
        w = (1 - theta) * SMILES[1].total_variance(k) + theta * SMILES[2].total_variance(k)
        strike = snap.forward(e) * math.exp(k)
        assert snap.total_variance(e, strike) == pytest.approx(w, rel=1e-12)
        assert snap.vol(e, strike) == pytest.approx(math.sqrt(w / t), rel=1e-12)

    @pytest.mark.parametrize("k", [-0.3, 0.0, 0.2])
    def test_extrapolation_keeps_vol_at_constant_moneyness(self, snap, k):
        first, last = snap.slices[0], snap.slices[-1]
        early = date(2026, 3, 3)
        assert snap.vol(early, snap.forward(early) * math.exp(k)) == pytest.approx(
            first.svi.implied_vol(k, first.t_years), rel=1e-12
        )
        late = date(2027, 3, 26)
        assert snap.vol(late, snap.forward(late) * math.exp(k)) == pytest.approx(
            last.svi.implied_vol(k, last.t_years), rel=1e-12
        )

    def test_total_variance_non_decreasing_in_t(self, snap):
        day = AS_OF.date() + timedelta(days=1)
        for k in (-0.5, -0.1, 0.0, 0.1, 0.5):
            w = []
            while day <= date(2027, 6, 1):
                w.append(snap.total_variance(day, snap.forward(day) * math.exp(k)))
                day += timedelta(days=3)
            day = AS_OF.date() + timedelta(days=1)
            assert np.all(np.diff(w) >= -1e-15), k
        assert snap.calendar_violations() == ()
        assert snap.arbitrage_violations() == ()

    @pytest.mark.parametrize("n", [1, 4, 16, 17, 60])
    def test_vectorised_helpers_match_scalar(self, snap, n):
        rng = np.random.default_rng(n)
        pool = [*EXPIRIES, date(2026, 3, 3), date(2026, 4, 10), date(2026, 9, 25)]
        expiries = [pool[i] for i in rng.integers(0, len(pool), n)]
        strikes = rng.uniform(30_000, 130_000, n)
        vols = snap.vols(expiries, strikes)
        assert vols.shape == (n,)
        assert vols.dtype == np.float64
        expected = [snap.vol(e, float(k)) for e, k in zip(expiries, strikes, strict=True)]
        np.testing.assert_allclose(vols, expected, rtol=1e-13)
        np.testing.assert_allclose(snap.forwards(expiries), [snap.forward(e) for e in expiries])
        np.testing.assert_allclose(snap.times(expiries), [snap.t_years(e) for e in expiries])

    def test_vols_broadcasts_one_expiry(self, snap):
        strikes = np.array([50_000.0, 65_000.0, 80_000.0])
        np.testing.assert_array_equal(
            snap.vols([EXPIRIES[1]], strikes), snap.vols([EXPIRIES[1]] * 3, strikes)
        )

    def test_realistic_levels(self, snap):
        assert 0.3 < snap.atm_vol(EXPIRIES[2]) < 1.0


class TestErrors:
    @pytest.mark.parametrize(
        "expiry", [date(2026, 3, 1), date(2026, 3, 2), date(2025, 12, 26)], ids=str
    )
    def test_expiry_in_the_past(self, snap, expiry):
        # 2026-03-02 08:00 UTC is before AS_OF (09:30): expired the same morning.
        for call in (
            lambda: snap.vol(expiry, 65_000.0),
            lambda: snap.forward(expiry),
            lambda: snap.t_years(expiry),
            lambda: snap.vols([expiry], np.array([65_000.0])),
        ):
            with pytest.raises(ExpiredExpiry, match="not after the snapshot time") as info:
                call()
            assert isinstance(info.value, MarketDataError)
            assert isinstance(info.value, ValueError)
            assert info.value.code == "expiry_in_past"

    @pytest.mark.parametrize("strike", [0.0, -1.0, math.nan, math.inf])
    def test_non_positive_strike(self, snap, strike):
        with pytest.raises(MarketDataError, match="strike"):
            snap.vol(EXPIRIES[0], strike)
        with pytest.raises(MarketDataError, match="strike"):
            snap.vols([EXPIRIES[0]], np.array([60_000.0, strike]))
        with pytest.raises(MarketDataError, match="strike"):
            snap.vols([EXPIRIES[0]], np.full(40, strike))

    def test_shape_mismatch(self, snap):
        with pytest.raises(MarketDataError, match="2 expiries for 3 strikes"):
            snap.vols(EXPIRIES[:2], np.ones(3))
        with pytest.raises(MarketDataError, match="one-dimensional"):
            snap.vols(EXPIRIES[:1], np.ones((2, 2)))

    def test_empty_snapshot(self):
        with pytest.raises(MarketDataError, match="empty snapshot"):
            make_snapshot(slices=())

    def test_unsorted_or_duplicate_slices(self, snap):
        with pytest.raises(MarketDataError, match="sorted"):
            make_snapshot(slices=snap.slices[::-1])
        with pytest.raises(MarketDataError, match="sorted"):
            make_snapshot(slices=(snap.slices[0], snap.slices[0]))

    def test_naive_as_of_and_bad_spot(self):
        with pytest.raises(MarketDataError, match="timezone-aware"):
            make_snapshot(as_of=AS_OF.replace(tzinfo=None))
        with pytest.raises(MarketDataError, match="spot"):
            make_snapshot(spot=0.0)

    def test_slice_time_must_match_as_of(self, snap):
        s = snap.slices[0]
        shifted = ExpirySlice(s.expiry, s.t_years + 1e-4, s.forward, s.svi)
        with pytest.raises(MarketDataError, match="t_years"):
            make_snapshot(slices=(shifted, *snap.slices[1:]))

    def test_expired_slice(self):
        with pytest.raises(ExpiredExpiry):
            ExpirySlice(date(2026, 3, 1), -0.001, 65_000.0, SMILES[0])

    def test_as_of_normalised_to_utc(self):
        plus2 = AS_OF.astimezone(timezone(timedelta(hours=2)))
        other = make_snapshot(as_of=plus2)
        assert other.as_of.tzinfo is UTC
        assert other == make_snapshot()


class TestSerialisation:
    def test_round_trip_exact_through_json(self, snap):
        data = json.loads(json.dumps(snap.to_dict()))
        back = MarketSnapshot.from_dict(data)
        assert back == snap
        assert back.to_dict() == snap.to_dict()
        e = date(2026, 5, 1)
        assert back.vol(e, 71_234.5) == snap.vol(e, 71_234.5)

    def test_layout(self, snap):
        data = snap.to_dict()
        assert data["version"] == 1
        assert data["as_of"] == "2026-03-02T09:30:00+00:00"
        assert data["slices"][0]["expiry"] == "2026-03-06"
        assert set(data["slices"][0]["svi"]) == {"a", "b", "rho", "m", "sigma"}

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda d: d.pop("slices"),
            lambda d: d.update(as_of="yesterday"),
            lambda d: d.update(version=99),
            lambda d: d["slices"][0].update(expiry="2026-13-01"),
            lambda d: d["slices"][0]["svi"].update(b=-1),
            lambda d: d.update(spot=None),
        ],
    )
    def test_malformed_raises_market_data_error(self, snap, mutate):
        data = snap.to_dict()
        mutate(data)
        with pytest.raises(MarketDataError):
            MarketSnapshot.from_dict(data)


@settings(max_examples=60, deadline=None)
@given(
    days=st.integers(min_value=1, max_value=500),
    strike=st.floats(min_value=1_000.0, max_value=500_000.0),
)
def test_vol_is_positive_and_finite_anywhere(days, strike):
    snap = make_snapshot()
    expiry = AS_OF.date() + timedelta(days=days)
    vol = snap.vol(expiry, strike)
    assert math.isfinite(vol)
    assert vol > 0.0
    assert snap.vols([expiry], np.array([strike]))[0] == pytest.approx(vol, rel=1e-13)
