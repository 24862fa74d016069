from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from ml.evaluate import Calibrator
from ml.features import FEATURE_NAMES, feature_types
from ml.fill.model import FillModel
from ml.hit.model import HitModel, LiveHitCurve
from ml.registry import (
    DEFAULT_VERSIONS,
    ArtifactError,
    BinaryHead,
    ModelSlot,
    active_version,
    list_versions,
    load_artifact,
    promote,
    resolve,
    save_artifact,
)


def tiny_head(name: str, seed: int = 0) -> BinaryHead:
    rng = np.random.default_rng(seed)
    names = list(FEATURE_NAMES[name])
    x = rng.integers(0, 3, size=(300, len(names))).astype(float)
    y = (x[:, 0] + rng.normal(size=300) > 1.5).astype(float)
    d = xgb.DMatrix(
        x, label=y, feature_names=names, feature_types=feature_types(name), enable_categorical=True
    )
    booster = xgb.train(
        {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 2, "nthread": 1}, d, 3
    )
    return BinaryHead(booster, Calibrator("platt", {"a": 1.1, "b": -0.1}))


def make(root: Path, version: str = "v1") -> Path:
    art = save_artifact(
        root,
        "hit",
        {"hit": tiny_head("hit")},
        {"metrics": {"hit": {"log_loss": 0.5}}, "categories": {}},
        version,
    )
    return art.path


class TestArtifacts:
    def test_round_trip(self, tmp_path: Path):
        path = make(tmp_path)
        art = load_artifact(path, "hit")
        manifest = json.loads((path / "manifest.json").read_text())
        assert art.version == "v1"
        assert manifest["feature_names"] == list(FEATURE_NAMES["hit"])
        assert set(manifest["files"]) == {"hit.ubj"}
        assert {"xgboost", "numpy", "python"} <= set(manifest["libraries"])
        x = np.random.default_rng(1).integers(0, 3, size=(5, len(FEATURE_NAMES["hit"])))
        x = x.astype(float)
        direct = art.heads["hit"].booster.inplace_predict(x)
        assert np.allclose(art.heads["hit"].raw(x), direct, atol=1e-6)
        assert art.heads["hit"].calibrator.kind == "platt"
        assert list_versions("hit", [tmp_path]) == [("v1", path)]
        assert resolve("hit", "v1", [tmp_path]) == path

    def test_refuses_a_tampered_model_file(self, tmp_path: Path):
        path = make(tmp_path)
        model = path / "hit.ubj"
        data = bytearray(model.read_bytes())
        data[-10] ^= 0xFF
        model.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match=r"sha256 .* does not match the manifest"):
            load_artifact(path, "hit")

    def test_refuses_other_feature_names(self, tmp_path: Path):
        path = make(tmp_path)
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["feature_names"] = [*manifest["feature_names"][:-1], "something_else"]
        (path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match="feature names do not match"):
            load_artifact(path, "hit")

    def test_refuses_unlisted_or_missing_files(self, tmp_path: Path):
        path = make(tmp_path)
        (path / "extra.ubj").write_bytes(b"x")
        with pytest.raises(ArtifactError, match="not in the manifest"):
            load_artifact(path)
        (path / "extra.ubj").unlink()
        (path / "hit.ubj").unlink()
        with pytest.raises(ArtifactError, match="missing"):
            load_artifact(path)

    def test_refuses_the_wrong_model_and_missing_manifest(self, tmp_path: Path):
        path = make(tmp_path)
        with pytest.raises(ArtifactError, match="not 'fill'"):
            load_artifact(path, "fill")
        with pytest.raises(ArtifactError, match="no manifest"):
            load_artifact(tmp_path)
        with pytest.raises(ArtifactError, match="no artifact hit/v9"):
            resolve("hit", "v9", [tmp_path])

    def test_versions_are_immutable(self, tmp_path: Path):
        make(tmp_path)
        with pytest.raises(ArtifactError, match="immutable"):
            make(tmp_path)


class TestDefaults:
    @pytest.mark.parametrize("name", ["fill", "hit"])
    def test_committed_defaults_load(self, name: str):
        art = load_artifact(resolve(name), name)
        assert art.version == DEFAULT_VERSIONS[name]
        assert art.manifest["feature_names"] == list(FEATURE_NAMES[name])
        size = sum(p.stat().st_size for p in art.path.iterdir())
        assert size < 3_000_000  # small enough to commit
        model = FillModel(art) if name == "fill" else HitModel(art)
        assert model.version == f"{name}/{art.version}"


class TestPromote:
    async def test_promote_and_hot_reload(self, tmp_path: Path, sqlite_url: str):
        make(tmp_path, "v1")
        make(tmp_path, "v2")
        engine = create_engine(Settings(database_url=sqlite_url))
        maker = create_sessionmaker(engine)
        slot = ModelSlot("hit", HitModel.from_artifact, version="v1", roots=[tmp_path])
        curve = LiveHitCurve(slot)
        assert curve.version == "hit/v1"
        try:
            async with maker() as s, s.begin():
                assert not await slot.refresh(s)  # nothing promoted yet
                await promote(s, "hit", "v1", [tmp_path])
                await promote(s, "hit", "v2", [tmp_path])
            async with maker() as s:
                row = await active_version(s, "hit")
                assert row is not None
                assert row.version == "v2"
                assert row.active
                assert row.sha256 == load_artifact(tmp_path / "hit" / "v2").manifest_sha256
                assert await slot.refresh(s)
                assert slot.version == "v2"
                assert slot.model.version == "hit/v2"
                assert not await slot.refresh(s)
            async with maker() as s, s.begin():
                await promote(s, "hit", "v1", [tmp_path])
            async with maker() as s:
                assert (await active_version(s, "hit")).version == "v1"  # type: ignore[union-attr]
                # a promoted version whose files changed does not replace the served one
                (tmp_path / "hit" / "v1" / "hit.ubj").write_bytes(b"tampered")
                with pytest.raises(ArtifactError):
                    await slot.refresh(s)
                assert slot.version == "v2"
            async with maker() as s, s.begin():
                await s.execute(
                    __import__("sqlalchemy").text("DELETE FROM model_version WHERE name = 'hit'")
                )
        finally:
            await engine.dispose()

    async def test_promote_refuses_a_broken_artifact(self, tmp_path: Path, sqlite_url: str):
        path = make(tmp_path, "v1")
        (path / "hit.ubj").write_bytes(b"broken")
        engine = create_engine(Settings(database_url=sqlite_url))
        try:
            async with create_sessionmaker(engine)() as s:
                with pytest.raises(ArtifactError):
                    await promote(s, "hit", "v1", [tmp_path])
        finally:
            await engine.dispose()
