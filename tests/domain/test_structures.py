from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import (
    DEFAULT_RATIO,
    Direction,
    DomainError,
    Instrument,
    Leg,
    OptionType,
    Recognised,
    Structure,
    StructureShape,
    build_legs,
    recognise,
    structure_shape,
)

S = Structure
K = (Decimal(60000), Decimal(70000), Decimal(80000), Decimal(90000))
T = (date(2026, 12, 25), date(2027, 3, 26))
TEMPLATED = [s for s in Structure if s is not Structure.CUSTOM]

# The DESIGN.md table, transcribed literally: "sign ratio type strike [expiry]".
DESIGN_TABLE = {
    S.CALL: ["+1 C K1"],
    S.PUT: ["+1 P K1"],
    S.CALL_SPREAD: ["+1 C K1", "-1 C K2"],
    S.PUT_SPREAD: ["+1 P K2", "-1 P K1"],
    S.STRADDLE: ["+1 C K1", "+1 P K1"],
    S.STRANGLE: ["+1 P K1", "+1 C K2"],
    S.RISK_REVERSAL: ["+1 C K2", "-1 P K1"],
    S.CALL_BUTTERFLY: ["+1 C K1", "-2 C K2", "+1 C K3"],
    S.PUT_BUTTERFLY: ["+1 P K1", "-2 P K2", "+1 P K3"],
    S.CALL_CONDOR: ["+1 C K1", "-1 C K2", "-1 C K3", "+1 C K4"],
    S.CALL_CALENDAR: ["-1 C K1 T1", "+1 C K1 T2"],
    S.PUT_CALENDAR: ["-1 P K1 T1", "+1 P K1 T2"],
    S.CALL_RATIO: ["+1 C K1", "-N C K2"],
    S.PUT_RATIO: ["+1 P K2", "-N P K1"],
}
SHAPES = {  # strikes, expiries, has a ratio
    S.CALL: (1, 1, False),
    S.PUT: (1, 1, False),
    S.CALL_SPREAD: (2, 1, False),
    S.PUT_SPREAD: (2, 1, False),
    S.STRADDLE: (1, 1, False),
    S.STRANGLE: (2, 1, False),
    S.RISK_REVERSAL: (2, 1, False),
    S.CALL_BUTTERFLY: (3, 1, False),
    S.PUT_BUTTERFLY: (3, 1, False),
    S.CALL_CONDOR: (4, 1, False),
    S.CALL_CALENDAR: (1, 2, False),
    S.PUT_CALENDAR: (1, 2, False),
    S.CALL_RATIO: (2, 1, True),
    S.PUT_RATIO: (2, 1, True),
}


def expected_legs(structure: Structure, n: int) -> tuple[Leg, ...]:
    legs = []
    for spec in DESIGN_TABLE[structure]:
        signed, type_code, strike, *expiry = spec.split()
        ratio = n if signed[1:] == "N" else int(signed[1:])
        instrument = Instrument(
            "BTC",
            T[int(expiry[0][1]) - 1] if expiry else T[0],
            K[int(strike[1]) - 1],
            OptionType.CALL if type_code == "C" else OptionType.PUT,
        )
        legs.append(Leg(instrument, ratio, Direction.BUY if signed[0] == "+" else Direction.SELL))
    return tuple(legs)


def terms(structure: Structure) -> tuple[list[Decimal], list[date]]:
    strikes, expiries, _ = SHAPES[structure]
    return list(K[:strikes]), list(T[:expiries])


def test_every_templated_structure_is_in_the_table():
    assert set(DESIGN_TABLE) == set(TEMPLATED) == set(SHAPES)


@pytest.mark.parametrize("structure", TEMPLATED)
def test_shape(structure):
    assert structure_shape(structure) == StructureShape(*SHAPES[structure])


class TestBuildLegs:
    @pytest.mark.parametrize("structure", TEMPLATED)
    def test_legs_match_the_design_table(self, structure):
        strikes, expiries = terms(structure)
        assert build_legs("BTC", structure, strikes, expiries) == expected_legs(
            structure, DEFAULT_RATIO
        )

    @pytest.mark.parametrize("structure", [S.CALL_RATIO, S.PUT_RATIO])
    def test_ratio_n(self, structure):
        strikes, expiries = terms(structure)
        assert build_legs("BTC", structure, strikes, expiries, ratio=3) == expected_legs(
            structure, 3
        )

    def test_decreasing_strikes(self):
        with pytest.raises(DomainError) as info:
            build_legs("BTC", S.CALL_SPREAD, [Decimal(80000), Decimal(70000)], [T[0]])
        assert info.value.field == "strikes"
        assert info.value.reason == (
            "strikes must be strictly increasing for a call_spread, got 80000, 70000"
        )

    @pytest.mark.parametrize(
        "strikes", [[K[0], K[0]], [K[0], K[2], K[1]], [K[0], K[1], K[1], K[2]]]
    )
    def test_strikes_not_strictly_increasing(self, strikes):
        structure = {2: S.STRANGLE, 3: S.PUT_BUTTERFLY, 4: S.CALL_CONDOR}[len(strikes)]
        with pytest.raises(DomainError, match="strictly increasing") as info:
            build_legs("BTC", structure, strikes, [T[0]])
        assert info.value.field == "strikes"

    @pytest.mark.parametrize(
        ("structure", "strikes", "reason"),
        [
            (S.CALL, [], "a call needs 1 strike, got 0"),
            (S.STRADDLE, K[:2], "a straddle needs 1 strike, got 2: 60000, 70000"),
            (S.CALL_SPREAD, K[:1], "a call_spread needs 2 strikes, got 1: 60000"),
            (S.CALL_BUTTERFLY, K[:4], "a call_butterfly needs 3 strikes, got 4"),
            (S.CALL_CONDOR, K[:3], "a call_condor needs 4 strikes, got 3"),
        ],
    )
    def test_wrong_number_of_strikes(self, structure, strikes, reason):
        with pytest.raises(DomainError, match=reason) as info:
            build_legs("BTC", structure, strikes, [T[0]])
        assert info.value.field == "strikes"

    @pytest.mark.parametrize(
        ("structure", "expiries", "reason"),
        [
            (S.CALL_SPREAD, T, "a call_spread needs 1 expiry, got 2"),
            (S.CALL, [], "a call needs 1 expiry, got 0"),
            (S.CALL_CALENDAR, T[:1], "a call_calendar needs 2 expiries, got 1: 2026-12-25"),
            (
                S.PUT_CALENDAR,
                T[::-1],
                "expiries must be strictly increasing for a put_calendar,"
                " got 2027-03-26, 2026-12-25",
            ),
            (S.CALL_CALENDAR, [T[0], T[0]], "strictly increasing"),
        ],
    )
    def test_wrong_expiries(self, structure, expiries, reason):
        strikes = K[: SHAPES[structure][0]]
        with pytest.raises(DomainError, match=reason) as info:
            build_legs("BTC", structure, strikes, expiries)
        assert info.value.field == "expiries"

    @pytest.mark.parametrize(
        ("structure", "ratio", "reason"),
        [
            (S.CALL_RATIO, 1, "the ratio N of a 1xN call_ratio must be at least 2, got 1"),
            (S.PUT_RATIO, 0, "must be at least 2, got 0"),
            (S.CALL_SPREAD, 2, "a call_spread takes no ratio, got 2"),
            (S.CALL_BUTTERFLY, 1, "a call_butterfly takes no ratio"),
        ],
    )
    def test_ratio_errors(self, structure, ratio, reason):
        strikes, expiries = terms(structure)
        with pytest.raises(DomainError, match=reason) as info:
            build_legs("BTC", structure, strikes, expiries, ratio)
        assert info.value.field == "ratio"

    def test_custom_has_no_template(self):
        with pytest.raises(DomainError, match="custom structure has no template") as info:
            build_legs("BTC", S.CUSTOM, K[:1], T[:1])
        assert info.value.field == "structure"
        with pytest.raises(DomainError):
            structure_shape(S.CUSTOM)


def recognised(structure: Structure, orientation: Direction = Direction.BUY) -> Recognised:
    strikes, expiries = terms(structure)
    ratio = DEFAULT_RATIO if SHAPES[structure][2] else None
    return Recognised(structure, orientation, tuple(strikes), tuple(expiries), ratio)


def call_leg(strike: Decimal, ratio: int, direction: Direction, expiry: date = T[0]) -> Leg:
    return Leg(Instrument("BTC", expiry, strike, OptionType.CALL), ratio, direction)


class TestRecognise:
    @pytest.mark.parametrize("structure", TEMPLATED)
    def test_buyer_legs(self, structure):
        legs = build_legs("BTC", structure, *terms(structure))
        assert recognise(legs) == recognised(structure)

    @pytest.mark.parametrize("structure", TEMPLATED)
    def test_flipped_and_reversed_legs(self, structure):
        legs = build_legs("BTC", structure, *terms(structure))
        flipped = [leg.flipped() for leg in reversed(legs)]
        assert recognise(flipped) == recognised(structure, Direction.SELL)

    def test_dev_set_ratio_spread(self):
        legs = build_legs("BTC", S.CALL_RATIO, [K[1], Decimal(85000)], T[:1])
        assert recognise(legs).structure is S.CALL_RATIO
        assert recognise(legs).ratio == 2

    def test_one_sold_call_is_a_call_sold(self):
        legs = [Leg(Instrument("BTC", T[0], K[0], OptionType.CALL), 1, Direction.SELL)]
        assert recognise(legs) == recognised(S.CALL, Direction.SELL)

    @pytest.mark.parametrize(
        "legs",
        [
            pytest.param([], id="no legs"),
            pytest.param(
                [(K[0], 2, Direction.BUY), (K[1], 2, Direction.SELL)], id="scaled call spread"
            ),
            pytest.param(
                [(K[0], 2, Direction.BUY), (K[1], 4, Direction.SELL)], id="scaled 1x2 ratio"
            ),
            pytest.param([(K[0], 2, Direction.BUY), (K[1], 3, Direction.SELL)], id="2x3 ratio"),
            pytest.param([(K[0], 1, Direction.BUY), (K[1], 1, Direction.BUY)], id="two long calls"),
            pytest.param([(K[0], 1, Direction.BUY), (K[0], 1, Direction.BUY)], id="duplicate leg"),
            pytest.param(
                [(K[0], 1, Direction.BUY), (K[1], 1, Direction.BUY), (K[2], 1, Direction.BUY)],
                id="three long calls",
            ),
            pytest.param(
                [(K[0], 1, Direction.BUY), (K[1], 1, Direction.SELL), (K[2], 1, Direction.BUY)],
                id="broken fly",
            ),
            pytest.param([(K[0], 0, Direction.BUY)], id="zero ratio"),
        ],
    )
    def test_custom(self, legs):
        built = [call_leg(*leg) for leg in legs]
        result = recognise(built)
        assert result.structure is S.CUSTOM
        assert result.orientation is Direction.BUY
        assert result.ratio is None
        assert result.strikes == tuple(sorted({leg.instrument.strike for leg in built}))

    def test_custom_diagonal_and_mixed_underlyings(self):
        diagonal = [call_leg(K[1], 1, Direction.BUY), call_leg(K[3], 1, Direction.SELL, T[1])]
        assert recognise(diagonal) == Recognised(S.CUSTOM, Direction.BUY, (K[1], K[3]), T, None)
        eth = Leg(Instrument("ETH", T[0], K[1], OptionType.CALL), 1, Direction.SELL)
        assert recognise([call_leg(K[0], 1, Direction.BUY), eth]).structure is S.CUSTOM

    def test_calendar_with_two_strikes_is_custom(self):
        legs = [call_leg(K[0], 1, Direction.SELL), call_leg(K[1], 1, Direction.BUY, T[1])]
        assert recognise(legs).structure is S.CUSTOM


@st.composite
def packages(draw):
    structure = draw(st.sampled_from(TEMPLATED))
    n_strikes, n_expiries, has_ratio = SHAPES[structure]
    strikes = sorted(
        Decimal(k) * 500
        for k in draw(st.sets(st.integers(1, 400), min_size=n_strikes, max_size=n_strikes))
    )
    expiries = sorted(
        draw(
            st.sets(
                st.dates(date(2026, 1, 1), date(2028, 12, 31)),
                min_size=n_expiries,
                max_size=n_expiries,
            )
        )
    )
    ratio = draw(st.integers(2, 5)) if has_ratio else None
    underlying = draw(st.sampled_from(["BTC", "ETH"]))
    return underlying, structure, strikes, expiries, ratio


@given(package=packages(), data=st.data())
def test_recognise_round_trip(package, data):
    underlying, structure, strikes, expiries, ratio = package
    legs = build_legs(underlying, structure, strikes, expiries, ratio)
    expected = Recognised(structure, Direction.BUY, tuple(strikes), tuple(expiries), ratio)
    assert recognise(data.draw(st.permutations(legs))) == expected
    flipped = [leg.flipped() for leg in data.draw(st.permutations(legs))]
    assert recognise(flipped) == Recognised(
        structure, Direction.SELL, tuple(strikes), tuple(expiries), ratio
    )


def test_direction():
    assert (Direction.BUY.sign, Direction.SELL.sign) == (1, -1)
    assert (Direction.BUY.opposite, Direction.SELL.opposite) == (Direction.SELL, Direction.BUY)
