"""Loading the model artifacts the service serves (once per process, verified)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from app.config import MlSettings

if TYPE_CHECKING:
    from ml.intent.model import IntentParser

log = structlog.get_logger(__name__)


def artifact_dir(settings: MlSettings, name: str, version: str | None) -> Path | None:
    root = settings.artifacts_dir / name
    if version is not None:
        path = root / version
        if not (path / "manifest.json").exists():
            raise FileNotFoundError(f"pinned {name} artifact {version} is not under {root}")
        return path
    found = sorted(p.parent for p in root.glob("*/manifest.json"))
    return found[-1] if found else None


@lru_cache(maxsize=4)
def _load_intent(path: Path, threads: int) -> IntentParser:
    from ml.intent.model import IntentParser

    return IntentParser.load(path, num_threads=threads)


def load_intent(settings: MlSettings) -> IntentParser | None:
    """The intent parser, or None (logged) when no artifact is there to serve."""
    if not settings.load_intent:
        return None
    path = artifact_dir(settings, "intent", settings.intent_version)
    if path is None:
        log.warning("intent_model_missing", root=str(settings.artifacts_dir / "intent"))
        return None
    return _load_intent(path, settings.torch_threads)
