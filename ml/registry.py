"""Model artifacts: versioned directories with a manifest, verified on load, promoted in the
database.

Layout: ``<root>/<name>/<UTC-timestamp>-<gitsha>/`` holding the xgboost models (UBJSON,
``*.ubj``) and ``manifest.json`` (feature names and types, category vocabularies, label
definitions, data window and fingerprint, metrics, calibration maps, the sha256 of every
model file, library versions). The default versions the service ships with are committed
under ``ml/artifacts`` and pinned in :data:`DEFAULT_VERSIONS`; retrained versions go to a
registry folder outside git (``var/models`` by default).

Loading (:func:`load_artifact`) re-hashes every file and compares the manifest's feature names
with :data:`ml.features.FEATURE_NAMES`; any difference raises :class:`ArtifactError`, so a
tampered or stale artifact never serves. ``promote`` records a version as the active one in
the ``model_version`` table; the service polls :func:`active_version` and hot-reloads with
:class:`ModelSlot`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from ml.evaluate import Calibrator
from ml.features import FEATURE_NAMES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.models import ModelVersion

__all__ = [
    "ARTIFACTS_DIR",
    "DEFAULT_VERSIONS",
    "REGISTRY_DIR",
    "Artifact",
    "ArtifactError",
    "BinaryHead",
    "ModelSlot",
    "active_version",
    "list_versions",
    "load_artifact",
    "new_version",
    "promote",
    "resolve",
    "save_artifact",
]

FloatArray = npt.NDArray[np.float64]
M = TypeVar("M")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
"""Committed default artifacts (small)."""
REGISTRY_DIR = ROOT / "var" / "models"
"""Where retrained versions go by default (not in git)."""
MANIFEST_FORMAT = 1
DEFAULT_VERSIONS: dict[str, str] = {
    "fill": "20261125T115218Z-985e2a2",
    "hit": "20261125T115229Z-985e2a2",
}
"""The committed versions the service loads when the database names no active one."""


class ArtifactError(Exception):
    """An artifact is missing, modified, or does not match this code's features."""


# --------------------------------------------------------------------------- heads


class _Predictor:
    """Probabilities from a booster with little per-call overhead.

    ``Booster.inplace_predict`` spends most of a small batch's time in Python (building the
    config and array interface on every call). Ranking 20 dealers must take well under a
    millisecond, so this calls the same C entry point (``XGBoosterPredictFromDense``) with a
    config encoded once. It is checked against ``inplace_predict`` when built and falls back
    to it if the private API is missing or disagrees.
    """

    def __init__(self, booster: xgb.Booster) -> None:
        self.booster = booster
        self._args = json.dumps(
            {
                "type": 0,
                "training": False,
                "iteration_begin": 0,
                "iteration_end": 0,
                "missing": float("nan"),
                "strict_shape": False,
                "cache_id": 0,
            }
        ).encode()
        self._fast = False
        try:
            from xgboost.core import _LIB, _check_call

            self._lib, self._check, self._ulong = _LIB, _check_call, ctypes.c_uint64
            n = booster.num_features()
            probe = np.random.default_rng(0).integers(0, 2, size=(7, n)).astype(np.float64)
            self._fast = True
            ok = np.allclose(self._call(probe), booster.inplace_predict(probe), atol=1e-6)
            self._fast = bool(ok)
        except Exception:  # private API moved: stay on the public one
            self._fast = False

    def _call(self, x: FloatArray) -> FloatArray:
        if not self._fast:
            return np.asarray(self.booster.inplace_predict(x), dtype=np.float64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        shape = ctypes.POINTER(self._ulong)()
        dims = self._ulong()
        preds = ctypes.POINTER(ctypes.c_float)()
        iface = json.dumps(
            {
                "data": (x.ctypes.data, False),
                "shape": x.shape,
                "strides": None,
                "typestr": "<f8",
                "version": 3,
            }
        ).encode()
        self._check(
            self._lib.XGBoosterPredictFromDense(
                self.booster.handle,
                iface,
                self._args,
                ctypes.c_void_p(),
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(preds),
            )
        )
        return np.ctypeslib.as_array(preds, shape=(x.shape[0],)).astype(np.float64)

    def __call__(self, x: FloatArray) -> FloatArray:
        return self._call(x)


class BinaryHead:
    """One binary classifier: an xgboost booster and its calibration map.

    Parameters
    ----------
    booster
        Trained ``binary:logistic`` booster.
    calibrator
        Monotone map applied to its probabilities.
    nthread
        Threads used for prediction (1 for serving: batches are small).
    """

    def __init__(
        self, booster: xgb.Booster, calibrator: Calibrator | None = None, nthread: int = 1
    ) -> None:
        booster.set_param({"nthread": nthread})
        self.booster = booster
        self.calibrator = calibrator or Calibrator()
        self._predict = _Predictor(booster)

    def raw(self, x: FloatArray) -> FloatArray:
        """Uncalibrated probabilities."""
        return self._predict(x)

    def predict(self, x: FloatArray) -> FloatArray:
        """Calibrated probabilities, one per row of ``x``."""
        return self.calibrator.apply(self._predict(x))

    def predict_batch(self, x: FloatArray, nthread: int = 2) -> FloatArray:
        """Calibrated probabilities for a large matrix (multi-threaded DMatrix path)."""
        d = xgb.DMatrix(
            x,
            feature_types=self.booster.feature_types,
            feature_names=self.booster.feature_names,
            enable_categorical=True,
            nthread=nthread,
        )
        return self.calibrator.apply(np.asarray(self.booster.predict(d), dtype=np.float64))


# --------------------------------------------------------------------------- artifacts


@dataclass
class Artifact:
    """A loaded, verified artifact."""

    name: str
    version: str
    path: Path
    manifest: dict[str, Any]
    heads: dict[str, BinaryHead]

    @property
    def manifest_sha256(self) -> str:
        return _sha256(self.path / "manifest.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_sha() -> str:
    """Short commit of the working tree (``0000000`` outside git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "0000000"
    except (OSError, subprocess.SubprocessError):
        return "0000000"


def new_version(now: datetime | None = None) -> str:
    """``<UTC timestamp>-<git sha>``, e.g. ``20261125T101500Z-bd72e9c``."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{git_sha()}"


def library_versions() -> dict[str, str]:
    import scipy

    return {
        "python": platform.python_version(),
        "xgboost": xgb.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def save_artifact(
    root: Path,
    name: str,
    heads: dict[str, BinaryHead],
    manifest: dict[str, Any],
    version: str | None = None,
) -> Artifact:
    """Write ``heads`` and their manifest to ``root/name/version/``.

    ``manifest`` holds what the trainer knows (data window, metrics, labels, categories…);
    the file list with sha256, the feature names of :data:`ml.features.FEATURE_NAMES`, the
    calibration maps and the library versions are added here.
    """
    version = version or new_version()
    path = root / name / version
    if path.exists():
        raise ArtifactError(f"{path} exists; versions are immutable")
    path.mkdir(parents=True)
    files: dict[str, str] = {}
    head_meta: dict[str, Any] = dict(manifest.get("heads", {}))
    for head_name, head in heads.items():
        fname = f"{head_name}.ubj"
        head.booster.save_model(str(path / fname))
        files[fname] = _sha256(path / fname)
        head_meta[head_name] = {
            **head_meta.get(head_name, {}),
            "file": fname,
            "calibration": head.calibrator.to_dict(),
        }
    full = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "git_sha": git_sha(),
        **manifest,
        "feature_names": list(FEATURE_NAMES[name]),
        "heads": head_meta,
        "files": files,
        "libraries": library_versions(),
    }
    (path / "manifest.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return load_artifact(path, name)


def load_artifact(path: Path, name: str | None = None, nthread: int = 1) -> Artifact:
    """Load and verify the artifact in ``path``.

    Raises
    ------
    ArtifactError
        When the manifest is missing or unreadable, a file's sha256 differs from the
        manifest's, a model file is missing or unlisted, the artifact is of another model, or
        its feature names differ from this code's :data:`ml.features.FEATURE_NAMES`.
    """
    path = path.resolve()
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise ArtifactError(f"{path}: no manifest.json; not a model artifact")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{mpath}: unreadable manifest ({exc})") from exc
    model = manifest.get("name")
    if name is not None and model != name:
        raise ArtifactError(f"{path} is a {model!r} artifact, not {name!r}")
    if model not in FEATURE_NAMES:
        raise ArtifactError(f"{path}: unknown model name {model!r}")
    expected = list(FEATURE_NAMES[model])
    if manifest.get("feature_names") != expected:
        got = manifest.get("feature_names")
        raise ArtifactError(
            f"{path}: its feature names do not match this code's FEATURE_NAMES[{model!r}] "
            f"(artifact: {got}; code: {expected}); retrain it or run a matching version"
        )
    files: dict[str, str] = manifest.get("files") or {}
    listed = set(files)
    present = {p.name for p in path.glob("*.ubj")}
    if present - listed:
        raise ArtifactError(f"{path}: model files not in the manifest: {sorted(present - listed)}")
    for fname, digest in files.items():
        fpath = path / fname
        if not fpath.is_file():
            raise ArtifactError(f"{path}: {fname} is listed in the manifest but missing")
        actual = _sha256(fpath)
        if actual != digest:
            raise ArtifactError(
                f"{fpath}: sha256 {actual} does not match the manifest ({digest}); "
                "refusing to load a modified artifact"
            )
    heads: dict[str, BinaryHead] = {}
    for head_name, meta in manifest.get("heads", {}).items():
        booster = xgb.Booster()
        booster.load_model(str(path / meta["file"]))
        if list(booster.feature_names or []) != expected:
            raise ArtifactError(
                f"{path}/{meta['file']}: booster feature names differ from the manifest"
            )
        heads[head_name] = BinaryHead(
            booster, Calibrator.from_dict(meta["calibration"]), nthread=nthread
        )
    return Artifact(
        name=model, version=manifest["version"], path=path, manifest=manifest, heads=heads
    )


def default_roots() -> list[Path]:
    """Where artifacts are looked up: ``./var/models`` (the CLI's default ``--out``), the
    repository's ``var/models``, then the committed ``ml/artifacts``."""
    roots = [Path.cwd() / "var" / "models", REGISTRY_DIR, ARTIFACTS_DIR]
    return list(dict.fromkeys(p.resolve() for p in roots))


def list_versions(name: str, roots: Sequence[Path] | None = None) -> list[tuple[str, Path]]:
    """(version, path) of every artifact of ``name`` under ``roots``, oldest first."""
    found: dict[str, Path] = {}
    for root in roots or default_roots():
        base = root / name
        if base.is_dir():
            for p in base.iterdir():
                if (p / "manifest.json").is_file():
                    found.setdefault(p.name, p)
    return sorted(found.items())


def resolve(name: str, version: str | None = None, roots: Sequence[Path] | None = None) -> Path:
    """Directory of ``name``/``version`` (default: the pinned default version).

    Raises
    ------
    ArtifactError
        When no root holds it.
    """
    version = version or DEFAULT_VERSIONS.get(name)
    if version is None:
        raise ArtifactError(f"no version given and no default pinned for {name!r}")
    for root in roots or default_roots():
        path = root / name / version
        if (path / "manifest.json").is_file():
            return path
    where = ", ".join(str(r) for r in roots or default_roots())
    raise ArtifactError(f"no artifact {name}/{version} under {where}")


# --------------------------------------------------------------------------- database


async def promote(
    session: AsyncSession,
    name: str,
    version: str,
    roots: Sequence[Path] | None = None,
    now: datetime | None = None,
) -> ModelVersion:
    """Make ``name``/``version`` the active model: verify it loads, record it in
    ``model_version`` (path, manifest sha256, metrics) with ``active = true`` and clear the
    flag on every other version of ``name``. The caller commits."""
    from sqlalchemy import select, update

    from app.models import ModelVersion

    art = load_artifact(resolve(name, version, roots), name)
    now = now or datetime.now(UTC)
    await session.execute(
        update(ModelVersion)
        .where(ModelVersion.name == name, ModelVersion.version != version)
        .values(active=False)
    )
    row = await session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )
    if row is None:
        row = ModelVersion(name=name, version=version)
        session.add(row)
    row.path = str(art.path)
    row.sha256 = art.manifest_sha256
    row.metrics = art.manifest.get("metrics", {})
    row.active = True
    row.promoted_at = now
    await session.flush()
    return row


async def active_version(session: AsyncSession, name: str) -> ModelVersion | None:
    """The ``model_version`` row marked active for ``name`` (None: serve the default)."""
    from sqlalchemy import select

    from app.models import ModelVersion

    row: ModelVersion | None = await session.scalar(
        select(ModelVersion)
        .where(ModelVersion.name == name, ModelVersion.active.is_(True))
        .order_by(ModelVersion.promoted_at.desc())
        .limit(1)
    )
    return row


class ModelSlot(Generic[M]):
    """The model a process serves for one name, swapped when the active version changes
    (hot reload without a restart). Readers take ``slot.model`` once per request; the swap
    is a single attribute assignment.

    Parameters
    ----------
    name
        Model name (``fill`` or ``hit``).
    factory
        Builds the served object from a verified artifact (``FillModel.from_artifact``,
        ``HitModel.from_artifact``).
    version
        Pinned version to start with (default :data:`DEFAULT_VERSIONS`).
    roots
        Where artifacts are looked up.
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[Artifact], M],
        version: str | None = None,
        roots: Sequence[Path] | None = None,
    ) -> None:
        self.name = name
        self.factory = factory
        self.roots = list(roots) if roots else default_roots()
        self.artifact = load_artifact(resolve(name, version, self.roots), name)
        self.model: M = factory(self.artifact)

    @property
    def version(self) -> str:
        return self.artifact.version

    async def refresh(self, session: AsyncSession) -> bool:
        """Load the active version if it differs from the one served; True when swapped.

        The database row's path is tried first, then the roots; the row's sha256 must equal
        the manifest's, else :class:`ArtifactError` and the current model keeps serving.
        """
        row = await active_version(session, self.name)
        if row is None or row.version == self.artifact.version:
            return False
        path = Path(row.path)
        if not (path / "manifest.json").is_file():
            path = resolve(self.name, row.version, self.roots)
        art = load_artifact(path, self.name)
        if art.manifest_sha256 != row.sha256:
            raise ArtifactError(
                f"{path}: manifest sha256 {art.manifest_sha256} differs from the promoted "
                f"one ({row.sha256}); not switching"
            )
        model = self.factory(art)
        self.artifact, self.model = art, model
        return True
