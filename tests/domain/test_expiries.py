from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import (
    DomainError,
    expiry_candidates,
    expiry_datetime,
    format_expiry_code,
    last_friday,
    monthly_expiry,
    parse_expiry_code,
    weekly_expiry,
)
from app.domain.expiries import is_listed_expiry

AS_OF = date(2026, 11, 24)  # a Tuesday, the as_of of the NLP dev set
FRIDAY = 4
dates = st.dates(date(2000, 1, 1), date(2099, 12, 31))


def test_expiry_datetime_is_0800_utc():
    assert expiry_datetime(date(2026, 12, 25)) == datetime(2026, 12, 25, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2026, 12, date(2026, 12, 25)),
        (2027, 3, date(2027, 3, 26)),
        (2027, 12, date(2027, 12, 31)),  # the month ends on a Friday
        (2026, 2, date(2026, 2, 27)),
        (2028, 2, date(2028, 2, 25)),
    ],
)
def test_last_friday(year, month, expected):
    assert last_friday(year, month) == expected


class TestMonthlyExpiry:
    @pytest.mark.parametrize(
        ("month", "expected"),
        [
            (12, date(2026, 12, 25)),
            (1, date(2027, 1, 29)),
            (3, date(2027, 3, 26)),
            (11, date(2026, 11, 27)),  # this month's last Friday is still ahead
            (10, date(2027, 10, 29)),  # passed: rolls to next year
        ],
    )
    def test_nearest_on_or_after_as_of(self, month, expected):
        assert monthly_expiry(month, None, AS_OF) == expected

    def test_december_after_its_last_friday_rolls_to_next_year(self):
        assert monthly_expiry(12, None, date(2026, 12, 28)) == date(2027, 12, 31)

    def test_on_the_expiry_day_is_that_day(self):
        assert monthly_expiry(12, None, date(2026, 12, 25)) == date(2026, 12, 25)

    def test_explicit_year_is_taken_as_given(self):
        assert monthly_expiry(1, 2022, AS_OF) == date(2022, 1, 28)

    @given(as_of=dates.filter(lambda d: d.year < 2099), month=st.integers(1, 12))
    def test_is_the_next_last_friday(self, as_of, month):
        expiry = monthly_expiry(month, None, as_of)
        assert expiry == last_friday(expiry.year, month)
        # at most a year and a week away: the day after a month's last Friday (e.g. Saturday
        # 2000-08-26) waits for next year's, which can fall up to six days later in the month
        assert as_of <= expiry < as_of + timedelta(days=366 + 7)
        assert monthly_expiry(month, None, expiry) == expiry  # and it is the first one


class TestWeeklyExpiry:
    @pytest.mark.parametrize(
        ("as_of", "expected"),
        [
            (AS_OF, date(2026, 11, 27)),
            (date(2026, 11, 26), date(2026, 11, 27)),
            (date(2026, 11, 27), date(2026, 12, 4)),  # on a Friday: the next one
            (date(2026, 11, 28), date(2026, 12, 4)),
        ],
    )
    def test_next_friday_strictly_after(self, as_of, expected):
        assert weekly_expiry(as_of) == expected

    @given(as_of=dates)
    def test_is_a_friday_within_a_week(self, as_of):
        expiry = weekly_expiry(as_of)
        assert expiry.weekday() == FRIDAY
        assert 1 <= (expiry - as_of).days <= 7


class TestExpiryCode:
    @pytest.mark.parametrize(
        ("d", "code"),
        [
            (date(2026, 12, 25), "25DEC26"),
            (date(2026, 12, 4), "4DEC26"),
            (date(2030, 1, 1), "1JAN30"),
        ],
    )
    def test_format_and_parse(self, d, code):
        assert format_expiry_code(d) == code
        assert parse_expiry_code(code) == d

    def test_parse_accepts_a_leading_zero(self):
        assert parse_expiry_code("04DEC26") == date(2026, 12, 4)

    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            ("25DEC", "expiry must look like 25DEC26, got '25DEC'"),
            ("125DEC26", "expiry must look like 25DEC26"),
            ("25DXC26", "unknown month 'DXC'"),
            ("31FEB26", "day 31 is not in February 2026"),
            ("0DEC26", "day 0 is not in December 2026"),
        ],
    )
    def test_parse_errors(self, code, reason):
        with pytest.raises(DomainError, match=reason) as info:
            parse_expiry_code(code)
        assert info.value.field == "expiry"

    @given(d=dates)
    def test_round_trip(self, d):
        assert parse_expiry_code(format_expiry_code(d)) == d


class TestExpiryCandidates:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            # month alone: the nearest last Friday on or after as_of
            ("Dec", [date(2026, 12, 25)]),
            ("dec", [date(2026, 12, 25)]),
            ("December", [date(2026, 12, 25)]),
            ("Jan", [date(2027, 1, 29)]),
            ("Feb", [date(2027, 2, 26)]),
            ("sept", [date(2027, 9, 24)]),
            # weekly
            ("weekly", [date(2026, 11, 27)]),
            ("Weekly", [date(2026, 11, 27)]),
            # explicit dates, taken as given
            ("25DEC26", [date(2026, 12, 25)]),
            ("4DEC26", [date(2026, 12, 4)]),
            ("18DEC26", [date(2026, 12, 18)]),
            ("25dec2026", [date(2026, 12, 25)]),
            ("25 Dec 26", [date(2026, 12, 25)]),
            ("25-Dec-2026", [date(2026, 12, 25)]),
            ("Dec 25, 2026", [date(2026, 12, 25)]),
            ("2026-12-25", [date(2026, 12, 25)]),
            ("25DEC24", [date(2024, 12, 25)]),  # in the past: validation reports it
            ("28NOV26", [date(2026, 11, 28)]),  # a Saturday daily, days away
            # a far non-Friday is read first as its nearest Friday (dev set: 27MAR27, 26JUN27)
            ("27MAR27", [date(2027, 3, 26), date(2027, 3, 27)]),
            ("26JUN27", [date(2027, 6, 25), date(2027, 6, 26)]),
            ("2027-03-29", [date(2027, 3, 26), date(2027, 4, 2), date(2027, 3, 29)]),  # a Monday
            # month and four-digit year
            ("Dec 2027", [date(2027, 12, 31)]),
            # day and month: on or after as_of
            ("25 Dec", [date(2026, 12, 25)]),
            ("25th Dec", [date(2026, 12, 25)]),
            ("20 Nov", [date(2027, 11, 19), date(2027, 11, 20)]),
            # month and a two-digit number: monthly of 20NN or day NN
            ("Mar27", [date(2027, 3, 26), date(2027, 3, 27)]),
            ("MAR27", [date(2027, 3, 26), date(2027, 3, 27)]),
            ("Dec26", [date(2026, 12, 25), date(2026, 12, 26)]),
            ("Dec 25", [date(2026, 12, 25), date(2025, 12, 26)]),  # Dec 2025 has expired
            ("Jan22", [date(2027, 1, 22), date(2022, 1, 28)]),  # Jan 2022 has expired
            ("Feb30", [date(2030, 2, 22)]),  # no 30 Feb: only the (far) monthly
        ],
    )
    def test_readings(self, text, expected):
        assert expiry_candidates(text, AS_OF) == expected

    def test_month_alone_after_its_expiry_rolls(self):
        assert expiry_candidates("Dec", date(2026, 12, 28)) == [date(2027, 12, 31)]

    def test_weekly_on_a_friday(self):
        assert expiry_candidates("weekly", date(2026, 11, 27)) == [date(2026, 12, 4)]

    @pytest.mark.parametrize(
        "text", ["", "foo", "Dec/Mar", "70k", "25/12/2026", "2026-13-01", "31FEB26", "Dec 123"]
    )
    def test_unparseable(self, text):
        assert expiry_candidates(text, AS_OF) == []

    @settings(max_examples=200)
    @given(
        d=st.dates(date(2020, 1, 1), date(2090, 12, 31)),
        as_of=st.dates(date(2020, 1, 1), date(2095, 12, 31)),
    )
    def test_code_reads_as_its_date(self, d, as_of):
        readings = expiry_candidates(format_expiry_code(d), as_of)
        assert d in readings
        if d.weekday() == FRIDAY:
            assert readings == [d]


@pytest.mark.parametrize(
    ("expiry", "listed"),
    [
        (date(2027, 3, 26), True),  # a Friday, however far
        (date(2027, 3, 27), False),  # the Saturday after it
        (date(2026, 12, 8), True),  # a Tuesday within the dailies' week
        (date(2026, 12, 12), True),  # the 7th day: still a daily
        (date(2026, 12, 13), False),  # the 8th: only Fridays from here
        (date(2026, 12, 4), True),  # a past Friday is a Friday (expiry is checked apart)
        (date(2026, 12, 3), False),  # a past Thursday is no daily
    ],
)
def test_is_listed_expiry(expiry: date, listed: bool) -> None:
    assert is_listed_expiry(expiry, date(2026, 12, 5)) is listed
