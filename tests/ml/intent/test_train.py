"""Training smoke test and the command line."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from ml.intent.cli import app
from ml.intent.labels import Intent
from ml.intent.model import MANIFEST, IntentParser
from ml.intent.train import TrainConfig, train

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    config = TrainConfig(layers=1, batch_size=8, max_steps=1, heldout_examples=8, vocab_keep=2000)
    return train(
        tmp_path_factory.mktemp("intent"),
        n_examples=32,
        seed=5,
        epochs=1,
        config=config,
        dev_path=None,
    )


def test_one_step_writes_a_loadable_artifact(tiny_artifact):
    manifest = json.loads((tiny_artifact / MANIFEST).read_text())
    assert manifest["training"]["steps"] == 1
    assert manifest["files"]
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    assert {"heldout_synthetic"} <= manifest["metrics"].keys()
    assert manifest["intents"] == [str(i) for i in Intent]
    parser = IntentParser.load(tiny_artifact)
    assert parser.version == tiny_artifact.name
    assert parser.parse("px 100 btc dec 70k calls", date(2026, 11, 24))["intent"] in {
        str(i) for i in Intent
    }


def test_cli_parse_reads_plain_and_json_lines(tiny_artifact):
    stdin = 'mine\n{"text": "pass", "as_of": "2026-11-24"}\n'
    result = runner.invoke(
        app, ["parse", "--model", str(tiny_artifact), "--as-of", "2026-11-24"], input=stdin
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    assert all(line["intent"] in {str(i) for i in Intent} for line in lines)


def test_cli_evaluate_prints_the_tables(tiny_artifact, tmp_path):
    data = tmp_path / "lines.jsonl"
    data.write_text(
        json.dumps({"text": "thanks a lot", "as_of": "2026-11-24", "expected": {"intent": "other"}})
        + "\n"
    )
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--model", str(tiny_artifact)])
    assert result.exit_code == 0, result.output
    assert "exact_match" in result.output
    assert "intent confusion" in result.output
