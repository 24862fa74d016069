"""The models the service serves: loaded once per process, verified, hot-swapped on promotion."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MlSettings

if TYPE_CHECKING:
    from ml.features import FeatureStore
    from ml.fill.model import FillModel
    from ml.hit.model import HitModel
    from ml.intent.model import IntentParser
    from ml.registry import ModelSlot

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


@dataclass
class TradingModels:
    """The fill and hit models (hot-swappable slots) and the trailing statistics they read."""

    store: FeatureStore
    fill: ModelSlot[FillModel]
    hit: ModelSlot[HitModel]

    def versions(self) -> dict[str, str]:
        return {"fill": self.fill.version, "hit": self.hit.version}

    async def refresh(self, session: AsyncSession) -> list[str]:
        """Swap in newly promoted versions; the names that changed."""
        changed = []
        for slot in (self.fill, self.hit):
            try:
                if await slot.refresh(session):
                    changed.append(slot.name)
                    log.info("model_promoted", model=slot.name, version=slot.version)
            except Exception:  # a bad artifact must not stop the service: the old one serves
                log.warning("model_refresh_failed", model=slot.name, exc_info=True)
        return changed


def load_trading_models(settings: MlSettings) -> TradingModels | None:
    """The committed (or pinned) fill and hit models with an empty store (seed it after)."""
    if not settings.use_trained:
        return None
    from ml.features import FeatureStore
    from ml.fill.model import FillModel
    from ml.hit.model import HitModel
    from ml.registry import ModelSlot

    store = FeatureStore()
    return TradingModels(
        store=store,
        fill=ModelSlot("fill", FillModel.from_artifact, version=settings.fill_version),
        hit=ModelSlot("hit", lambda art: HitModel(art, store), version=settings.hit_version),
    )


async def seed_store(models: TradingModels, database_url: str, days: float) -> None:
    """Replay recent log into the trailing statistics (in place: models hold the store)."""
    from ml.features import seed_store as replay_log

    seeded = await replay_log(database_url, days=days)
    models.store.__dict__.update(seeded.__dict__)


async def poll_promotions(
    models: TradingModels, maker: async_sessionmaker[AsyncSession], interval_s: float
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            async with maker() as session:
                await models.refresh(session)
        except Exception:  # the database may be briefly down; try again next time
            log.warning("model_poll_failed", exc_info=True)
