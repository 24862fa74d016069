"""Training of the dealer-fill model, and the booster fit shared with the hit model.

``rfqdesk train fill`` (see :mod:`ml.cli`) reads the log, replays it through the feature
store (point-in-time features), and fits two xgboost ``hist`` classifiers on the selected
dealer requests:

* ``answer``: P(the dealer answers with a tradeable quote) — label: outcome quoted, won or
  lost; rows: every resolved request;
* ``win``: P(the desk fills from the dealer | the client traded) — label: outcome won; rows:
  the requests of traded RFQs.

Validation is time-ordered: rows are split by RFQ time into train (70 %), validation (10 %,
early stopping), calibration (10 %, the calibration map is chosen and fitted there) and test
(10 %, the metrics in the manifest).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from ml.evaluate import fit_calibrator, score
from ml.features import (
    ANSWERED,
    FEATURE_NAMES,
    RESOLVED,
    SIDES,
    STRUCTURES,
    UNDERLYINGS,
    FeatureStore,
    FillFeatures,
    RfqRecord,
    feature_types,
    replay,
)
from ml.registry import Artifact, BinaryHead, save_artifact

__all__ = ["DEFAULT_PARAMS", "FillDataset", "fill_dataset", "fit_head", "train_fill"]

FloatArray = npt.NDArray[np.float64]

DEFAULT_PARAMS: dict[str, Any] = {
    "tree_method": "hist",
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "max_depth": 6,
    "eta": 0.3,
    "min_child_weight": 10,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 2.0,
    "max_cat_to_onehot": 1,
    "max_bin": 256,
}
SPLITS = (0.7, 0.1, 0.1, 0.1)


@dataclass
class FillDataset:
    """Fill-model rows: one per resolved, selected dealer request."""

    x: FloatArray
    y_answer: FloatArray
    y_win: FloatArray
    win_rows: npt.NDArray[np.bool_]  # rows of traded RFQs (the win head's data)
    t: FloatArray  # RFQ creation time (epoch s)
    ids: list[str]  # dealer_request ids
    rfq_ids: list[str]
    dealer_names: list[str]
    dealers: tuple[str, ...]
    store: FeatureStore = field(repr=False, default_factory=FeatureStore)


def fill_dataset(
    log: Any, dealers: Sequence[str] | None = None, include_unresolved: bool = False
) -> FillDataset:
    """Point-in-time fill features and labels of every resolved, selected dealer request.

    Parameters
    ----------
    log
        A :class:`ml.export.LogData`.
    dealers
        Dealer vocabulary (category codes); default: every dealer in the log, by name.
    include_unresolved
        Also give rows for requests not selected or not resolved (labels NaN), e.g. to
        predict every request of an export.
    """
    names = (
        tuple(dealers)
        if dealers is not None
        else tuple(sorted(log.tables["dealer"]["name"].to_pylist()))
    )
    ff = FillFeatures(names)
    blocks: list[FloatArray] = []
    ya: list[float] = []
    yw: list[float] = []
    wr: list[bool] = []
    ts: list[float] = []
    ids: list[str] = []
    rids: list[str] = []
    dnames: list[str] = []

    def visit(rec: RfqRecord, store: FeatureStore) -> None:
        sel = [
            q for q in rec.requests if include_unresolved or (q.selected and q.outcome in RESOLVED)
        ]
        if not sel:
            return
        blocks.append(ff.matrix(rec.ctx, [q.dealer for q in sel], rec.n_asked, store))
        traded = rec.traded
        for q in sel:
            labelled = q.selected and q.outcome in RESOLVED
            ya.append((1.0 if q.outcome in ANSWERED else 0.0) if labelled else math.nan)
            yw.append((1.0 if q.outcome == "won" else 0.0) if labelled else math.nan)
            wr.append(traded and labelled)
            ts.append(rec.ctx.at)
            ids.append(q.id)
            rids.append(rec.id)
            dnames.append(q.dealer)

    store = replay(log, visit)
    n_feat = len(FEATURE_NAMES["fill"])
    x = np.vstack(blocks) if blocks else np.empty((0, n_feat))
    return FillDataset(
        x=x,
        y_answer=np.array(ya),
        y_win=np.array(yw),
        win_rows=np.array(wr, dtype=bool),
        t=np.array(ts),
        ids=ids,
        rfq_ids=rids,
        dealer_names=dnames,
        dealers=names,
        store=store,
    )


def time_split(t: FloatArray, fractions: Sequence[float] = SPLITS) -> list[npt.NDArray[np.intp]]:
    """Row indices of consecutive time blocks (rows of one RFQ share its time, so an RFQ
    never straddles two blocks)."""
    order = np.argsort(t, kind="stable")
    ts = t[order]
    cuts = np.cumsum(fractions)[:-1] * len(t)
    bounds = [0]
    for c in cuts:
        pos = int(c)
        if 0 < pos < len(ts):  # move the cut to the first row of a new time
            pos = int(np.searchsorted(ts, ts[pos], side="left"))
        bounds.append(max(pos, bounds[-1]))
    bounds.append(len(t))
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def _dask_train(
    address: str,
    params: dict[str, Any],
    x: FloatArray,
    y: FloatArray,
    xv: FloatArray,
    yv: FloatArray,
    names: list[str],
    types: list[str],
    rounds: int,
    early: int,
) -> xgb.Booster:
    import dask.array as da
    from distributed import Client
    from xgboost import dask as dxgb

    with Client(address) as client:  # type: ignore[no-untyped-call]
        chunk = max(10_000, len(x) // 8)

        def dm(a: FloatArray, b: FloatArray) -> Any:
            return dxgb.DaskDMatrix(
                client,
                da.from_array(a, chunks=(chunk, a.shape[1])),  # type: ignore[no-untyped-call]
                da.from_array(b, chunks=chunk),  # type: ignore[no-untyped-call]
                feature_names=names,
                feature_types=types,
                enable_categorical=True,
            )

        out = dxgb.train(
            client,
            params,
            dm(x, y),
            num_boost_round=rounds,
            evals=[(dm(xv, yv), "valid")],
            early_stopping_rounds=early,
        )
        booster: xgb.Booster = out["booster"]
        return booster


def fit_head(
    x: FloatArray,
    y: FloatArray,
    t: FloatArray,
    model: str,
    *,
    params: dict[str, Any] | None = None,
    monotone: dict[str, int] | None = None,
    rounds: int = 500,
    early_stopping: int = 30,
    nthread: int = 1,
    calibrators: Sequence[str] = ("none", "platt", "isotonic"),
    dask_address: str | None = None,
) -> tuple[BinaryHead, dict[str, Any]]:
    """Fit one binary head with time-ordered validation and calibration.

    Parameters
    ----------
    x, y, t
        Features (columns :data:`ml.features.FEATURE_NAMES` ``[model]``), labels, row times.
    model
        ``fill`` or ``hit`` (names the feature columns).
    monotone
        Feature name → −1/+1 monotone constraints.
    calibrators
        Calibration maps to choose from on the calibration block.
    nthread
        xgboost threads. 1 by default: on a shared machine OpenMP threads spin-waiting for a
        busy core make two threads several times slower than one (measured 30 s vs 6 s for
        the answer head on 500 000 rows with 2 busy cores); raise it on a dedicated machine.
    dask_address
        Train on this Dask scheduler with xgboost's Dask integration instead of in-process.

    Returns
    -------
    head, info
        The head (booster cut at the best iteration, with its calibration map) and what the
        manifest records: rows per block, time windows, best iteration, metrics.
    """
    names = list(FEATURE_NAMES[model])
    types = feature_types(model)
    p = {**DEFAULT_PARAMS, **(params or {}), "nthread": nthread}
    if monotone:
        p["monotone_constraints"] = "(" + ",".join(str(monotone.get(f, 0)) for f in names) + ")"
    tr, va, ca, te = time_split(t)
    started = time.perf_counter()
    if dask_address:
        booster = _dask_train(
            dask_address, p, x[tr], y[tr], x[va], y[va], names, types, rounds, early_stopping
        )
    else:

        def dm(idx: npt.NDArray[np.intp]) -> xgb.DMatrix:
            return xgb.DMatrix(
                x[idx],
                label=y[idx],
                feature_names=names,
                feature_types=types,
                enable_categorical=True,
                nthread=nthread,
            )

        booster = xgb.train(
            p,
            dm(tr),
            num_boost_round=rounds,
            evals=[(dm(va), "valid")],
            early_stopping_rounds=early_stopping,
            verbose_eval=False,
        )
    seconds = time.perf_counter() - started
    best = int(getattr(booster, "best_iteration", rounds - 1))
    booster = booster[: best + 1]
    head = BinaryHead(booster, nthread=nthread)
    raw_cal = head.raw(x[ca])
    head.calibrator = fit_calibrator(y[ca], raw_cal, calibrators)
    raw_te = head.raw(x[te])
    cal_te = head.calibrator.apply(raw_te)
    head.booster.set_param({"nthread": 1})

    def window(idx: npt.NDArray[np.intp]) -> list[float]:
        return [float(t[idx].min()), float(t[idx].max())] if len(idx) else [math.nan] * 2

    info = {
        "rows": {"train": len(tr), "valid": len(va), "calibration": len(ca), "test": len(te)},
        "windows_epoch_s": {
            "train": window(tr),
            "valid": window(va),
            "calibration": window(ca),
            "test": window(te),
        },
        "best_iteration": best,
        "trees": best + 1,
        "train_seconds": round(seconds, 2),
        "calibration": head.calibrator.kind,
        "metrics": {
            "test_raw": score(y[te], raw_te).as_dict(),
            "test": score(y[te], cal_te).as_dict(),
        },
        "params": {k: v for k, v in p.items() if k != "nthread"},
    }
    return head, info


def train_fill(
    log: Any,
    out_root: Path,
    *,
    nthread: int = 1,
    rounds: int = 500,
    dask_address: str | None = None,
    version: str | None = None,
    params: dict[str, Any] | None = None,
) -> Artifact:
    """Train the fill heads on ``log`` and write the artifact under ``out_root/fill``.

    P(win) is modelled as P(answer) × P(win | answered): the answer head learns from every
    request, the second head only from the answered requests of traded RFQs, which is the
    part that depends on the dealer's price against the desk's reference.
    """
    started = time.perf_counter()
    ds = fill_dataset(log)
    feat_s = time.perf_counter() - started
    answered = ds.y_answer == 1.0
    wga = ds.win_rows & answered
    if len(ds.ids) < 100 or wga.sum() < 50:
        raise ValueError(f"too little data to train: {len(ds.ids)} dealer requests")
    answer, info_a = fit_head(
        ds.x,
        ds.y_answer,
        ds.t,
        "fill",
        nthread=nthread,
        rounds=rounds,
        dask_address=dask_address,
        params=params,
    )
    win_ga, info_w = fit_head(
        ds.x[wga],
        ds.y_win[wga],
        ds.t[wga],
        "fill",
        nthread=nthread,
        rounds=rounds,
        dask_address=dask_address,
        params=params,
    )
    # P(win) on the test block of the traded RFQs, as served: the product of the heads
    w = ds.win_rows
    test = time_split(ds.t[w])[3]
    xw = ds.x[w][test]
    p_win = answer.predict(xw) * win_ga.predict(xw)
    win_scores = score(ds.y_win[w][test], p_win).as_dict()
    lo, hi = log.window()
    manifest = {
        "categories": {
            "dealer": list(ds.dealers),
            "underlying": list(UNDERLYINGS),
            "structure": list(STRUCTURES),
            "side": list(SIDES),
        },
        "feature_types": feature_types("fill"),
        "outputs": {
            "p_answer": "answer",
            "p_win": "answer x win_given_answer: P(the desk fills from the dealer | the "
            "client traded)",
        },
        "heads": {
            "answer": {
                "label": "dealer answered with a tradeable quote (outcome quoted, won "
                "or lost) among resolved selected requests",
                **info_a,
            },
            "win_given_answer": {
                "label": "the desk filled from the dealer (outcome won) "
                "among answered requests of RFQs the client traded",
                **info_w,
            },
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
        "metrics": {
            "answer": info_a["metrics"]["test"],
            "win": win_scores,
            "win_given_answer": info_w["metrics"]["test"],
        },
        "timing_seconds": {
            "features": round(feat_s, 2),
            "total": round(time.perf_counter() - started, 2),
        },
    }
    return save_artifact(
        out_root, "fill", {"answer": answer, "win_given_answer": win_ga}, manifest, version
    )
