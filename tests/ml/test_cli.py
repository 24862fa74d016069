from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from ml.cli import export_app, models_app, sim_app, train_app


def root() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(sim_app, name="sim")
    app.add_typer(train_app, name="train")
    app.add_typer(models_app, name="models")
    app.add_typer(export_app, name="export")
    return app


def test_sim_export_train_promote_evaluate_predict(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'sim.db'}"
    run = CliRunner().invoke
    app = root()

    def ok(*args: str) -> str:
        res = run(app, list(args))
        assert res.exit_code == 0, res.output + repr(res.exception)
        return res.output

    out = ok("sim", "run", "--rfqs", "1500", "--seed", "3", "--database-url", url)
    assert "simulated 1,500 RFQs" in out
    assert (tmp_path / "var/sim_truth/dealer_request.parquet").exists()
    ok("export", "--out", "exp", "--database-url", url)
    assert (tmp_path / "exp/rfq.parquet").exists()
    assert (tmp_path / "exp/export.json").exists()
    out = ok(
        "train", "hit", "--from-file", "exp", "--out", "models", "--rounds", "20", "--nthread", "1"
    )
    version = next((tmp_path / "models/hit").iterdir()).name
    assert version in out
    ok(
        "train",
        "fill",
        "--database-url",
        url,
        "--out",
        "models",
        "--rounds",
        "20",
        "--since",
        "2026-01-05T12:00",
    )
    out = ok("models", "list", "hit", "--registry", "models")
    assert version in out
    out = ok("models", "promote", "hit", version, "--registry", "models", "--database-url", url)
    assert "is active" in out
    out = ok(
        "models",
        "evaluate",
        "hit",
        "--version",
        version,
        "--registry",
        "models",
        "--database-url",
        url,
        "--png",
        "rel.png",
    )
    assert (tmp_path / "rel.png").exists()
    assert "log-loss" in out
    ok(
        "models",
        "predict",
        "hit",
        "--version",
        version,
        "--registry",
        "models",
        "--from-file",
        "exp",
        "--out",
        "p.csv",
    )
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 1501
    res = run(
        app, ["models", "promote", "hit", "nope", "--registry", "models", "--database-url", url]
    )
    assert res.exit_code == 2
    assert "no artifact" in res.output
