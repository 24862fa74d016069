"""Retraining loop (issue 8, item 3): a candidate trained on the log before the recent window
is shadow-scored against the active version on that window and promoted only when better.

Two simulated logs in the same market, each into its own migrated SQLite database:

- *changed*: 2,500 RFQs of the usual clients, then 2,500 RFQs where every client is much
  more price-sensitive (β × 4, α − 1: the hit rate falls from ~40% to ~25%); the active
  hit model was trained on the old period only → the retrained one wins on the last day
  and is promoted;
- *unchanged*: the same 5,000 RFQs without the change; the active model is the committed
  default (trained on 100,000 RFQs of this market) → the candidate (about 4,000 RFQs) is
  worse on the last day and is recorded but not promoted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path

import pytest
from sqlalchemy import select

import ml.sim.engine as sim_engine
from app.auth.keys import Role
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.migrate import upgrade
from app.models import ModelVersion
from ml.export import read_log
from ml.hit.train import train_hit
from ml.registry import DEFAULT_VERSIONS, active_version, promote
from ml.retrain import _decide, retrain
from ml.sim import SimConfig, simulate
from ml.sim.writer import write_log_db

OLD = SimConfig(n_rfqs=2_500, seed=21)
NEW = SimConfig(n_rfqs=2_500, seed=22, start=OLD.end)
RECENT_DAYS = 1.0  # the last day of NEW (~490 quoted sides)


def _sensitive_world(orig):  # type: ignore[no-untyped-def]
    def build(*args, **kwargs):  # type: ignore[no-untyped-def]
        w = orig(*args, **kwargs)
        clients = tuple(
            dataclasses.replace(c, beta=c.beta * 4.0, alpha=c.alpha - 1.0) for c in w.clients
        )
        return dataclasses.replace(w, clients=clients)

    return build


def _log_db(path: Path, changed: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    old = simulate(OLD)
    with monkeypatch.context() as m:
        if changed:
            m.setattr(sim_engine, "build_world", _sensitive_world(sim_engine.build_world))
        new = simulate(NEW)
    if changed:
        assert new.stats["client_hit_rate"] < old.stats["client_hit_rate"] - 0.1
    asyncio.run(write_log_db(old.tables, url))
    asyncio.run(write_log_db(new.tables, url))
    return url


async def _promote(url: str, name: str, version: str, roots: list[Path] | None) -> None:
    engine = create_engine(Settings(database_url=url))
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            await promote(s, name, version, roots)
    finally:
        await engine.dispose()


async def _rows(url: str, name: str) -> tuple[list[ModelVersion], ModelVersion | None]:
    engine = create_engine(Settings(database_url=url))
    try:
        async with create_sessionmaker(engine)() as s:
            rows = list(await s.scalars(select(ModelVersion).where(ModelVersion.name == name)))
            return rows, await active_version(s, name)
    finally:
        await engine.dispose()


def test_decision_rule() -> None:
    cand = {"n": 1000, "log_loss": 0.40}
    assert _decide(cand, {"log_loss": 0.41}, 0.005, True)[0]
    assert not _decide(cand, {"log_loss": 0.401}, 0.005, True)[0]  # 0.25% is not enough
    assert not _decide(cand, {"log_loss": 0.39}, 0.005, True)[0]
    assert _decide(cand, {}, 0.005, False)[0]  # nothing loadable serves
    assert not _decide({"n": 10, "log_loss": 0.1}, {"log_loss": 0.5}, 0.005, True)[0]
    assert not _decide({"n": 1000, "log_loss": math.nan}, {"log_loss": 0.5}, 0.005, True)[0]


def test_changed_behaviour_promotes_new_hit_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _log_db(tmp_path / "log.sqlite", True, monkeypatch)
    out = tmp_path / "models"
    # the serving model knows only the old behaviour
    old_log = read_log(database_url=url, until=OLD.end)
    incumbent = train_hit(old_log, out, version="old-behaviour")
    asyncio.run(_promote(url, "hit", incumbent.version, [out]))

    report = retrain(url, names=("hit",), out=out, recent_days=RECENT_DAYS)
    (res,) = report.results
    assert res.incumbent == "old-behaviour"
    assert res.incumbent_source == "active"
    assert res.candidate_scores["n"] == res.incumbent_scores["n"] >= 300  # same rows
    assert res.candidate_log_loss < res.incumbent_log_loss * 0.95, res.reason
    assert res.promoted

    rows, active = asyncio.run(_rows(url, "hit"))
    assert active is not None
    assert active.version == res.candidate
    assert {r.version for r in rows} == {"old-behaviour", res.candidate}
    shadow = active.metrics["shadow"]
    assert shadow["promoted"] is True
    assert shadow["incumbent"]["version"] == "old-behaviour"
    assert shadow["candidate"]["log_loss"] == pytest.approx(res.candidate_log_loss)
    assert shadow["incumbent"]["log_loss"] == pytest.approx(res.incumbent_log_loss)
    assert {"brier", "auc"} <= set(shadow["candidate"]["heads"]["hit"])
    assert "hit" in active.metrics  # the trainer's own test-block metrics are kept
    # the window is the last day, and the candidate was trained on what came before
    assert shadow["window"][0] == report.window[0].isoformat()
    cand_manifest_until = (out / "hit" / res.candidate / "manifest.json").read_text()
    assert report.window[0].isoformat()[:16] in cand_manifest_until


def test_unchanged_behaviour_keeps_better_incumbent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _log_db(tmp_path / "log.sqlite", False, monkeypatch)
    out = tmp_path / "models"
    default = DEFAULT_VERSIONS["hit"]  # trained on 100,000 RFQs of this same market
    asyncio.run(_promote(url, "hit", default, None))

    report = retrain(url, names=("hit",), out=out, recent_days=RECENT_DAYS)
    (res,) = report.results
    assert res.incumbent == default
    assert res.candidate_log_loss > res.incumbent_log_loss * (1 - 0.005), res.reason
    assert not res.promoted

    rows, active = asyncio.run(_rows(url, "hit"))
    assert active is not None
    assert active.version == default  # the incumbent still serves
    by_version = {r.version: r for r in rows}
    assert set(by_version) == {default, res.candidate}  # both recorded
    cand = by_version[res.candidate]
    assert cand.active is False
    assert cand.promoted_at is None
    assert cand.metrics["shadow"]["promoted"] is False
    assert cand.metrics["shadow"]["incumbent"]["log_loss"] == pytest.approx(res.incumbent_log_loss)


async def test_models_endpoint_lists_versions(app, session, auth) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from app.models_api import router

    if "/v1/models" not in {getattr(r, "path", None) for r in app.routes}:
        app.include_router(router)
    session.add_all(
        [
            ModelVersion(
                name="hit", version="v-old", path="/x", sha256="0" * 64, metrics={}, active=True
            ),
            ModelVersion(
                name="hit",
                version="v-cand",
                path="/y",
                sha256="1" * 64,
                metrics={"shadow": {"candidate": {"log_loss": 0.5}, "promoted": False}},
                active=False,
            ),
        ]
    )
    await session.commit()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://rfqdesk.test") as c:
        r = await c.get("/v1/models", params={"name": "hit"}, headers=await auth(Role.ANALYST))
        assert r.status_code == 200, r.text
        items = {i["version"]: i for i in r.json()["items"]}
        assert items["v-old"]["active"] is True
        assert items["v-cand"]["metrics"]["shadow"]["promoted"] is False
        assert {"name", "version", "active", "promoted_at", "metrics", "created_at"} <= set(
            items["v-cand"]
        )
        r = await c.get("/v1/models", headers=await auth(Role.SALES))
        assert r.status_code == 403
