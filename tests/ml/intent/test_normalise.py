"""The normaliser on hand-tagged spans: values, legs, and every kind of clarification."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from ml.intent.labels import Intent, Tag
from ml.intent.normalise import TaggedSpan, normalise, read_expiry, read_ratio

AS_OF = date(2026, 11, 24)
THRESHOLD = 0.5


def tagged(markup: str, confidence: float = 1.0) -> list[TaggedSpan]:
    """Spans of a line written as ``"2-way <QTY:250x> <UND:BTC> ..."``."""
    spans = []
    text = ""
    for part in re.split(r"(<[A-Z_]+:[^>]+>)", markup):
        match = re.fullmatch(r"<([A-Z_]+):([^>]+)>", part)
        if match:
            spans.append(TaggedSpan(Tag(match[1]), match[2], len(text), confidence))
            part = match[2]
        text += part
    return spans


def plain(markup: str) -> str:
    """The line a markup stands for, without its tags."""
    return re.sub(r"<[A-Z_]+:([^>]+)>", r"\1", markup)


def rfq(markup: str, as_of: date = AS_OF, **kwargs: float) -> dict[str, Any]:
    return normalise(
        Intent.RFQ,
        kwargs.get("intent_confidence", 0.99),
        tagged(markup, kwargs.get("confidence", 0.99)),
        as_of,
        THRESHOLD,
        plain(markup),
    )


def fields(out: dict[str, Any]) -> list[str]:
    return [q["field"] for q in out.get("needs_clarification", [])]


class TestCompleteLines:
    def test_call_spread_with_hedge(self):
        out = rfq(
            "<TWO_WAY:2-way> <QTY:250x> <UND:BTC> <EXP:Dec> <STK:70>/<STK:80> <CS:CS> vs "
            "<HEDGE:64.5k>"
        )
        assert out == {
            "intent": "rfq",
            "rfq": {
                "underlying": "BTC",
                "structure": "call_spread",
                "side": "two_way",
                "quantity": 250,
                "legs": [
                    {
                        "expiry": "2026-12-25",
                        "strike": 70000,
                        "option_type": "call",
                        "ratio": 1,
                        "direction": "buy",
                    },
                    {
                        "expiry": "2026-12-25",
                        "strike": 80000,
                        "option_type": "call",
                        "ratio": 1,
                        "direction": "sell",
                    },
                ],
                "hedge_reference": 64500,
            },
        }

    def test_eth_shorthand_strikes_and_thousands_quantity(self):
        out = rfq(
            "<SELL:bid for> <QTY:1.5k> <UND:eth> <EXP:25DEC26> <STK:3.5>/<STK:3,080> <PUT:put> "
            "<SPREAD:spread> ref <HEDGE:3,080>"
        )
        body = out["rfq"]
        assert (body["structure"], body["side"], body["quantity"]) == ("put_spread", "sell", 1500)
        assert {(leg["strike"], leg["direction"]) for leg in body["legs"]} == {
            (3500, "buy"),
            (3080, "sell"),
        }
        assert body["hedge_reference"] == 3080

    def test_ratio_spread_takes_its_n(self):
        out = rfq(
            "<BUY:offer> <UND:BTC> <EXP:Jan> <RATIO:1x3> <STK:70>/<STK:85> <CALL:call> "
            "<SPREAD:spread> <QTY:x100>"
        )
        legs = out["rfq"]["legs"]
        assert out["rfq"]["structure"] == "call_ratio"
        assert {(leg["strike"], leg["ratio"], leg["direction"]) for leg in legs} == {
            (70000, 1, "buy"),
            (85000, 3, "sell"),
        }

    def test_calendar_orders_its_expiries(self):
        out = rfq(
            "<UND:BTC> <EXP:Mar>/<EXP:Dec> <STK:80k> <PUT:put> <CALENDAR:cal> <QTY:150> "
            "<BUY:buyers>"
        )
        legs = {(leg["expiry"], leg["direction"]) for leg in out["rfq"]["legs"]}
        assert out["rfq"]["structure"] == "put_calendar"
        assert legs == {("2026-12-25", "sell"), ("2027-03-26", "buy")}

    def test_condor_without_type_is_the_call_condor(self):
        out = rfq(
            "<UND:ETH> <EXP:Mar> <STK:2800>/<STK:3200>/<STK:3600>/<STK:4000> <CONDOR:condor> "
            "<QTY:250> <TWO_WAY:px>"
        )
        assert out["rfq"]["structure"] == "call_condor"
        assert "needs_clarification" not in out

    def test_no_side_cue_asks_for_a_market(self):
        out = rfq("<UND:BTC> <EXP:weekly> <STK:68k> <CALL:calls> <QTY:20>")
        assert out["rfq"]["side"] == "two_way"
        assert out["rfq"]["legs"][0]["expiry"] == "2026-11-27"

    def test_fractional_quantity_stays_a_float(self):
        out = rfq("<UND:BTC> <EXP:Dec> <STK:62.5k> <PUT:puts> <QTY:12.5> <SELL:bid>")
        assert out["rfq"]["quantity"] == 12.5
        assert out["rfq"]["legs"][0]["strike"] == 62500


class TestCustomLegs:
    def test_diagonal_is_custom_with_ratios_from_sizes(self):
        out = rfq(
            "<LEG_BUY:long> <QTY:50> <UND:BTC> <EXP:Jan> <STK:75k> <PUT:puts>, <LEG_SELL:short> "
            "<QTY:100> <EXP:Feb> <STK:65k> <PUT:puts>"
        )
        body = out["rfq"]
        assert (body["structure"], body["side"], body["quantity"]) == ("custom", "buy", 50)
        assert {(leg["strike"], leg["ratio"], leg["direction"]) for leg in body["legs"]} == {
            (75000, 1, "buy"),
            (65000, 2, "sell"),
        }

    def test_legs_forming_a_template_are_recognised_with_their_side(self):
        out = rfq(
            "<LEG_SELL:sell> <EXP:Dec> <STK:70k> <CALL:c> and <LEG_BUY:buy> <STK:80k> <CALL:c> "
            "<UND:btc> <QTY:25x> each"
        )
        body = out["rfq"]
        assert (body["structure"], body["side"], body["quantity"]) == ("call_spread", "sell", 25)
        assert {(leg["strike"], leg["direction"]) for leg in body["legs"]} == {
            (70000, "buy"),
            (80000, "sell"),
        }
        assert {leg["expiry"] for leg in body["legs"]} == {"2026-12-25"}

    def test_a_two_way_cue_asks_for_both_sides_of_the_stated_legs(self):
        out = rfq(
            "<TWO_WAY:2-way> on: <LEG_BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:70k> "
            "<CALL:calls> and <LEG_SELL:sell> <QTY:100> <UND:BTC> <EXP:Mar> <STK:90k> <CALL:calls>"
        )
        assert fields(out) == []
        body = out["rfq"]
        assert (body["structure"], body["side"]) == ("custom", "two_way")
        assert {(leg["strike"], leg["direction"]) for leg in body["legs"]} == {
            (70000, "buy"),
            (90000, "sell"),
        }

    def test_a_side_cue_against_the_stated_legs_is_asked(self):
        out = rfq(
            "<LEG_BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:70k> <CALL:calls> and "
            "<LEG_SELL:sell> <QTY:100> <EXP:Mar> <STK:90k> <CALL:calls>, <SELL:bid?>"
        )
        assert fields(out) == ["side"]
        assert out["rfq"]["side"] is None


class TestClarifications:
    @pytest.mark.parametrize(
        "cues", ["<BUY:buy> {line}, <SELL:bid?>", "<BUY:we're buyers of> {line}, <TWO_WAY:2-way>"]
    )
    def test_contradictory_side_cues_are_asked(self, cues):
        out = rfq(cues.format(line="<QTY:100> <UND:BTC> <EXP:Dec> <STK:70k> <CALL:calls>"))
        assert fields(out) == ["side"]
        assert out["needs_clarification"][0]["candidates"] == ["buy", "sell", "two_way"]

    def test_two_hedge_references_are_asked(self):
        out = rfq(
            "<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:70k> <CALL:calls> vs <HEDGE:64.5k> "
            "ref <HEDGE:65k>"
        )
        assert fields(out) == ["hedge_reference"]
        assert out["needs_clarification"][0]["candidates"] == [64500, 65000]
        assert out["rfq"]["hedge_reference"] is None

    def test_an_iron_condor_is_not_read_as_four_calls(self):
        out = rfq(
            "<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:50>/<STK:60>/<STK:80>/<STK:90> iron "
            "<CONDOR:condor>"
        )
        assert fields(out) == ["structure"]
        assert out["rfq"]["legs"] == []

    @pytest.mark.parametrize("structure", ["<STRANGLE:strangle>", "<RR:risk reversal>"])
    def test_a_put_stated_above_the_call_is_asked(self, structure):
        out = rfq(
            f"<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:80> <PUT:put> / <STK:60> "
            f"<CALL:call> {structure}"
        )
        assert fields(out) == ["strike"]
        assert out["needs_clarification"][0]["candidates"] == [60000, 80000]

    def test_a_put_stated_below_the_call_is_the_template(self):
        out = rfq(
            "<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <PUT:put> <STK:60> / <CALL:call> <STK:80> "
            "<STRANGLE:strangle>"
        )
        assert fields(out) == []
        assert {(leg["option_type"], leg["strike"]) for leg in out["rfq"]["legs"]} == {
            ("put", 60000),
            ("call", 80000),
        }

    def test_a_monday_is_asked_between_the_fridays_around_it(self):
        out = rfq("<BUY:buy> <QTY:100> <UND:BTC> <EXP:21DEC26> <STK:70k> <CALL:calls>")
        assert fields(out) == ["expiry"]
        assert out["needs_clarification"][0]["candidates"] == ["2026-12-18", "2026-12-25"]

    def test_missing_size_asks_in_contracts(self):
        out = rfq("<TWO_WAY:2-way> in <UND:BTC> <EXP:Dec> <STK:70k> <CALL:calls>")
        assert out["needs_clarification"] == [
            {"field": "quantity", "question": "What size, in BTC contracts?", "candidates": []}
        ]
        assert out["rfq"]["legs"][0]["strike"] == 70000

    def test_missing_expiry_keeps_the_rest(self):
        out = rfq("<BUY:buy> <QTY:100> <UND:BTC> <STK:60k>/<STK:80k> <CS:cs>")
        assert fields(out) == ["expiry"]
        assert [leg["expiry"] for leg in out["rfq"]["legs"]] == [None, None]

    def test_jan22_is_a_day_or_a_year(self):
        out = rfq("<SELL:sell> <QTY:200> <UND:BTC> <EXP:Jan22> <STK:60k> <PUT:puts>")
        assert out["needs_clarification"][0]["candidates"] == ["2027-01-22", "2022-01-28"]
        assert out["rfq"]["legs"][0]["expiry"] is None

    def test_day_or_year_expiry_offers_both(self):
        out = rfq(
            "<BUY:buy> <QTY:100> <UND:BTC> <EXP:Mar27> <STK:60k> <CALL:calls>",
            as_of=date(2026, 1, 5),
        )
        (question,) = out["needs_clarification"]
        assert question["field"] == "expiry"
        assert question["candidates"] == ["2027-03-26", "2026-03-27"]
        assert question["question"].endswith("?")

    def test_month_and_year_is_not_ambiguous_when_the_day_is_no_expiry(self):
        out = rfq("<BUY:buy> <QTY:100> <UND:BTC> <EXP:Mar27> <STK:60k> <CALL:calls>")
        assert "needs_clarification" not in out
        assert out["rfq"]["legs"][0]["expiry"] == "2027-03-26"

    def test_risk_reversal_without_direction(self):
        out = rfq("<QTY:100> <UND:BTC> <EXP:Dec> <STK:55>-<STK:75> <RR:risky>")
        assert fields(out) == ["side"]
        assert out["needs_clarification"][0]["candidates"] == ["buy", "sell", "two_way"]

    def test_risk_reversal_with_direction_is_complete(self):
        out = rfq("<SELL:client sells> <QTY:100> <UND:BTC> <EXP:Dec> <STK:55>-<STK:75> <RR:risky>")
        assert "needs_clarification" not in out
        assert out["rfq"]["side"] == "sell"

    def test_missing_underlying(self):
        out = rfq("<BUY:buy> <QTY:100> <EXP:Dec> <STK:70k> <CALL:calls>")
        assert fields(out) == ["underlying"]
        assert out["needs_clarification"][0]["candidates"] == ["BTC", "ETH"]

    def test_missing_option_type(self):
        out = rfq("<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:70>/<STK:75>/<STK:80> <FLY:fly>")
        assert fields(out) == ["option_type"]

    def test_wrong_strike_count(self):
        out = rfq("<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:70k> <STRANGLE:strangle>")
        assert fields(out) == ["strike"]

    def test_several_missing_fields(self):
        out = rfq("<TWO_WAY:px> <UND:BTC> <STK:70k> <CALL:calls>")
        assert fields(out) == ["quantity", "expiry"]

    def test_low_span_confidence_is_asked_back(self):
        out = rfq("<BUY:buy> <QTY:100> <UND:BTC> <EXP:Dec> <STK:70k> <CALL:calls>", confidence=0.3)
        assert "quantity" in fields(out)
        assert all(q["candidates"] for q in out["needs_clarification"])

    def test_low_intent_confidence_is_asked_back(self):
        out = normalise(Intent.DECLINE, 0.4, [], AS_OF, THRESHOLD)
        assert out["intent"] == "decline"
        assert fields(out) == ["intent"]


class TestFollowUps:
    @pytest.mark.parametrize(("tag", "side"), [(Tag.BUY, "buy"), (Tag.SELL, "sell")])
    def test_accept_side(self, tag, side):
        out = normalise(Intent.ACCEPT, 0.99, [TaggedSpan(tag, "x", 0)], AS_OF, THRESHOLD)
        assert out == {"intent": "accept", "side": side}

    def test_an_unsure_accept_side_is_not_used(self):
        spans = [TaggedSpan(Tag.SELL, "bought", 0, 0.2)]
        out = normalise(Intent.ACCEPT, 0.99, spans, AS_OF, THRESHOLD, "bought")
        assert out == {"intent": "accept", "side": None}

    @pytest.mark.parametrize(
        ("text", "asked"),
        [
            ("mine for 50", True),
            ("half mine", True),
            ("yours for half", True),
            ("lift 30", True),
            ("x50 mine", True),
            ("mine", False),
            ("mine at 0.0123", False),
            ("done @ 1250", False),
            ("sure, mine thx", False),
        ],
    )
    def test_an_accept_stating_a_size_is_asked(self, text, asked):
        out = normalise(
            Intent.ACCEPT, 0.99, [TaggedSpan(Tag.BUY, "mine", 0)], AS_OF, THRESHOLD, text
        )
        assert fields(out) == (["quantity"] if asked else [])
        assert out["side"] == "buy"

    def test_accept_without_side(self):
        assert normalise(Intent.ACCEPT, 0.99, [], AS_OF, THRESHOLD) == {
            "intent": "accept",
            "side": None,
        }

    @pytest.mark.parametrize("intent", [Intent.DECLINE, Intent.OTHER])
    def test_no_payload(self, intent):
        assert normalise(intent, 0.99, [], AS_OF, THRESHOLD) == {"intent": str(intent)}


@pytest.mark.parametrize(
    ("text", "n"),
    [("1x2", 2), ("1X3", 3), ("1:2", 2), ("1 by 3", 3), ("ratio", None), ("2x3", None)],
)
def test_read_ratio(text, n):
    assert read_ratio(text) == n


def test_read_expiry_keeps_only_listed_expiries():
    assert read_expiry("27MAR27", AS_OF) == [date(2027, 3, 26)]
    assert read_expiry("Mar27", AS_OF) == [date(2027, 3, 26)]
    assert read_expiry("Jan22", AS_OF) == [date(2027, 1, 22), date(2022, 1, 28)]
    assert read_expiry("weekly", AS_OF) == [date(2026, 11, 27)]
