"""The committed intent model: dev-set quality, output shape, artifact integrity."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from ml.intent.evaluate import score
from ml.intent.model import MANIFEST, ArtifactMismatch, IntentParser, latest_artifact

DEV = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "nlp_dev.jsonl"
AS_OF = date(2026, 11, 24)


@pytest.fixture(scope="session")
def parser() -> IntentParser:
    return IntentParser.load(latest_artifact())


def test_dev_set_exact_match(parser):
    items = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    outputs = parser.parse_batch([(i["text"], date.fromisoformat(i["as_of"])) for i in items])
    report = score(zip(outputs, (i["expected"] for i in items), strict=True))
    assert report.metrics()["exact_match"] >= 0.95
    assert report.metrics()["intent_accuracy"] >= 0.95


def test_output_is_plain_canonical_json(parser):
    out = parser.parse("hi, 2-way in 250x BTC 25DEC26 70/80 call spread vs 64.5k please", AS_OF)
    assert json.loads(json.dumps(out)) == out
    assert out["intent"] == "rfq"
    assert set(out["rfq"]) == {
        "underlying",
        "structure",
        "side",
        "quantity",
        "legs",
        "hedge_reference",
    }
    assert out["rfq"]["quantity"] == 250
    assert isinstance(out["rfq"]["quantity"], int)
    assert {type(leg["strike"]) for leg in out["rfq"]["legs"]} == {int}
    assert {leg["expiry"] for leg in out["rfq"]["legs"]} == {"2026-12-25"}
    assert out["rfq"]["hedge_reference"] == 64500


@pytest.mark.parametrize(
    ("text", "side"),
    [
        ("we bid 100 BTC Dec 70k calls", "buy"),  # the client bids: it buys
        ("we offer 100 BTC Dec 70k calls", "sell"),
        ("bid for 100 BTC Dec 70k calls", "sell"),  # asks the desk for a bid: it sells
        ("we're bidding for 50 ETH Mar 3000 puts", "buy"),
    ],
)
def test_who_bids_and_who_offers(parser, text, side):
    assert parser.parse(text, AS_OF)["rfq"]["side"] == side


@pytest.mark.parametrize(("text", "side"), [("bought", "buy"), ("sold", "sell"), ("mine", "buy")])
def test_an_accept_in_the_past_tense_is_the_clients_side(parser, text, side):
    assert parser.parse(text, AS_OF) == {"intent": "accept", "side": side}


def test_a_line_reads_the_same_alone_or_in_a_batch(parser):
    """Scored as served: int8 activation scales are taken per input, so a batch (padding and
    neighbours included) would read a line otherwise than the service does."""
    lines = [
        ("send it", AS_OF),
        ("2-way in 100x BTC Dec 70/80 call spread vs 64.5k please, and the Mar 90k calls", AS_OF),
    ]
    assert parser.parse_batch(lines) == [parser.parse(text, as_of) for text, as_of in lines]
    texts = [text for text, _ in lines]
    alone = [parser.predict([text])[0] for text in texts]
    assert parser.predict(texts) == alone  # the same probabilities, to the bit


def test_a_line_without_size_gets_a_question(parser):
    out = parser.parse("can you show me ETH Mar 3000 puts", AS_OF)
    assert out["intent"] == "rfq"
    assert [q["field"] for q in out["needs_clarification"]] == ["quantity"]
    assert out["needs_clarification"][0]["question"] == "What size, in ETH contracts?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mine, cheers", {"intent": "accept", "side": "buy"}),
        ("ok yours", {"intent": "accept", "side": "sell"}),
        ("we pass on this one", {"intent": "decline"}),
        ("how was your weekend?", {"intent": "other"}),
    ],
)
def test_follow_ups(parser, text, expected):
    assert parser.parse(text, AS_OF) == expected


def test_batch_equals_one_by_one(parser):
    lines = ["px 40 btc weekly 62k puts", "yours", "client sells 1.5k ETH Mar27 3.5k/3k put spread"]
    assert parser.parse_batch([(t, AS_OF) for t in lines]) == [
        parser.parse(t, AS_OF) for t in lines
    ]
    assert parser.parse_batch([]) == []


def test_version_is_the_manifest_version(parser):
    manifest = json.loads((latest_artifact() / MANIFEST).read_text())
    assert parser.version == manifest["version"] == latest_artifact().name
    assert manifest["metrics"]["dev"]["exact_match"] >= 0.95


def test_a_tampered_artifact_is_refused(tmp_path):
    copy = tmp_path / "artifact"
    shutil.copytree(latest_artifact(), copy)
    config = copy / "hf" / "config.json"
    config.write_text(config.read_text().replace('"hidden_act"', '"hidden_act" ', 1))
    with pytest.raises(ArtifactMismatch):
        IntentParser.load(copy)
