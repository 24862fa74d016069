from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import (
    DomainError,
    Instrument,
    InvalidInstrument,
    OptionType,
    format_decimal,
    normalise_quantity,
    normalise_strike,
)

D = Decimal


class TestInstrument:
    @pytest.mark.parametrize(
        ("name", "instrument"),
        [
            (
                "BTC-25DEC26-70000-C",
                Instrument("BTC", date(2026, 12, 25), D(70000), OptionType.CALL),
            ),
            ("ETH-4DEC26-3000-P", Instrument("ETH", date(2026, 12, 4), D(3000), OptionType.PUT)),
            ("ETH-4DEC26-1.5-C", Instrument("ETH", date(2026, 12, 4), D("1.5"), OptionType.CALL)),
            ("BTC_USDC-1JAN30-5-P", Instrument("BTC_USDC", date(2030, 1, 1), D(5), OptionType.PUT)),
        ],
    )
    def test_parse_and_name(self, name, instrument):
        assert Instrument.parse(name) == instrument
        assert instrument.name == name

    def test_expiry_at(self):
        instrument = Instrument.parse("BTC-25DEC26-70000-C")
        assert instrument.expiry_at == datetime(2026, 12, 25, 8, tzinfo=UTC)

    @pytest.mark.parametrize(
        "name", ["btc-25dec26-70000-c", " BTC-25DEC26-70000-C ", "BTC-25DEC26-70000.00-C"]
    )
    def test_parse_is_lenient_and_names_canonically(self, name):
        assert Instrument.parse(name).name == "BTC-25DEC26-70000-C"

    @pytest.mark.parametrize("strike", [D("70000.0"), D("7E+4"), D("70000.000")])
    def test_strike_is_stored_plain(self, strike):
        instrument = Instrument("BTC", date(2026, 12, 25), strike, OptionType.CALL)
        assert str(instrument.strike) == "70000"
        assert instrument.name == "BTC-25DEC26-70000-C"

    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("BTC-25DEC26-70000", "expected UNDERLYING-DMMMYY-STRIKE-C|P"),
            ("BTC-25DEC26-70000-C-X", "expected UNDERLYING-DMMMYY-STRIKE-C|P"),
            ("BTC-25DEC26--70000-C", "expected UNDERLYING-DMMMYY-STRIKE-C|P"),
            ("BTC-2026-12-25-70000-C", "expected UNDERLYING-DMMMYY-STRIKE-C|P"),
            ("BTC-25DEC-70000-C", "expiry must look like 25DEC26, got '25DEC'"),
            ("BTC-25DXC26-70000-C", "unknown month 'DXC'"),
            ("BTC-32DEC26-70000-C", "day 32 is not in December 2026"),
            ("BTC-29FEB27-70000-C", "day 29 is not in February 2027"),
            ("BTC-25DEC26-0-C", "strike must be positive, got 0"),
            ("BTC-25DEC26-70K-C", "strike must be a number, got '70K'"),
            ("BTC-25DEC26-1d25-C", "strike must be a number, got '1D25'"),
            ("BTC-25DEC26-70000-X", "option type must be C or P, got 'X'"),
            ("BTC-25DEC26-70000-CALL", "option type must be C or P, got 'CALL'"),
            ("1BTC-25DEC26-70000-C", "underlying must be a coin code in capitals"),
            ("-25DEC26-70000-C", "underlying must be a coin code in capitals"),
        ],
    )
    def test_parse_errors(self, name, reason):
        with pytest.raises(InvalidInstrument, match=reason) as info:
            Instrument.parse(name)
        assert (info.value.field, info.value.code) == ("instrument", "invalid_instrument")
        assert repr(name) in info.value.reason

    @pytest.mark.parametrize(
        ("underlying", "strike", "reason"),
        [
            ("BTC", D(0), "strike must be positive"),
            ("BTC", D(-1), "strike must be positive"),
            ("BTC", D("NaN"), "strike must be positive"),
            ("BTC", D("Infinity"), "strike must be positive"),
            ("btc", D(1), "underlying must be a coin code in capitals"),
            ("", D(1), "underlying must be a coin code in capitals"),
        ],
    )
    def test_constructor_errors(self, underlying, strike, reason):
        with pytest.raises(InvalidInstrument, match=reason):
            Instrument(underlying, date(2026, 12, 25), strike, OptionType.CALL)

    @given(
        underlying=st.from_regex(r"[A-Z][A-Z0-9_]{0,9}", fullmatch=True),
        expiry=st.dates(date(2000, 1, 1), date(2099, 12, 31)),
        strike=st.decimals(D("0.0001"), D(10**9), places=4, allow_nan=False, allow_infinity=False),
        option_type=st.sampled_from(OptionType),
    )
    def test_name_round_trip(self, underlying, expiry, strike, option_type):
        instrument = Instrument(underlying, expiry, strike, option_type)
        parsed = Instrument.parse(instrument.name)
        assert parsed == instrument
        assert parsed.name == instrument.name


def test_domain_error_shape():
    error = DomainError("legs[2].ratio", "ratio must be an integer >= 1, got 0")
    assert isinstance(error, ValueError)
    assert str(error) == "legs[2].ratio: ratio must be an integer >= 1, got 0"
    assert error.code == "invalid_rfq"
    assert InvalidInstrument("instrument", "bad").code == "invalid_instrument"


@pytest.mark.parametrize(
    ("value", "text"),
    [(D(70000), "70000"), (D("7E+4"), "70000"), (D("1.50"), "1.5"), (D("0.1"), "0.1")],
)
def test_format_decimal(value, text):
    assert format_decimal(value) == text


class TestNormaliseStrike:
    @pytest.mark.parametrize(
        ("text", "underlying", "expected"),
        [
            ("70k", "BTC", "70000"),
            ("70K", "BTC", "70000"),
            ("64.5k", "BTC", "64500"),
            ("$70k", "BTC", "70000"),
            ("70", "BTC", "70000"),
            ("70", "btc", "70000"),
            ("999", "BTC", "999000"),
            ("1000", "BTC", "1000"),
            ("65000", "BTC", "65000"),
            ("65,000", "BTC", "65000"),
            ("3.5", "ETH", "3500"),
            ("3.5k", "ETH", "3500"),
            ("3,080", "ETH", "3080"),
            ("3080", "ETH", "3080"),
            ("99", "ETH", "99000"),
            ("100", "ETH", "100"),
            ("1.5k", "ETH", "1500"),
            ("1.5", "SOL", "1.5"),  # no thousands rule for other underlyings
            (" 80 ", "BTC", "80000"),
        ],
    )
    def test_readings(self, text, underlying, expected):
        assert normalise_strike(text, underlying) == D(expected)
        assert str(normalise_strike(text, underlying)) == expected

    @pytest.mark.parametrize(
        "text", ["", "k", "abc", "0", "0k", "-70k", "70kk", "3,08", "7e4", "1,5"]
    )
    def test_errors(self, text):
        with pytest.raises(DomainError) as info:
            normalise_strike(text, "BTC")
        assert info.value.field == "strike"

    numbers = st.decimals(D("0.01"), D(10**6), places=2, allow_nan=False, allow_infinity=False)
    underlyings = st.sampled_from(["BTC", "ETH", "SOL"])

    @given(x=numbers, underlying=underlyings)
    def test_k_suffix_is_thousands(self, x, underlying):
        assert normalise_strike(f"{x}k", underlying) == x * 1000

    @given(x=numbers)
    def test_bare_btc_below_1000_is_thousands(self, x):
        assert normalise_strike(str(x), "BTC") == (x * 1000 if x < 1000 else x)

    @given(x=numbers)
    def test_bare_eth_below_100_is_thousands(self, x):
        assert normalise_strike(str(x), "ETH") == (x * 1000 if x < 100 else x)

    @given(n=st.integers(1, 10**9), underlying=underlyings)
    def test_thousands_commas_do_not_matter(self, n, underlying):
        assert normalise_strike(f"{n:,}", underlying) == normalise_strike(str(n), underlying)

    @given(x=numbers, underlying=underlyings)
    def test_result_is_positive_and_plain(self, x, underlying):
        strike = normalise_strike(str(x), underlying)
        assert strike > 0
        assert str(strike) == format_decimal(strike)

    @given(x=st.decimals(D(1000), D(10**9), places=2), underlying=underlyings)
    def test_idempotent_at_or_above_every_bound(self, x, underlying):
        strike = normalise_strike(str(x), underlying)
        assert normalise_strike(str(strike), underlying) == strike


class TestNormaliseQuantity:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("250", "250"),
            ("250x", "250"),
            ("x250", "250"),
            ("X 250", "250"),
            ("250 lots", "250"),
            ("1 lot", "1"),
            ("250 contracts", "250"),
            ("1.5k", "1500"),
            ("1.5K", "1500"),
            ("1k", "1000"),
            ("1,000", "1000"),
            ("12.5", "12.5"),
            ("2.50", "2.5"),
        ],
    )
    def test_readings(self, text, expected):
        assert str(normalise_quantity(text)) == expected

    @pytest.mark.parametrize("text", ["", "x", "lots", "0", "0x", "-5", "1x2", "abc", "250 btc"])
    def test_errors(self, text):
        with pytest.raises(DomainError) as info:
            normalise_quantity(text)
        assert info.value.field == "quantity"
