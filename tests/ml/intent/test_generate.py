"""The synthetic chat generator: valid labels, coverage, and no leak of the dev set."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.domain.enums import Direction, OptionType, Side, Structure
from app.domain.instruments import Instrument
from app.domain.structures import Leg, build_legs, recognise
from ml.intent.evaluate import matches
from ml.intent.generate import Example, generate
from ml.intent.labels import Intent, Tag
from ml.intent.normalise import TaggedSpan, normalise

DEV = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nlp_dev.jsonl"


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return generate(5000, seed=11)


def _legs(rfq: dict[str, Any]) -> list[Leg]:
    return [
        Leg(
            Instrument(
                rfq["underlying"],
                date.fromisoformat(leg["expiry"]),
                Decimal(str(leg["strike"])),
                OptionType(leg["option_type"]),
            ),
            leg["ratio"],
            Direction(leg["direction"]),
        )
        for leg in rfq["legs"]
    ]


def test_same_seed_same_lines():
    assert [e.to_json() for e in generate(200, 3)] == [e.to_json() for e in generate(200, 3)]
    assert [e.text for e in generate(50, 3)] != [e.text for e in generate(50, 4)]


def test_expected_rfqs_round_trip_through_the_domain(examples):
    complete = [e.expected["rfq"] for e in examples if "rfq" in e.expected]
    assert len(complete) > 2000
    for rfq in complete:
        legs = _legs(rfq)
        found = recognise(legs)
        assert str(found.structure) == rfq["structure"]
        assert found.orientation is Direction.BUY  # legs are written for the buyer
        if found.structure is Structure.CUSTOM:
            assert rfq["side"] == "buy"
            continue
        rebuilt = build_legs(
            rfq["underlying"], found.structure, found.strikes, found.expiries, found.ratio
        )
        assert Counter(rebuilt) == Counter(legs)
        assert rfq["side"] in {str(s) for s in Side}
        assert rfq["quantity"] > 0


def test_spans_lie_inside_the_text_without_overlap(examples):
    for e in examples:
        ends = -1
        for span in e.spans:
            assert 0 <= span.start < span.end <= len(e.text)
            assert span.start >= ends
            assert e.text[span.start : span.end].strip() == e.text[span.start : span.end]
            ends = span.end


def test_gold_spans_normalise_to_the_expected_output(examples):
    """The labels and the normaliser agree: a perfect tagger would score 100%."""
    for e in examples:
        spans = [TaggedSpan(s.tag, e.text[s.start : s.end], s.start) for s in e.spans]
        assert matches(normalise(e.intent, 1.0, spans, e.as_of, 0.5), e.expected), e.text


def test_coverage(examples):
    structures = Counter(e.expected["rfq"]["structure"] for e in examples if "rfq" in e.expected)
    assert set(structures) == {str(s) for s in Structure}
    assert Counter(e.intent for e in examples).keys() == set(Intent)
    assert {s.tag for e in examples for s in e.spans} == set(Tag)
    underlyings = Counter(e.expected["rfq"]["underlying"] for e in examples if "rfq" in e.expected)
    assert underlyings.keys() == {"BTC", "ETH"}
    asked = Counter(q["field"] for e in examples for q in e.expected.get("needs_clarification", []))
    assert asked.keys() >= {"quantity", "expiry", "side", "underlying", "option_type", "strike"}
    years = Counter(e.as_of.year for e in examples)
    assert years.keys() == {2026, 2027}


def test_phrasings_vary(examples):
    rfqs = [e.text.lower() for e in examples if e.intent is Intent.RFQ]
    assert len(set(rfqs)) > 0.99 * len(rfqs)
    texts = [e.text.lower() for e in examples]
    aliases = (
        "c/s", " ps", " rr", "risky", "strad", "strangle", "fly", "condor", " cal", "1x2", "1x3",
        "x250", "lots", "weekly", "-c", "2-way", "px", "offer?", "client sells", "we're buyers",
        "vs ", "ref ", "delta hedged vs", "live",
    )  # fmt: skip
    for alias in aliases:
        assert any(alias in t for t in texts), alias


def test_no_dev_line_is_generated():
    dev = {
        json.loads(line)["text"].strip().lower()
        for line in DEV.read_text().splitlines()
        if line.strip()
    }
    generated = {e.text.strip().lower() for e in generate(20_000, seed=0)}
    assert not dev & generated
