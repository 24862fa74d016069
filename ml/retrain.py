"""Retraining loop: train candidates from the log, shadow-score them against the serving
version on the most recent window, promote only a better one.

For each model (``fill``, ``hit``):

1. the log is split in time at ``window start = end - recent_days`` (``end``: ``now`` or
   just after the last RFQ);
2. a candidate is trained on the RFQs before the window only (the trainers' own
   time-ordered train/validation/test split applies inside that part);
3. the candidate and the incumbent (the ``model_version`` row marked active, else the pinned
   default of :data:`ml.registry.DEFAULT_VERSIONS`) are scored on the same labelled rows of
   the window (shadow scoring): log-loss first, Brier and AUC beside it. Features are
   point-in-time, replayed over the whole log, so trailing statistics are warm at the window;
4. the candidate is recorded in ``model_version`` with its manifest metrics and a
   ``shadow`` block holding the window and both versions' scores; it is promoted (made the
   active version) only when its log-loss is lower than the incumbent's by at least
   ``min_improvement`` (relative). For ``fill`` the log-loss compared is the mean of its two
   heads (P(answer), P(win)).

:func:`retrain` is the synchronous entry point (CLI, tests); :func:`retrain_async` works on a
session factory and runs the CPU-bound part in a thread (the service's schedule,
:func:`retrain_schedule`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from ml.export import LogData
    from ml.registry import Artifact

__all__ = [
    "NameResult",
    "RetrainReport",
    "retrain",
    "retrain_async",
    "retrain_schedule",
    "shadow_scores",
]

log_ = logging.getLogger(__name__)

DEFAULT_RECENT_DAYS = 7.0
DEFAULT_MIN_IMPROVEMENT = 0.005
MIN_WINDOW_ROWS = 200
"""Fewer labelled rows than this in the window: no decision (nothing promoted)."""


@dataclass
class NameResult:
    """What retraining did for one model."""

    name: str
    candidate: str | None
    incumbent: str | None
    incumbent_source: str  # "active" (model_version row), "default" (pinned) or "none"
    candidate_scores: dict[str, Any] = field(default_factory=dict)
    incumbent_scores: dict[str, Any] = field(default_factory=dict)
    promoted: bool = False
    reason: str = ""
    seconds: float = 0.0

    @property
    def candidate_log_loss(self) -> float:
        return float(self.candidate_scores.get("log_loss", math.nan))

    @property
    def incumbent_log_loss(self) -> float:
        return float(self.incumbent_scores.get("log_loss", math.nan))


@dataclass
class RetrainReport:
    window: tuple[datetime, datetime]
    results: list[NameResult]

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "results": [
                {
                    "name": r.name,
                    "candidate": r.candidate,
                    "incumbent": r.incumbent,
                    "incumbent_source": r.incumbent_source,
                    "candidate_scores": r.candidate_scores,
                    "incumbent_scores": r.incumbent_scores,
                    "promoted": r.promoted,
                    "reason": r.reason,
                    "seconds": round(r.seconds, 2),
                }
                for r in self.results
            ],
        }


# --------------------------------------------------------------------------- scoring


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _row_times(log: LogData, name: str) -> dict[str, float]:
    """Row id of ``model_predictions`` → its RFQ's ``created_at`` (epoch seconds)."""
    rfq_t = dict(
        zip(log.tables["rfq"]["id"].to_pylist(), log.column("rfq", "created_at"), strict=True)
    )
    table = "dealer_request" if name == "fill" else "client_quote"
    t = log.tables[table]
    return {
        i: rfq_t.get(r, math.nan)
        for i, r in zip(t["id"].to_pylist(), t["rfq_id"].to_pylist(), strict=True)
    }


def shadow_scores(
    artifact: Artifact, log: LogData, since: datetime, until: datetime
) -> dict[str, Any]:
    """Scores of ``artifact`` on the labelled rows of ``log`` whose RFQ arrived in
    [``since``, ``until``): per head (n, log-loss, Brier, AUC) and ``log_loss``, the mean
    of the heads' log-losses (the figure compared)."""
    from ml.evaluate import model_predictions, score

    times = _row_times(log, artifact.name)
    lo, hi = since.timestamp(), until.timestamp()
    heads: dict[str, Any] = {}
    for hp in model_predictions(artifact, log):
        key = [i.split(":", 1)[0] for i in hp.ids] if artifact.name == "hit" else hp.ids
        t = np.array([times.get(k, math.nan) for k in key], dtype=np.float64)
        rows = np.isfinite(hp.y) & (t >= lo) & (t < hi)
        if not rows.any():
            heads[hp.head] = {"n": 0}
            continue
        s = score(hp.y[rows], hp.p[rows])
        heads[hp.head] = {
            "n": s.n,
            "positive_rate": _finite(s.positive_rate),
            "log_loss": _finite(s.log_loss),
            "brier": _finite(s.brier),
            "auc": _finite(s.auc),
        }
    losses = [h["log_loss"] for h in heads.values() if h.get("log_loss") is not None]
    n = min((h["n"] for h in heads.values()), default=0)
    return {
        "n": n,
        "log_loss": float(np.mean(losses)) if losses and n else math.nan,
        "heads": heads,
    }


# --------------------------------------------------------------------------- one model


def _unique_version(out: Path, name: str) -> str:
    from ml.registry import new_version

    base = new_version()
    version, k = base, 1
    while (out / name / version).exists():
        k += 1
        version = f"{base}-r{k}"
    return version


def _load_incumbent(
    row_version: str | None, row_path: str | None, name: str, roots: Sequence[Path]
) -> tuple[Artifact | None, str | None, str]:
    from ml.registry import DEFAULT_VERSIONS, ArtifactError, load_artifact, resolve

    try:
        if row_version is not None:
            path = Path(row_path) if row_path else resolve(name, row_version, roots)
            if not (path / "manifest.json").is_file():
                path = resolve(name, row_version, roots)
            return load_artifact(path, name), row_version, "active"
        version = DEFAULT_VERSIONS.get(name)
        if version is None:
            return None, None, "none"
        return load_artifact(resolve(name, version, roots), name), version, "default"
    except ArtifactError as exc:
        log_.warning("incumbent %s %s cannot be loaded: %s", name, row_version, exc)
        return None, row_version, "unloadable"


def _train_and_score(
    name: str,
    log: LogData,
    window: tuple[datetime, datetime],
    out: Path,
    incumbent: Artifact | None,
    nthread: int,
    rounds: int,
    params: dict[str, Any] | None,
) -> tuple[Artifact, dict[str, Any], dict[str, Any]]:
    """Train a candidate on the log before the window; score it and the incumbent on it."""
    from ml.export import LogData as _LogData
    from ml.export import _windowed
    from ml.fill.train import train_fill
    from ml.hit.train import train_hit

    before = _windowed(
        _LogData(dict(log.tables), source=log.source, meta=dict(log.meta)), None, window[0]
    )
    fn = train_fill if name == "fill" else train_hit
    cand = fn(
        before,
        out,
        nthread=nthread,
        rounds=rounds,
        version=_unique_version(out, name),
        params=params,
    )
    cand_scores = shadow_scores(cand, log, *window)
    inc_scores = shadow_scores(incumbent, log, *window) if incumbent is not None else {}
    return cand, cand_scores, inc_scores


def _decide(
    cand: dict[str, Any], inc: dict[str, Any], min_improvement: float, incumbent_ok: bool
) -> tuple[bool, str]:
    c = float(cand.get("log_loss", math.nan))
    n = int(cand.get("n", 0))
    if n < MIN_WINDOW_ROWS or not math.isfinite(c):
        return False, f"too few labelled rows in the window ({n} < {MIN_WINDOW_ROWS})"
    if not incumbent_ok:
        return True, "no loadable incumbent"
    i = float(inc.get("log_loss", math.nan))
    if not math.isfinite(i):
        return True, "incumbent has no score on the window"
    gain = (i - c) / i if i > 0 else 0.0
    if gain >= min_improvement:
        return True, f"log-loss {c:.4f} < {i:.4f} ({gain:+.2%}, needed {min_improvement:.2%})"
    return False, (
        f"log-loss {c:.4f} vs incumbent {i:.4f} ({gain:+.2%}; needs at least "
        f"{min_improvement:.2%} lower)"
    )


async def _record(
    session: AsyncSession,
    res: NameResult,
    cand: Artifact,
    window: tuple[datetime, datetime],
    min_improvement: float,
    roots: Sequence[Path],
    now: datetime,
) -> None:
    from sqlalchemy import select

    from app.models import ModelVersion
    from ml.registry import promote

    metrics = {
        **cand.manifest.get("metrics", {}),
        "shadow": {
            "window": [window[0].isoformat(), window[1].isoformat()],
            "primary": "log_loss",
            "min_improvement": min_improvement,
            "candidate": {"version": cand.version, **res.candidate_scores},
            "incumbent": {
                "version": res.incumbent,
                "source": res.incumbent_source,
                **res.incumbent_scores,
            },
            "promoted": res.promoted,
            "reason": res.reason,
            "at": now.isoformat(),
        },
    }
    row: ModelVersion
    if res.promoted:
        row = await promote(session, res.name, cand.version, roots, now)
    else:
        found = await session.scalar(
            select(ModelVersion).where(
                ModelVersion.name == res.name, ModelVersion.version == cand.version
            )
        )
        row = found or ModelVersion(name=res.name, version=cand.version, active=False)
        if found is None:
            session.add(row)
        row.path = str(cand.path)
        row.sha256 = cand.manifest_sha256
    row.metrics = _json_safe(metrics)
    await session.flush()


def _json_safe(value: Any) -> Any:
    """NaN/inf → None (Postgres JSON rejects them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------- entry points


def _window(log: LogData, now: datetime | None, recent_days: float) -> tuple[datetime, datetime]:
    if now is not None:
        end = now.astimezone(UTC)
    else:
        _, last = log.window()
        if last is None:
            raise ValueError("the log is empty: nothing to retrain on")
        end = last.astimezone(UTC) + timedelta(microseconds=1)
    return end - timedelta(days=recent_days), end


async def retrain_async(
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    names: Sequence[str] = ("fill", "hit"),
    out: Path = Path("var/models"),
    *,
    recent_days: float = DEFAULT_RECENT_DAYS,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
    now: datetime | None = None,
    nthread: int = 1,
    rounds: int = 500,
    params: dict[str, dict[str, Any]] | None = None,
    log: LogData | None = None,
) -> RetrainReport:
    """Retrain ``names`` from the log at ``database_url`` (or ``log``), shadow-score each
    candidate against the active version on the last ``recent_days``, record it and promote
    it only when its log-loss is lower by at least ``min_improvement`` (relative).
    ``params`` (per name) override the trainers' xgboost parameters."""
    from ml.export import read_log_db
    from ml.registry import active_version, default_roots

    out = await asyncio.to_thread(Path(out).resolve)
    roots = [out, *default_roots()]
    if log is None:
        log = await read_log_db(database_url, None, now)
    window = _window(log, now, recent_days)
    stamp = now or datetime.now(UTC)
    results: list[NameResult] = []
    for name in names:
        if name not in ("fill", "hit"):
            raise ValueError(f"retrain knows fill and hit, not {name!r}")
        started = time.perf_counter()
        async with sessionmaker() as session:
            row = await active_version(session, name)
            row_version, row_path = (row.version, row.path) if row is not None else (None, None)
        incumbent, inc_version, source = _load_incumbent(row_version, row_path, name, roots)
        res = NameResult(name, None, inc_version, source)
        try:
            cand, cs, inc_s = await asyncio.to_thread(
                _train_and_score,
                name,
                log,
                window,
                out,
                incumbent,
                nthread,
                rounds,
                (params or {}).get(name),
            )
        except ValueError as exc:  # too little data before the window
            res.reason = f"no candidate: {exc}"
            res.seconds = time.perf_counter() - started
            results.append(res)
            continue
        res.candidate, res.candidate_scores, res.incumbent_scores = cand.version, cs, inc_s
        res.promoted, res.reason = _decide(cs, inc_s, min_improvement, incumbent is not None)
        async with sessionmaker() as session, session.begin():
            await _record(session, res, cand, window, min_improvement, roots, stamp)
        res.seconds = time.perf_counter() - started
        log_.info(
            "retrain %s: candidate %s log-loss %.4f, incumbent %s log-loss %.4f, promoted=%s (%s)",
            name,
            res.candidate,
            res.candidate_log_loss,
            res.incumbent,
            res.incumbent_log_loss,
            res.promoted,
            res.reason,
        )
        results.append(res)
    return RetrainReport(window, results)


def retrain(
    database_url: str,
    names: Sequence[str] = ("fill", "hit"),
    out: Path = Path("var/models"),
    *,
    recent_days: float = DEFAULT_RECENT_DAYS,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
    now: datetime | None = None,
    nthread: int = 1,
    rounds: int = 500,
    params: dict[str, dict[str, Any]] | None = None,
) -> RetrainReport:
    """Synchronous :func:`retrain_async` on its own engine (CLI, tests)."""
    from app.config import Settings
    from app.db import create_engine, create_sessionmaker

    async def run() -> RetrainReport:
        engine = create_engine(Settings(database_url=database_url))
        try:
            return await retrain_async(
                create_sessionmaker(engine),
                database_url,
                names,
                out,
                recent_days=recent_days,
                min_improvement=min_improvement,
                now=now,
                nthread=nthread,
                rounds=rounds,
                params=params,
            )
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def retrain_schedule(
    settings: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    interval_s: float,
    *,
    names: Sequence[str] = ("fill", "hit"),
    out: Path = Path("var/models"),
    recent_days: float = DEFAULT_RECENT_DAYS,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
) -> None:
    """Retrain every ``interval_s`` seconds until cancelled (start it as a task in the
    service's lifespan; a failed run is logged and the next one still happens). Promotions
    reach the serving slots through their usual polling of the active version."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            report = await retrain_async(
                sessionmaker,
                settings.database_url,
                names,
                out,
                recent_days=recent_days,
                min_improvement=min_improvement,
            )
            for r in report.results:
                log_.info("scheduled retrain %s: promoted=%s (%s)", r.name, r.promoted, r.reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            log_.exception("scheduled retrain failed")


# --------------------------------------------------------------------------- intent (opt-in)


async def retrain_intent(
    sessionmaker: async_sessionmaker[AsyncSession],
    out: Path = Path("var/models"),
    *,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
    now: datetime | None = None,
    threads: int | None = None,
) -> NameResult:
    """Train a new intent model (minutes; synthetic chat, not the log) and compare it with
    the active intent version (its ``model_version`` row, else the newest committed
    artifact) on exact match over the held-out synthetic split both manifests were scored
    on (the same generator seed); record it, and mark it active only when its error rate
    (1 − exact match) is lower by at least ``min_improvement`` (relative)."""
    import json

    from sqlalchemy import select, update

    from app.models import ModelVersion
    from ml.intent.model import latest_artifact, sha256_file
    from ml.intent.train import train as train_intent
    from ml.registry import active_version

    started = time.perf_counter()
    stamp = now or datetime.now(UTC)
    async with sessionmaker() as session:
        row = await active_version(session, "intent")
        inc_path = Path(row.path) if row is not None else latest_artifact()
    inc = json.loads((inc_path / "manifest.json").read_text())
    root = await asyncio.to_thread(Path(out).resolve)
    path = await asyncio.to_thread(train_intent, root / "intent", threads=threads)
    cand = json.loads((path / "manifest.json").read_text())

    def err(m: dict[str, Any]) -> float:
        return 1.0 - float(m["metrics"]["heldout_synthetic"]["exact_match"])

    ce, ie = err(cand), err(inc)
    res = NameResult(
        "intent",
        cand["version"],
        inc["version"],
        "active" if row is not None else "default",
        {"exact_match_error": ce, **cand["metrics"]["heldout_synthetic"]},
        {"exact_match_error": ie, **inc["metrics"]["heldout_synthetic"]},
    )
    gain = (ie - ce) / ie if ie > 0 else (0.0 if ce >= ie else 1.0)
    res.promoted = gain >= min_improvement
    res.reason = (
        f"exact-match error {ce:.4f} vs {ie:.4f} ({gain:+.2%}, needs {min_improvement:.2%})"
    )
    async with sessionmaker() as session, session.begin():
        if res.promoted:
            await session.execute(
                update(ModelVersion).where(ModelVersion.name == "intent").values(active=False)
            )
        existing = await session.scalar(
            select(ModelVersion).where(
                ModelVersion.name == "intent", ModelVersion.version == cand["version"]
            )
        )
        rec = existing or ModelVersion(name="intent", version=cand["version"])
        rec.path = str(path)
        rec.sha256 = sha256_file(path / "manifest.json")
        rec.active = res.promoted
        rec.promoted_at = stamp if res.promoted else None
        rec.metrics = _json_safe(
            {
                **cand["metrics"],
                "shadow": {
                    "primary": "heldout_synthetic exact_match",
                    "candidate": {"version": res.candidate, **res.candidate_scores},
                    "incumbent": {"version": res.incumbent, **res.incumbent_scores},
                    "promoted": res.promoted,
                    "reason": res.reason,
                    "at": stamp.isoformat(),
                },
            }
        )
        if existing is None:
            session.add(rec)
    res.seconds = time.perf_counter() - started
    return res
