"""Venue adapter on every recorded ticker / book-summary payload, the SVI fit, and DeribitFeed.

The payloads are third-party recordings in ../shared/data/venue (read in place, never copied);
the tests skip with a reason when that folder is absent. No test touches the network: the feed
is served by respx.
"""

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pytest
import respx

from app.domain import Instrument, OptionType
from app.marketdata import (
    DeribitFeed,
    MarketDataError,
    MarketDataFeed,
    SimulatedFeed,
    SviParams,
    UnknownUnderlying,
    VenueError,
    VenueUnavailable,
    fit_svi,
    parse_book_summary,
    parse_payload,
    parse_quote,
    parse_ticker,
    snapshot_from_quotes,
)
from app.marketdata.deribit import DERIBIT_API, MIN_SVI_POINTS
from app.quant.pricing import black76, coin_option, deribit_display_greeks

VENUE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "venue"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GREEKS = ("delta", "gamma", "vega", "theta", "rho")
SUMMARY_URL = f"{DERIBIT_API}/public/get_book_summary_by_currency"


def venue_files(pattern: str) -> list[str]:
    return sorted(p.name for p in VENUE.glob(pattern)) if VENUE.is_dir() else []


RECORDED = venue_files("deribit_ticker_*.json") + venue_files("deribit_book_summary_*.json")


def load(name: str):
    path = VENUE / name
    if not path.exists():
        pytest.skip(f"venue payloads not found at {VENUE} (../shared beside the checkout)")
    return json.loads(path.read_text())


def raw_entries(payload) -> list[dict]:
    """The entries of a payload, independently of the adapter (for cross-checks)."""
    if "params" in payload:
        payload = payload["params"]["data"]
    payload = payload.get("result", payload)
    if isinstance(payload, list):
        return payload
    if "instrument_name" in payload:
        return [payload]
    return list(payload.values())


def ms(value: int) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


# What each recording must yield: (coin-settled option quotes, skipped entries).
EXPECTED = {
    "deribit_book_summary_by_currency_btc_option_real_2022-06-04.json": (2, 0),
    "deribit_book_summary_by_currency_btc_option_real_2024-03-22.json": (1, 0),
    "deribit_book_summary_by_currency_doc_example.json": (1, 0),
    "deribit_book_summary_by_instrument_btc_option_real_2025-07-08.json": (1, 0),
    "deribit_ticker_btc_option_real_2023-11-10.json": (1, 0),
    "deribit_ticker_btc_option_real_2025-07-09.json": (1, 0),
    "deribit_ticker_btc_option_real_2025-07-17.json": (1, 0),
    "deribit_ticker_doc_example_perpetual.json": (0, 1),
    "deribit_ticker_result_btc_option_2025-09-09.json": (1, 0),
    "deribit_ticker_results_by_instrument_real_2026-09-20.json": (6, 6),
    "deribit_ticker_ws_btc_option_at_expiry_real_2020-04-02.json": (1, 0),
    "deribit_ticker_ws_btc_option_real_2022-06-02.json": (1, 0),
}


def test_every_recording_is_covered():
    if not RECORDED:
        pytest.skip(f"venue payloads not found at {VENUE} (../shared beside the checkout)")
    assert set(RECORDED) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
class TestRecordedPayloads:
    def test_every_entry_parsed_or_skipped_with_a_reason(self, name):
        payload = load(name)
        parsed = parse_payload(payload)
        assert (len(parsed.quotes), len(parsed.skipped)) == EXPECTED[name]
        assert len(parsed.quotes) + len(parsed.skipped) == len(raw_entries(payload))
        for skipped in parsed.skipped:
            assert skipped.name
            assert skipped.name in skipped.reason
            if skipped.name.startswith("XRP_USDC"):
                assert "linear USDC-settled option" in skipped.reason
            else:
                assert "not an option" in skipped.reason

    def test_fields(self, name):
        payload = load(name)
        raws = {r["instrument_name"]: r for r in raw_entries(payload)}
        for q in parse_payload(payload).quotes:
            raw = raws[q.name]
            instrument = Instrument.parse(raw["instrument_name"])
            assert q.instrument == instrument
            assert q.name == raw["instrument_name"]
            stamp = raw.get("timestamp", raw.get("creation_timestamp"))
            assert q.timestamp == ms(stamp)
            assert q.kind == ("ticker" if "timestamp" in raw else "book_summary")
            assert q.underlying_price == raw["underlying_price"]
            assert q.mark_price_coin == raw["mark_price"]
            assert q.index_price == raw.get("index_price")
            bid = raw.get("best_bid_price", raw.get("bid_price"))
            ask = raw.get("best_ask_price", raw.get("ask_price"))
            assert q.bid_coin == (bid or None)
            assert q.ask_coin == (ask or None)
            if raw.get("mark_iv"):
                assert q.mark_iv_source == "venue"
                assert q.mark_iv == pytest.approx(raw["mark_iv"] / 100, rel=1e-15)
            if "greeks" in raw:
                assert q.greeks == {k: float(raw["greeks"][k]) for k in GREEKS}
            else:
                assert q.greeks is None
            delivery = raw.get("estimated_delivery_price")
            assert q.expired == (delivery == "expired" or q.t_years <= 0)
            assert q.estimated_delivery_price == (None if delivery == "expired" else delivery)
            assert q.strike == float(instrument.strike)
            assert q.is_call == (instrument.option_type is OptionType.CALL)


def ticker_quotes():
    out = []
    for name in RECORDED:
        if not name.startswith("deribit_ticker_"):
            continue
        for q in parse_payload(json.loads((VENUE / name).read_text())).quotes:
            out.append(pytest.param(q, id=f"{name[8:-5]}:{q.name}"))
    return out


@pytest.mark.parametrize("quote", ticker_quotes())
def test_greeks_agree_with_the_venue(quote):
    """deribit_display_greeks on underlying_price and mark_iv reproduces the venue's greeks."""
    venue = quote.greeks
    assert venue is not None
    t = quote.t_years
    if t <= 0.0:
        assert quote.expired
        assert all(v == 0.0 for v in venue.values())
        pytest.skip("at or after expiry (T <= 0): the venue reports all greeks 0")
    ours = deribit_display_greeks(
        quote.underlying_price, quote.strike, t, quote.mark_iv, quote.is_call
    )
    # Venue greeks are printed with 5 decimals (gamma has one significant digit): allow half a
    # unit of the last printed digit on top of 1e-3 relative.
    for key in GREEKS:
        value = float(getattr(ours, key))
        assert value == pytest.approx(venue[key], rel=1e-3, abs=5e-6), key
    degenerate = venue["gamma"] == venue["vega"] == 0.0
    if not degenerate:
        # Well inside a day or more from expiry the agreement is ~1e-4 on the large greeks.
        for key in ("delta", "vega", "theta"):
            assert float(getattr(ours, key)) == pytest.approx(venue[key], rel=1e-3), key
    # The ticker's mark price is Black-76's coin price rounded to the 0.0001 coin tick.
    assert float(ours.price) == pytest.approx(quote.mark_price_coin, abs=5e-5 + 1e-9)


def test_book_summary_iv_is_derived_when_missing():
    for name in (
        "deribit_book_summary_by_currency_btc_option_real_2022-06-04.json",
        "deribit_book_summary_by_currency_btc_option_real_2024-03-22.json",
    ):
        for q in parse_payload(load(name)).quotes:
            assert q.mark_iv_source == "derived"
            assert 0.3 < q.mark_iv < 1.5
            coin = coin_option(q.underlying_price, q.strike, q.t_years, q.mark_iv, q.is_call)
            assert float(coin.price) == pytest.approx(q.mark_price_coin, rel=1e-10)


def test_derived_iv_agrees_with_venue_iv_on_an_8_decimal_mark():
    (q,) = parse_payload(
        load("deribit_book_summary_by_instrument_btc_option_real_2025-07-08.json")
    ).quotes
    usd = q.mark_price_coin * q.underlying_price
    from app.quant.pricing import implied_vol

    derived = float(implied_vol(usd, q.underlying_price, q.strike, q.t_years, q.is_call))
    assert derived == pytest.approx(q.mark_iv, abs=1e-4)  # mark_iv has 2 decimals of percent


class TestQuirks:
    def test_expired_string_and_zero_greeks(self):
        (q,) = parse_payload(
            load("deribit_ticker_ws_btc_option_at_expiry_real_2020-04-02.json")
        ).quotes
        assert q.expired
        assert q.estimated_delivery_price is None
        assert q.t_years < 0
        assert q.mark_iv == 2.5  # the venue's placeholder after expiry
        assert q.bid_iv is None  # 0 means none
        assert q.ask_iv == 5.0

    def test_doc_example_with_implausible_mark(self):
        (q,) = parse_payload(load("deribit_book_summary_by_currency_doc_example.json")).quotes
        assert q.instrument.underlying == "ETH"
        assert q.mark_iv is None
        assert q.mark_iv_source == "none"
        assert any("not derivable" in note for note in q.notes)
        assert any("quote_currency 'USD'" in note for note in q.notes)

    def test_index_differs_from_the_expirys_future(self):
        (q,) = parse_payload(load("deribit_ticker_btc_option_real_2023-11-10.json")).quotes
        assert q.underlying_index == "BTC-27SEP24"
        assert q.index_price == 36552.72
        assert q.underlying_price == 38992.71
        assert q.mark_price_usd == pytest.approx(q.mark_price_coin * 36552.72)

    def test_zero_bid_is_none(self):
        payload = load("deribit_ticker_results_by_instrument_real_2026-09-20.json")
        q = next(q for q in parse_payload(payload).quotes if q.name == "BTC-21SEP26-68000-P")
        assert q.bid_coin is None
        assert q.ask_coin == 0.0001

    def test_single_entry_parsers(self):
        data = load("deribit_ticker_btc_option_real_2025-07-17.json")["result"]
        assert parse_ticker(data) == parse_quote(data)
        entry = load("deribit_book_summary_by_instrument_btc_option_real_2025-07-08.json")[
            "result"
        ][0]
        assert parse_book_summary(entry) == parse_quote(entry)
        assert parse_quote(entry).kind == "book_summary"

    @pytest.mark.parametrize(
        ("entry", "message"),
        [
            ({"instrument_name": "BTC-PERPETUAL", "timestamp": 1}, "not an option"),
            ({"instrument_name": "BTC-27SEP24", "timestamp": 1}, "not an option"),
            ({"instrument_name": "SOL_USDC-27SEP24-1d5-C", "timestamp": 1}, "linear USDC"),
            ({"instrument_name": "BTC-31FEB24-1000-C", "timestamp": 1}, "unreadable"),
            ({"instrument_name": "BTC-27SEP24-1000-C", "timestamp": 1}, "underlying_price"),
            ({"instrument_name": "BTC-27SEP24-1000-C"}, "neither a ticker"),
            (
                {"instrument_name": "BTC-27SEP24-1000-C", "timestamp": 1, "underlying_price": 1e4},
                "mark_price",
            ),
        ],
    )
    def test_bad_entries(self, entry, message):
        with pytest.raises(VenueError, match=message):
            parse_quote(entry)
        parsed = parse_payload({"result": [entry]})
        assert parsed.quotes == ()
        assert message in parsed.skipped[0].reason

    def test_bad_payloads(self):
        with pytest.raises(VenueUnavailable, match="JSON-RPC error"):
            parse_payload({"jsonrpc": "2.0", "error": {"code": 10009, "message": "not_enough"}})
        with pytest.raises(VenueError, match="unrecognised"):
            parse_payload({"foo": 1})
        with pytest.raises(VenueError, match="unrecognised"):
            parse_payload("text")
        assert parse_payload({"result": [1]}).skipped[0].reason.startswith("entry is not")


class TestSviFit:
    TRUE = SviParams(a=0.02, b=0.15, rho=-0.35, m=0.05, sigma=0.12)

    def test_recovers_a_known_smile(self):
        k = np.linspace(-0.6, 0.5, 25)
        fit = fit_svi(k, self.TRUE.total_variance(k))
        for got, want in zip(fit.as_tuple(), self.TRUE.as_tuple(), strict=True):
            assert got == pytest.approx(want, rel=1e-6, abs=1e-9)

    @pytest.mark.parametrize("t", [2.0 / 365, 30.0 / 365, 1.0])
    def test_recovers_simulated_smiles_under_noise(self, t):
        # SSVI slices of the simulated feed, noisy IVs rounded like the venue's (0.01 %).
        snap = SimulatedFeed(clock=lambda: datetime(2026, 1, 5, 12, tzinfo=UTC)).snapshot_sync(
            "BTC"
        )
        s = min(snap.slices, key=lambda s: abs(s.t_years - t))
        sd = s.vol(s.forward) * math.sqrt(s.t_years)
        k = np.linspace(-3 * sd, 2.5 * sd, 30)
        vols = np.round([s.svi.implied_vol(float(x), s.t_years) for x in k], 4)
        fit = fit_svi(k, vols**2 * s.t_years)
        assert fit.arbitrage_violations() == ()
        for x in k:
            assert fit.implied_vol(float(x), s.t_years) == pytest.approx(
                s.svi.implied_vol(float(x), s.t_years), abs=2e-4
            )

    @pytest.mark.parametrize("n", [1, 2, 3, MIN_SVI_POINTS - 1])
    def test_few_points_give_a_valid_near_linear_smile(self, n):
        k = np.linspace(-0.1, 0.08, n)
        w = 0.01 - 0.02 * k
        fit = fit_svi(k, w)
        assert fit.arbitrage_violations() == ()
        assert fit.b <= 0.1
        np.testing.assert_allclose(fit.total_variance(k), w, rtol=0.02)
        if n == 1:
            assert fit.b == 0.0
            assert fit.total_variance(0.7) == pytest.approx(w[0])

    def test_invalid_input(self):
        with pytest.raises(MarketDataError):
            fit_svi([], [])
        with pytest.raises(MarketDataError):
            fit_svi([0.0, 0.1], [0.01, -0.01])


class TestSnapshotFromQuotes:
    def test_from_recorded_tickers(self):
        payload = load("deribit_ticker_results_by_instrument_real_2026-09-20.json")
        quotes = parse_payload(payload).quotes
        as_of = max(q.timestamp for q in quotes)
        snap = snapshot_from_quotes("BTC", quotes, as_of)
        assert snap.source == "deribit"
        assert snap.expiries == (date(2026, 9, 21),)
        assert snap.spot == pytest.approx(80_808.14)
        assert snap.forward(date(2026, 9, 21)) == pytest.approx(80_809.22)
        for q in quotes:
            assert snap.vol(q.instrument.expiry, q.strike) == pytest.approx(q.mark_iv, abs=2e-4)
        assert snap.arbitrage_violations() == ()

    def test_skips_expired_and_other_underlyings(self):
        at_expiry = parse_payload(
            load("deribit_ticker_ws_btc_option_at_expiry_real_2020-04-02.json")
        ).quotes
        with pytest.raises(MarketDataError, match="no usable option quotes for BTC"):
            snapshot_from_quotes("BTC", at_expiry, at_expiry[0].timestamp)
        ticker = parse_payload(load("deribit_ticker_btc_option_real_2025-07-17.json")).quotes
        with pytest.raises(MarketDataError, match="no usable option quotes for ETH"):
            snapshot_from_quotes("ETH", ticker, ticker[0].timestamp)
        with pytest.raises(MarketDataError, match="timezone-aware"):
            snapshot_from_quotes("BTC", ticker, datetime(2025, 7, 17))

    def test_refits_a_known_surface_on_the_venues_2025_05_08_listing(self):
        chain, sim, as_of = synthetic_chain("BTC")
        quotes = parse_payload(chain).quotes
        assert len(quotes) == 714
        snap = snapshot_from_quotes("BTC", quotes, as_of)
        assert snap.expiries == sim.expiries
        assert snap.arbitrage_violations() == ()
        check_refit(snap, sim, quotes)

    def test_strikes_on_one_wing_only(self):
        # Spot 65k against the 100k-centred strikes of 2025-05-08: the dailies' quotes all sit
        # 3 to 28 standard deviations out on the call wing. The fit still matches every quote
        # and stays free of butterfly arbitrage (raw SVI, else the SSVI fallback).
        chain, _, as_of = synthetic_chain("BTC", spot=65_000.0)
        quotes = parse_payload(chain).quotes
        snap = snapshot_from_quotes("BTC", quotes, as_of)
        assert all(s.svi.arbitrage_violations() == () for s in snap.slices)
        worst = max(abs(snap.vol(q.instrument.expiry, q.strike) - q.mark_iv) for q in quotes)
        assert worst < 3e-4


SPOTS_2025_05_08 = {"BTC": 99_000.0, "ETH": 1_850.0}


def synthetic_chain(currency: str, spot: float | None = None):
    """A get_book_summary_by_currency response for every option the venue listed on 2025-05-08,
    priced on a simulated surface and rounded like the venue (marks 8 decimals, IV 0.01 %)."""
    listed = load("deribit_get_instruments_btc_eth_option_result_real_2025-05-08.json")
    stamp = max(r["creation_timestamp"] for r in listed)
    as_of = ms(stamp)
    spots = {currency: spot or SPOTS_2025_05_08[currency]}
    sim = SimulatedFeed(clock=lambda: as_of, spots=spots).snapshot_sync(currency)
    result = []
    for r in listed:
        if r["base_currency"] != currency:
            continue
        inst = Instrument.parse(r["instrument_name"])
        fwd = round(sim.forward(inst.expiry), 2)
        strike = float(inst.strike)
        vol = sim.vol(inst.expiry, strike)
        t = sim.t_years(inst.expiry)
        coin = coin_option(fwd, strike, t, vol, inst.option_type is OptionType.CALL)
        result.append(
            {
                "instrument_name": r["instrument_name"],
                "creation_timestamp": stamp,
                "underlying_price": fwd,
                "underlying_index": f"{currency}-{r['instrument_name'].split('-')[1]}",
                "mark_price": round(float(coin.price), 8),
                "mark_iv": round(vol * 100, 2),
                "estimated_delivery_price": round(sim.spot, 2),
                "bid_price": None,
                "ask_price": None,
                "interest_rate": 0,
                "quote_currency": currency,
                "base_currency": currency,
            }
        )
    body = {"jsonrpc": "2.0", "result": result, "usIn": stamp * 1000, "usOut": stamp * 1000 + 50}
    return body, sim, as_of


def check_refit(snap, sim, quotes):
    assert snap.spot == pytest.approx(sim.spot, abs=0.01)
    for e in sim.expiries:
        assert snap.forward(e) == pytest.approx(sim.forward(e), abs=0.006)
    worst = max(abs(snap.vol(q.instrument.expiry, q.strike) - q.mark_iv) for q in quotes)
    assert worst < 3e-4  # IVs carry 0.5e-4 of rounding
    # Between listed expiries the refitted surface interpolates like the original.
    for e in (date(2025, 5, 13), date(2025, 6, 10), date(2025, 11, 1)):
        for moneyness in (0.8, 0.95, 1.1):
            strike = moneyness * sim.spot
            assert snap.vol(e, strike) == pytest.approx(sim.vol(e, strike), abs=3e-4)
    assert snap.calendar_violations() == ()


class TestDeribitFeed:
    async def test_snapshot_through_respx_on_a_recorded_summary(self):
        payload = load("deribit_book_summary_by_instrument_btc_option_real_2025-07-08.json")
        async with httpx.AsyncClient() as client:
            feed = DeribitFeed(client)
            assert isinstance(feed, MarketDataFeed)
            with respx.mock(assert_all_called=True) as router:
                route = router.get(SUMMARY_URL, params={"currency": "BTC", "kind": "option"})
                route.respond(json=payload)
                snap = await feed.snapshot("BTC")
        assert route.call_count == 1
        assert snap.underlying == "BTC"
        assert snap.as_of == ms(1752013414221)
        assert snap.expiries == (date(2026, 6, 26),)
        assert snap.spot == 108_887.0  # estimated_delivery_price: summaries carry no index
        assert snap.forward(date(2026, 6, 26)) == 116_076.41
        assert snap.vol(date(2026, 6, 26), 100_000.0) == pytest.approx(0.4536, abs=1e-9)

    async def test_derived_ivs_from_a_2022_summary(self):
        payload = load("deribit_book_summary_by_currency_btc_option_real_2022-06-04.json")
        async with httpx.AsyncClient() as client:
            with respx.mock() as router:
                router.get(SUMMARY_URL).respond(json=payload)
                snap = await DeribitFeed(client).snapshot("BTC")
        assert snap.expiries == (date(2022, 6, 24), date(2022, 12, 30))
        assert snap.vol(date(2022, 6, 24), 30_000.0) == pytest.approx(0.61197, abs=1e-5)
        assert snap.vol(date(2022, 12, 30), 90_000.0) == pytest.approx(0.72172, abs=1e-5)

    async def test_full_chain(self):
        chain, sim, as_of = synthetic_chain("ETH")
        async with httpx.AsyncClient() as client:
            with respx.mock() as router:
                router.get(SUMMARY_URL, params={"currency": "ETH"}).respond(json=chain)
                snap = await DeribitFeed(client).snapshot("ETH")
        assert snap.underlying == "ETH"
        assert snap.as_of == as_of
        assert snap.expiries == sim.expiries
        check_refit(snap, sim, parse_payload(chain).quotes)

    async def test_cache_and_refresh(self):
        payload = load("deribit_book_summary_by_instrument_btc_option_real_2025-07-08.json")
        now = [0.0]
        async with httpx.AsyncClient() as client:
            feed = DeribitFeed(client, max_age=2.0, monotonic=lambda: now[0])
            with respx.mock() as router:
                route = router.get(SUMMARY_URL).respond(json=payload)
                first = await feed.snapshot("BTC")
                now[0] = 1.5
                assert await feed.snapshot("BTC") is first
                now[0] = 2.5
                assert await feed.snapshot("BTC") == first
        assert route.call_count == 2

    async def test_unknown_underlying_makes_no_request(self):
        async with httpx.AsyncClient() as client:
            with respx.mock(assert_all_called=False) as router:
                route = router.get(SUMMARY_URL)
                with pytest.raises(UnknownUnderlying, match="DOGE"):
                    await DeribitFeed(client).snapshot("DOGE")
        assert route.call_count == 0

    @pytest.mark.parametrize(
        ("response", "message"),
        [
            (httpx.Response(500, text="oops"), "HTTP 500"),
            (
                httpx.Response(
                    400, json={"jsonrpc": "2.0", "error": {"code": 11050, "message": "bad_request"}}
                ),
                "bad_request",
            ),
            (httpx.Response(200, json={"jsonrpc": "2.0", "error": {"code": 1}}), "JSON-RPC"),
            (httpx.Response(200, text="<html>"), "not JSON"),
            (httpx.ConnectError("refused"), "failed"),
        ],
    )
    async def test_venue_errors(self, response, message):
        async with httpx.AsyncClient() as client:
            with respx.mock() as router:
                route = router.get(SUMMARY_URL)
                if isinstance(response, Exception):
                    route.side_effect = response
                else:
                    route.return_value = response
                with pytest.raises(VenueUnavailable, match=message):
                    await DeribitFeed(client).snapshot("BTC")

    async def test_no_usable_quotes(self):
        payload = load("deribit_ticker_results_by_instrument_real_2026-09-20.json")
        xrp_only = [v for k, v in payload.items() if k.startswith("XRP")]
        async with httpx.AsyncClient() as client:
            with respx.mock() as router:
                router.get(SUMMARY_URL).respond(json={"result": xrp_only})
                with pytest.raises(MarketDataError, match="6 entries skipped"):
                    await DeribitFeed(client, underlyings=frozenset({"BTC"})).snapshot("BTC")


def test_strike_decimals_in_linear_names_are_reported():
    with pytest.raises(VenueError, match=r"strike 1\.25"):
        parse_quote({"instrument_name": "XRP_USDC-21SEP26-1d25-C", "timestamp": 0})
    assert Decimal("1.25") == Decimal("1d25".replace("d", "."))


def test_black76_consistency_of_venue_units():
    # USD value on the forward = coin price × F (QUANT.md §4), the basis of IV derivation.
    g_usd = black76(100_000.0, 90_000.0, 0.5, 0.6, True)
    g_coin = coin_option(100_000.0, 90_000.0, 0.5, 0.6, True)
    assert float(g_coin.price) * 100_000.0 == pytest.approx(float(g_usd.price), rel=1e-14)
