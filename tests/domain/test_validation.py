from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from app.domain import (
    Direction,
    DomainError,
    Instrument,
    Leg,
    OptionType,
    RfqLimits,
    Structure,
    build_legs,
    validate_package,
)

AS_OF = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
UTC8 = timezone(timedelta(hours=8))
DEC = date(2026, 12, 25)
LIMITS = RfqLimits()
D = Decimal


def leg(
    strike: int = 70000,
    ratio: Any = 1,
    direction: Direction = Direction.BUY,
    expiry: date = DEC,
    underlying: str = "BTC",
) -> Leg:
    return Leg(Instrument(underlying, expiry, D(strike), OptionType.CALL), ratio, direction)


CALL_SPREAD = build_legs("BTC", Structure.CALL_SPREAD, [D(70000), D(80000)], [DEC])


def error_of(
    underlying: str = "BTC",
    legs: Sequence[Leg] = CALL_SPREAD,
    quantity: Decimal = D(25),
    as_of: datetime = AS_OF,
    limits: RfqLimits = LIMITS,
) -> DomainError:
    with pytest.raises(DomainError) as info:
        validate_package(underlying, legs, quantity, as_of, limits)
    return info.value


class TestValid:
    @pytest.mark.parametrize("quantity", [D(25), D("25.0"), D("1000.5")])
    def test_call_spread(self, quantity):
        validate_package("BTC", CALL_SPREAD, quantity, AS_OF, LIMITS)

    def test_ratio_counts_toward_the_minimum_block(self):
        legs = build_legs("BTC", Structure.CALL_RATIO, [D(70000), D(85000)], [DEC])
        validate_package("BTC", legs, D("12.5"), AS_OF, LIMITS)  # the 2x leg is 25 contracts

    def test_just_before_expiry(self):
        validate_package(
            "BTC", CALL_SPREAD, D(25), datetime(2026, 12, 25, 7, 59, 59, tzinfo=UTC), LIMITS
        )

    def test_as_of_in_another_timezone(self):
        validate_package(
            "BTC", CALL_SPREAD, D(25), datetime(2026, 12, 25, 15, 59, tzinfo=UTC8), LIMITS
        )

    def test_maximum_number_of_legs(self):
        legs = [leg(60000 + 1000 * i) for i in range(LIMITS.max_legs)]
        validate_package("BTC", legs, D(25), AS_OF, LIMITS)

    def test_underlying_without_minimum_block(self):
        limits = RfqLimits(underlyings=frozenset({"BTC", "SOL"}))
        validate_package("SOL", [leg(200, underlying="SOL")], D(1), AS_OF, limits)


class TestErrors:
    def test_unknown_underlying(self):
        error = error_of(underlying="DOGE")
        assert (error.field, error.code) == ("underlying", "invalid_rfq")
        assert error.reason == "unknown underlying 'DOGE'; known: BTC, ETH"

    @pytest.mark.parametrize("count", [0, 21])
    def test_number_of_legs(self, count):
        error = error_of(legs=[leg(60000 + 1000 * i) for i in range(count)])
        assert error.field == "legs"
        assert error.reason == f"a package has 1 to 20 legs, got {count}"

    def test_leg_on_another_underlying(self):
        error = error_of(legs=[CALL_SPREAD[0], leg(3000, underlying="ETH")])
        assert error.field == "legs[1].instrument"
        assert error.reason == "ETH-25DEC26-3000-C is on ETH, not on the RFQ's BTC"

    @pytest.mark.parametrize("ratio", [0, -1, True, 1.5])
    def test_bad_ratio(self, ratio):
        error = error_of(legs=[leg(60000), leg(70000), leg(80000, ratio=ratio)])
        assert error.field == "legs[2].ratio"
        assert error.reason == f"ratio must be an integer >= 1, got {ratio!r}"

    @pytest.mark.parametrize(
        "as_of", [datetime(2026, 12, 25, 8, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)]
    )
    def test_expired(self, as_of):
        error = error_of(as_of=as_of)
        assert error.field == "legs[0].instrument"
        assert error.reason == "BTC-25DEC26-70000-C expired at 2026-12-25T08:00:00+00:00"

    def test_expired_as_of_in_another_timezone(self):
        error = error_of(as_of=datetime(2026, 12, 25, 16, tzinfo=UTC8))
        assert error.field == "legs[0].instrument"

    def test_expired_later_leg(self):
        error = error_of(legs=[leg(expiry=date(2027, 3, 26)), leg(expiry=date(2026, 11, 20))])
        assert error.field == "legs[1].instrument"
        assert "BTC-20NOV26-70000-C expired at 2026-11-20T08:00:00+00:00" in error.reason

    def test_duplicate_instrument(self):
        error = error_of(legs=[leg(60000), leg(70000), leg(60000, direction=Direction.SELL)])
        assert error.field == "legs[2].instrument"
        assert error.reason == "BTC-25DEC26-60000-C is already legs[0]"

    @pytest.mark.parametrize("quantity", [D(0), D(-25), D("NaN"), D("Infinity")])
    def test_quantity_not_positive(self, quantity):
        error = error_of(quantity=quantity)
        assert error.field == "quantity"
        assert error.reason == f"quantity must be positive, got {quantity}"

    def test_quantity_off_step(self):
        error = error_of(quantity=D("25.05"))
        assert error.field == "quantity"
        assert error.reason == "quantity must be a multiple of 0.1, got 25.05"

    @pytest.mark.parametrize(
        ("underlying", "legs", "quantity", "minimum"),
        [
            ("BTC", CALL_SPREAD, D("24.9"), "25 BTC"),
            ("ETH", [leg(3000, underlying="ETH")], D(249), "250 ETH"),
        ],
    )
    def test_below_minimum_block(self, underlying, legs, quantity, minimum):
        error = error_of(underlying=underlying, legs=legs, quantity=quantity)
        assert error.field == "quantity"
        assert error.reason == (
            f"largest leg of {quantity} contracts is below the minimum block size of"
            f" {minimum} contracts"
        )

    def test_custom_limits(self):
        limits = RfqLimits(max_legs=2, quantity_step=D(1), min_block={"BTC": D(100)})
        assert error_of(quantity=D("25.5"), limits=limits).reason.startswith(
            "quantity must be a multiple of 1,"
        )
        assert "minimum block size of 100 BTC" in error_of(quantity=D(99), limits=limits).reason
        assert error_of(legs=[leg(1), leg(2), leg(3)], limits=limits).field == "legs"

    def test_naive_as_of_is_a_programming_error(self):
        with pytest.raises(ValueError, match="timezone-aware") as info:
            validate_package("BTC", CALL_SPREAD, D(25), AS_OF.replace(tzinfo=None), LIMITS)
        assert not isinstance(info.value, DomainError)

    def test_checks_in_order(self):
        error = error_of(underlying="DOGE", legs=[], quantity=D(0))
        assert error.field == "underlying"
        assert error_of(legs=[], quantity=D(0)).field == "legs"
