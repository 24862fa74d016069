"""Scoring probability models: log-loss, Brier, AUC, reliability, and calibration maps.

Also the evaluation behind ``rfqdesk models evaluate`` and ``predict``: score a registered
model on a log (database or export) next to the simulator's own probabilities when a
``sim_truth`` directory is available, and draw the reliability curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit, logit
from scipy.stats import rankdata

__all__ = [
    "Calibrator",
    "Scores",
    "auc",
    "brier",
    "fit_calibrator",
    "log_loss",
    "reliability",
    "reliability_max_gap",
    "score",
]

FloatArray = npt.NDArray[np.float64]
EPS = 1e-7


def _clip(p: npt.ArrayLike) -> FloatArray:
    return np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean binary cross-entropy (nats)."""
    y_ = np.asarray(y, dtype=np.float64)
    q = _clip(p)
    return float(-np.mean(y_ * np.log(q) + (1.0 - y_) * np.log1p(-q)))


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def auc(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half); NaN with one class."""
    y_ = np.asarray(y, dtype=bool)
    n_pos = int(y_.sum())
    n_neg = len(y_) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(np.asarray(p, dtype=np.float64))
    return float((ranks[y_].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class ReliabilityBin:
    lo: float
    hi: float
    count: int
    mean_predicted: float
    observed: float


def reliability(
    y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10, strategy: str = "quantile"
) -> list[ReliabilityBin]:
    """Reliability table: events grouped by predicted probability (equal-count bins by
    default, or ``strategy="uniform"`` for equal-width bins)."""
    y_ = np.asarray(y, dtype=np.float64)
    p_ = np.asarray(p, dtype=np.float64)
    if len(p_) == 0:
        return []
    if strategy == "quantile":
        edges = np.unique(np.quantile(p_, np.linspace(0.0, 1.0, bins + 1)))
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, p_, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        m = idx == b
        if m.any():
            out.append(
                ReliabilityBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    int(m.sum()),
                    float(p_[m].mean()),
                    float(y_[m].mean()),
                )
            )
    return out


def reliability_max_gap(table: Sequence[ReliabilityBin], min_count: int = 500) -> float:
    """Largest |observed − predicted| over bins holding at least ``min_count`` events."""
    gaps = [abs(b.observed - b.mean_predicted) for b in table if b.count >= min_count]
    return max(gaps) if gaps else math.nan


@dataclass(frozen=True)
class Scores:
    """Scores of one set of probabilities on labels."""

    n: int
    positive_rate: float
    log_loss: float
    brier: float
    auc: float
    reliability_gap: float  # max over bins with >= 500 events (NaN: none)

    def as_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "positive_rate": self.positive_rate,
            "log_loss": self.log_loss,
            "brier": self.brier,
            "auc": self.auc,
            "reliability_gap": self.reliability_gap,
        }


def score(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10, min_count: int = 500) -> Scores:
    """Log-loss, Brier, AUC and the reliability gap of ``p`` on labels ``y``."""
    y_ = np.asarray(y, dtype=np.float64)
    return Scores(
        n=len(y_),
        positive_rate=float(y_.mean()) if len(y_) else math.nan,
        log_loss=log_loss(y_, p),
        brier=brier(y_, p),
        auc=auc(y_, p),
        reliability_gap=reliability_max_gap(reliability(y_, p, bins), min_count),
    )


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibrator:
    """A monotone non-decreasing map of raw probabilities.

    ``kind`` is ``none``, ``platt`` (σ(a·logit p + b), a > 0) or ``isotonic`` (piecewise
    linear through ``x``/``y`` knots, as fitted by pool-adjacent-violators).
    """

    kind: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, p: FloatArray) -> FloatArray:
        if self.kind == "none":
            return p
        if self.kind == "platt":
            out: FloatArray = expit(self.params["a"] * logit(_clip(p)) + self.params["b"])
            return out
        if self.kind == "isotonic":
            res: FloatArray = np.interp(p, self.params["x"], self.params["y"])
            return np.clip(res, EPS, 1.0 - EPS)
        raise ValueError(f"unknown calibrator {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(str(data["kind"]), dict(data.get("params", {})))


def _fit_platt(y: FloatArray, p: FloatArray) -> Calibrator:
    z = logit(_clip(p))

    def nll(theta: FloatArray) -> float:
        return log_loss(y, expit(theta[0] * z + theta[1]))

    res = minimize(
        nll,
        np.array([1.0, 0.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 2000},
    )
    a, b = float(res.x[0]), float(res.x[1])
    if a <= 0:  # keep the map increasing (the hit curve must stay monotone)
        return Calibrator()
    return Calibrator("platt", {"a": a, "b": b})


def _pav(y: FloatArray, w: FloatArray) -> FloatArray:
    """Pool-adjacent-violators: the non-decreasing least-squares fit of ``y``."""
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(y, w, strict=True):
        vals.append(float(yi))
        wts.append(float(wi))
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, s2 = vals.pop(), wts.pop(), sizes.pop()
            v1, w1, s1 = vals.pop(), wts.pop(), sizes.pop()
            wt = w1 + w2
            vals.append((v1 * w1 + v2 * w2) / wt)
            wts.append(wt)
            sizes.append(s1 + s2)
    return np.repeat(np.array(vals), sizes)


def _fit_isotonic(y: FloatArray, p: FloatArray, knots: int = 200) -> Calibrator:
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    # pre-bin into equal-count groups so the map stays small and smooth enough to store
    groups = np.array_split(np.arange(len(ps)), min(knots, len(ps)))
    gx = np.array([ps[g].mean() for g in groups if len(g)])
    gy = np.array([ys[g].mean() for g in groups if len(g)])
    gw = np.array([len(g) for g in groups if len(g)], dtype=np.float64)
    fitted = _pav(gy, gw)
    fitted = np.clip(fitted, EPS, 1.0 - EPS)
    x = np.r_[0.0, gx, 1.0]
    yy = np.r_[fitted[0], fitted, fitted[-1]]
    return Calibrator("isotonic", {"x": x.tolist(), "y": yy.tolist()})


def fit_calibrator(
    y: npt.ArrayLike,
    p: npt.ArrayLike,
    kinds: Sequence[str] = ("none", "platt", "isotonic"),
    min_gain: float = 0.005,
) -> Calibrator:
    """Choose and fit the calibration map that best predicts ``y`` from raw ``p``.

    The data are in time order; each candidate is fitted on the first half and scored on the
    second (log-loss), the winner is refitted on all of it. "none" wins unless a map
    lowers the held-out log-loss by more than ``min_gain`` (relative): boosted trees with a
    logistic loss are close to calibrated, and a map fitted on one short period would
    otherwise chase that period's noise.
    """
    y_ = np.asarray(y, dtype=np.float64)
    p_ = _clip(p)
    half = len(y_) // 2
    fits = {"none": lambda yy, pp: Calibrator(), "platt": _fit_platt, "isotonic": _fit_isotonic}
    base = log_loss(y_[half:], p_[half:])
    best, best_loss = "none", base
    for kind in kinds:
        if kind == "none":
            continue
        cal = fits[kind](y_[:half], p_[:half])
        loss = log_loss(y_[half:], cal.apply(p_[half:]))
        if loss < best_loss and loss < base * (1.0 - min_gain):
            best, best_loss = kind, loss
    return fits[best](y_, p_)


# --------------------------------------------------------------------------- model reports


@dataclass
class HeadPredictions:
    """One output of a model over a log: row ids, labels (NaN: unresolved), predictions and,
    when the simulator's truth is known for the row, its probability (NaN otherwise)."""

    head: str
    ids: list[str]
    y: FloatArray
    p: FloatArray
    truth: FloatArray


@dataclass
class HeadReport:
    head: str
    model: Scores
    truth: Scores | None
    reliability_model: list[ReliabilityBin]
    reliability_truth: list[ReliabilityBin]

    @property
    def log_loss_ratio(self) -> float:
        return self.model.log_loss / self.truth.log_loss if self.truth else math.nan

    @property
    def auc_gap(self) -> float:
        return self.truth.auc - self.model.auc if self.truth else math.nan


@dataclass
class EvalReport:
    name: str
    version: str
    heads: list[HeadReport]
    png: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "heads": {
                h.head: {
                    "model": h.model.as_dict(),
                    "simulator": h.truth.as_dict() if h.truth else None,
                    "log_loss_ratio": h.log_loss_ratio,
                    "auc_gap": h.auc_gap,
                }
                for h in self.heads
            },
            "png": str(self.png) if self.png else None,
        }


def _truth_map(table: Any, column: str) -> dict[str, float]:
    if table is None:
        return {}
    return {
        i: (float(v) if v is not None else math.nan)
        for i, v in zip(table["id"].to_pylist(), table[column].to_pylist(), strict=True)
    }


def model_predictions(
    artifact: Any,
    log: Any,
    truth: dict[str, Any] | None = None,
    include_unresolved: bool = False,
) -> list[HeadPredictions]:
    """Predictions of a ``fill`` or ``hit`` artifact on every labelled row of ``log``.

    Fill: ``answer`` (P(answer), every request) and ``win`` (P(win), requests of traded
    RFQs). Hit: ``hit`` (each quoted side; ids ``<client_quote id>:<side>``).
    """
    truth = truth or {}
    if artifact.name == "fill":
        from ml.fill.model import FillModel
        from ml.fill.train import fill_dataset

        model = FillModel(artifact)
        ds = fill_dataset(log, model.features.dealers, include_unresolved)
        p_answer, p_win = model.predict_matrix(ds.x) if len(ds.ids) else (np.empty(0),) * 2
        ta = _truth_map(truth.get("dealer_request"), "p_answer")
        tw = _truth_map(truth.get("dealer_request"), "p_win")
        y_win = np.where(ds.win_rows, ds.y_win, np.nan)
        return [
            HeadPredictions(
                "answer",
                ds.ids,
                ds.y_answer,
                p_answer,
                np.array([ta.get(i, math.nan) for i in ds.ids]),
            ),
            HeadPredictions(
                "win", ds.ids, y_win, p_win, np.array([tw.get(i, math.nan) for i in ds.ids])
            ),
        ]
    if artifact.name == "hit":
        from ml.hit.model import HitModel
        from ml.hit.train import hit_dataset

        model_h = HitModel(artifact)
        hd = hit_dataset(log, include_unresolved)
        p = model_h.head.predict(hd.x) if len(hd.sides) else np.empty(0)
        tb = _truth_map(truth.get("client_quote"), "p_hit_bid")
        tk = _truth_map(truth.get("client_quote"), "p_hit_ask")
        t = np.array(
            [
                (tk if s == "buy" else tb).get(q, math.nan)
                for q, s in zip(hd.quote_ids, hd.sides, strict=True)
            ]
        )
        return [HeadPredictions("hit", hd.ids, hd.y, p, t)]
    raise ValueError(f"unknown model {artifact.name!r}")


def evaluate(
    artifact: Any,
    log: Any,
    truth: dict[str, Any] | None = None,
    png: Path | None = None,
    bins: int = 10,
    min_count: int = 500,
) -> EvalReport:
    """Score an artifact on a log, next to the simulator's own probabilities where known.

    The model and the simulator are scored on the same rows (those with a truth value when
    there are any, else every labelled row). With ``png``, the reliability curves are drawn
    there.
    """
    heads = []
    for hp in model_predictions(artifact, log, truth):
        labelled = np.isfinite(hp.y)
        with_truth = labelled & np.isfinite(hp.truth)
        rows = with_truth if with_truth.any() else labelled
        y, p = hp.y[rows], hp.p[rows]
        model_scores = score(y, p, bins, min_count)
        truth_scores = score(y, hp.truth[rows], bins, min_count) if with_truth.any() else None
        heads.append(
            HeadReport(
                hp.head,
                model_scores,
                truth_scores,
                reliability(y, p, bins),
                reliability(y, hp.truth[rows], bins) if truth_scores else [],
            )
        )
    report = EvalReport(artifact.name, artifact.version, heads)
    if png is not None:
        plot_reliability(report, png)
        report.png = png
    return report


def plot_reliability(report: EvalReport, path: Path) -> None:
    """Draw the reliability curves of ``report`` (model and simulator) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(report.heads)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 5.0), squeeze=False)
    for ax, h in zip(axes[0], report.heads, strict=True):
        ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="perfect")
        xs = np.linspace(0, 1, 2)
        ax.fill_between(xs, xs - 0.03, xs + 0.03, color="0.85", label="±0.03")
        for bins_, label, style in (
            (h.reliability_model, "model", "o-"),
            (h.reliability_truth, "simulator (truth)", "s--"),
        ):
            if bins_:
                ax.plot(
                    [b.mean_predicted for b in bins_],
                    [b.observed for b in bins_],
                    style,
                    ms=4,
                    label=label,
                )
        title = f"{report.name}:{h.head}  n={h.model.n}"
        sub = f"log-loss {h.model.log_loss:.4f}"
        if h.truth:
            sub += f" (sim {h.truth.log_loss:.4f}, ×{h.log_loss_ratio:.3f})"
        ax.set_title(f"{title}\n{sub}", fontsize=9)
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"reliability — {report.name} {report.version}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_predictions_csv(artifact: Any, log: Any, out: Path) -> int:
    """Write, for every dealer request (fill) or client quote (hit) of ``log``, its id and
    the predicted probabilities to ``out`` (CSV). Returns the number of rows written."""
    import csv

    preds = model_predictions(artifact, log, include_unresolved=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        if artifact.name == "fill":
            answer, win = preds
            w.writerow(["dealer_request_id", "p_answer", "p_win", "model_version"])
            for i, pa, pw in zip(answer.ids, answer.p, win.p, strict=True):
                w.writerow([i, f"{pa:.6f}", f"{pw:.6f}", f"fill/{artifact.version}"])
            return len(answer.ids)
        (hit,) = preds
        by_quote: dict[str, dict[str, float]] = {}
        for rid, p in zip(hit.ids, hit.p, strict=True):
            qid, side = rid.rsplit(":", 1)
            by_quote.setdefault(qid, {})[side] = float(p)
        w.writerow(["client_quote_id", "p_hit_bid", "p_hit_ask", "model_version"])
        for qid, sides in by_quote.items():
            bid, ask = sides.get("sell"), sides.get("buy")
            w.writerow(
                [
                    qid,
                    "" if bid is None else f"{bid:.6f}",
                    "" if ask is None else f"{ask:.6f}",
                    f"hit/{artifact.version}",
                ]
            )
        return len(by_quote)


# --------------------------------------------------------------------------- selection


@dataclass
class SelectionReport:
    """Expected fills captured by model-driven selection against selection with the
    simulator's true probabilities, at the same number of dealers asked.

    ``capture[k]`` is Σ F_true(S_model) / Σ F_true(S_oracle) over the RFQs scored, where
    F_true(S) = 1 − Π_{j∈S}(1 − P_true(win)ⱼ) evaluated at |S| dealers asked; key ``"chosen"``
    lets the model choose k (leak cost) and gives the oracle the same k. ``dealer_fills``
    is the same ratio for Σ P_true(win) (expected number of dealer fills); ``random`` the
    capture of a uniformly random choice of k eligible dealers (for scale).
    """

    rfqs: int
    capture: dict[str, float]
    dealer_fills: dict[str, float]
    random: dict[str, float]
    mean_k: float


def evaluate_selection(
    model: Any,
    result: Any,
    params: Any = None,
    ks: Sequence[int] = (1, 2, 3, 5),
    skip_days: float = 3.0,
    max_rfqs: int = 3000,
    seed: int = 0,
) -> SelectionReport:
    """Score dealer selection with ``model`` (a :class:`ml.fill.model.FillModel`) on a
    simulation ``result`` (:class:`ml.sim.SimResult`), against the oracle.

    Features come from replaying the simulated log (point in time); RFQs of the first
    ``skip_days`` (no history yet) are skipped and at most ``max_rfqs`` are scored.
    """
    from app.dealers.selection import Candidate, SelectionParams, choose_dealers
    from ml.export import LogData
    from ml.features import replay

    params = params or SelectionParams()
    oracle = result.oracle
    row_of = {rid: i for i, rid in enumerate(oracle.rfq_ids)}
    names = oracle.dealer_names
    t0 = float(oracle.t_days.min()) if len(oracle.t_days) else 0.0
    eligible_rows = [
        i
        for i in range(len(oracle.rfq_ids))
        if oracle.t_days[i] >= t0 + skip_days and oracle.eligible[i].sum() >= 2
    ]
    rng = np.random.default_rng(seed)
    pick = (
        set(
            rng.choice(
                eligible_rows, size=min(max_rfqs, len(eligible_rows)), replace=False
            ).tolist()
        )
        if eligible_rows
        else set()
    )
    keys = [str(k) for k in ks] + ["chosen"]
    fm: dict[str, float] = dict.fromkeys(keys, 0.0)
    fo: dict[str, float] = dict.fromkeys(keys, 0.0)
    sm: dict[str, float] = dict.fromkeys(keys, 0.0)
    so: dict[str, float] = dict.fromkeys(keys, 0.0)
    fr: dict[str, float] = dict.fromkeys(keys, 0.0)
    chosen_k: list[int] = []

    def visit(rec: Any, store: Any) -> None:
        i = row_of.get(rec.id)
        if i is None or i not in pick:
            return
        idx = np.flatnonzero(oracle.eligible[i])
        dnames = [names[j] for j in idx]
        cands = [Candidate(n, n) for n in dnames]
        rows = np.full(len(idx), i)

        def truth(n: int) -> tuple[FloatArray, FloatArray]:
            tr = oracle.truth(rows, idx, np.full(len(idx), n))
            return tr.p_answer, tr.p_win

        model_predict = model.predictor(rec.ctx, dnames, store)
        chosen = choose_dealers(cands, model_predict, params)
        chosen_k.append(chosen.k)
        for key in keys:
            k = chosen.k if key == "chosen" else min(int(key), len(idx))
            if k == 0:
                continue
            sel_m = chosen if key == "chosen" else choose_dealers(cands, model_predict, params, k=k)
            sel_o = choose_dealers(cands, truth, params, k=k)
            q = truth(k)[1]
            pos = {n: j for j, n in enumerate(dnames)}
            qm = q[[pos[d.name] for d in sel_m.selected]]
            qo = q[[pos[d.name] for d in sel_o.selected]]
            qr = q[rng.choice(len(idx), size=k, replace=False)]
            fm[key] += expected_fill(qm)
            fo[key] += expected_fill(qo)
            fr[key] += expected_fill(qr)
            sm[key] += float(qm.sum())
            so[key] += float(qo.sum())

    from app.dealers.selection import expected_fill

    replay(LogData(result.tables), visit)
    return SelectionReport(
        rfqs=len(chosen_k),
        capture={k: fm[k] / fo[k] if fo[k] else math.nan for k in keys},
        dealer_fills={k: sm[k] / so[k] if so[k] else math.nan for k in keys},
        random={k: fr[k] / fo[k] if fo[k] else math.nan for k in keys},
        mean_k=float(np.mean(chosen_k)) if chosen_k else math.nan,
    )
