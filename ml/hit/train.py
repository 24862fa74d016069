"""Training of the client hit model: P(client trades | markup, RFQ), monotone decreasing in
the markup.

Rows: one per side quoted to the client (``buy``: the client may lift the desk's ask;
``sell``: hit its bid) of every resolved client quote; label: the client traded that side.
The markup is the one shown, in gross-vega vol points (``client_quote.explanation``). xgboost
is constrained to be non-increasing in ``markup_vp``; calibration may only be a Platt map
with a positive slope, which keeps the curve monotone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.features import (
    FEATURE_NAMES,
    SIDES,
    STRUCTURES,
    UNDERLYINGS,
    FeatureStore,
    RfqRecord,
    feature_types,
    hit_matrix,
    iter_hit_sides,
    replay,
)
from ml.fill.train import fit_head
from ml.registry import Artifact, save_artifact

__all__ = ["HitDataset", "hit_dataset", "train_hit"]

FloatArray = npt.NDArray[np.float64]
QUOTE_RESOLVED = frozenset({"accepted", "passed", "expired"})
MONOTONE = {"markup_vp": -1}
#: smaller steps than the fill heads: the curve is evaluated once per quote side (no latency
#: pressure) and its top end (eager clients at small markups) benefits from finer trees
HIT_PARAMS: dict[str, Any] = {"eta": 0.1}


@dataclass
class HitDataset:
    """Hit-model rows: one per side quoted (``buy``: the client may lift the ask)."""

    x: FloatArray
    y: FloatArray  # NaN for unresolved quotes
    t: FloatArray
    quote_ids: list[str]
    rfq_ids: list[str]
    sides: list[str]

    @property
    def ids(self) -> list[str]:
        """``<client_quote id>:<side>``."""
        return [f"{q}:{s}" for q, s in zip(self.quote_ids, self.sides, strict=True)]


def hit_dataset(log: Any, include_unresolved: bool = False) -> HitDataset:
    """Point-in-time hit features and labels of every resolved client quote side (and of
    unresolved ones, labelled NaN, with ``include_unresolved``)."""
    rows: list[FloatArray] = []
    ys: list[float] = []
    ts: list[float] = []
    qids: list[str] = []
    rids: list[str] = []
    sides: list[str] = []

    def visit(rec: RfqRecord, store: FeatureStore) -> None:
        resolved = rec.quote_status in QUOTE_RESOLVED
        if not (resolved or include_unresolved) or rec.quote_id is None:
            return
        for side, markup, hit in iter_hit_sides(rec):
            rows.append(
                hit_matrix(rec.hit_request(side), np.array([markup]), store, at=rec.ctx.at)[0]
            )
            ys.append((1.0 if hit else 0.0) if resolved else math.nan)
            ts.append(rec.ctx.at)
            qids.append(rec.quote_id)
            rids.append(rec.id)
            sides.append(side)

    replay(log, visit)
    n_feat = len(FEATURE_NAMES["hit"])
    x = np.vstack(rows) if rows else np.empty((0, n_feat))
    return HitDataset(x, np.array(ys), np.array(ts), qids, rids, sides)


def train_hit(
    log: Any,
    out_root: Path,
    *,
    nthread: int = 1,
    rounds: int = 500,
    dask_address: str | None = None,
    version: str | None = None,
    params: dict[str, Any] | None = None,
) -> Artifact:
    """Train the hit model on ``log`` and write the artifact under ``out_root/hit``."""
    started = time.perf_counter()
    ds = hit_dataset(log)
    feat_s = time.perf_counter() - started
    if len(ds.ids) < 100:
        raise ValueError(f"too little data to train: {len(ds.ids)} quote sides")
    head, info = fit_head(
        ds.x,
        ds.y,
        ds.t,
        "hit",
        monotone=MONOTONE,
        nthread=nthread,
        rounds=rounds,
        calibrators=("none", "platt"),
        dask_address=dask_address,
        params={**HIT_PARAMS, **(params or {})},
    )
    lo, hi = log.window()
    manifest = {
        "categories": {
            "underlying": list(UNDERLYINGS),
            "structure": list(STRUCTURES),
            "side": list(SIDES),
        },
        "feature_types": feature_types("hit"),
        "monotone": MONOTONE,
        "markup_units": "gross-vega vol points: markup USD per unit x quantity / gross vega",
        "heads": {
            "hit": {
                "label": "the client traded this side of a resolved client quote "
                "(status accepted and accepted_side equal to the side)",
                **info,
            }
        },
        "data": {
            "source": log.source,
            "since": log.since.isoformat() if log.since else None,
            "until": log.until.isoformat() if log.until else None,
            "first_rfq_at": lo.isoformat() if lo else None,
            "last_rfq_at": hi.isoformat() if hi else None,
            "rows": len(ds.ids),
            "fingerprint": log.fingerprint(),
        },
        "metrics": {"hit": info["metrics"]["test"]},
        "timing_seconds": {
            "features": round(feat_s, 2),
            "total": round(time.perf_counter() - started, 2),
        },
    }
    return save_artifact(out_root, "hit", {"hit": head}, manifest, version)
