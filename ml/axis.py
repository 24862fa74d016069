"""A boosted tree ensemble evaluated along one feature: a whole curve per row of the others.

The hit model is asked for P(hit) at ~140 markups for each side of every quote, with every
other feature fixed. Sent to xgboost that is one row per markup cell (~90 per side), each
walking all 64 trees. Here each row of the *other* features walks each tree once: a split on
another feature is decided once per row, a split on the markup is known in advance to send
one contiguous range of markup cells each way. So, built once from the booster, every leaf
carries the range of markup cells that can reach it and the decisions on the other features
its path needs; per row, the leaves whose decisions hold partition the cells of each tree, and
the margin of every cell is the base score plus the trees' leaves summed in tree order in
float32, as xgboost sums them. The result is the booster's prediction to the bit (checked
against the booster when built, and by ``tests/ml/test_axis.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from scipy.special import expit

__all__ = ["AxisEnsemble", "markup_cuts"]

FloatArray = npt.NDArray[np.float64]
F32 = np.float32


def markup_cuts(booster: xgb.Booster, feature: int = 0) -> npt.NDArray[np.float32]:
    """The sorted distinct split values on ``feature`` over all the trees, as float32 (what
    xgboost compares a row's value with: left when ``value < split``)."""
    learner = json.loads(booster.save_raw("json"))["learner"]
    return _cuts(learner["gradient_booster"]["model"]["trees"], feature)


def _cuts(trees: list[dict], feature: int) -> npt.NDArray[np.float32]:  # type: ignore[type-arg]
    cuts = [
        cond
        for tree in trees
        for left, index, cond in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"], strict=True
        )
        if left != -1 and index == feature
    ]
    return np.unique(np.asarray(cuts, dtype=np.float32))


@dataclass(frozen=True)
class _Leaves:
    """Every leaf of every tree, ordered by tree then by its first markup cell."""

    value: npt.NDArray[np.float32]  # the leaf value
    cells: npt.NDArray[np.intp]  # how many markup cells reach it (0 when none can)
    path: npt.NDArray[np.intp]  # (leaves, 8·words) decision nodes above it, padded
    goes_left: npt.NDArray[np.bool_]  # (leaves, 8·words) the way its path goes at each


class AxisEnsemble:
    """A ``binary:logistic`` gbtree booster's predictions along one numeric feature.

    Use :meth:`build`, which returns ``None`` for a booster this does not cover (another
    objective or booster, vector leaves, a categorical split on the axis feature) or that
    fails the check against the booster; callers then use the booster row by row.

    ``cuts`` are the distinct split values on the axis feature; a value's cell is the number
    of cuts at or below it (in float32), and every value of a cell gets the same prediction.
    :meth:`probabilities` returns, for each row, the probability in every cell.
    """

    def __init__(self, booster: xgb.Booster, feature: int = 0) -> None:
        learner = json.loads(booster.save_raw("json"))["learner"]
        gb = learner["gradient_booster"]
        if learner["objective"]["name"] != "binary:logistic" or gb["name"] != "gbtree":
            raise ValueError("only binary:logistic gbtree boosters")
        model = gb["model"]
        if any(int(i) != 0 for i in model["tree_info"]):
            raise ValueError("only one output group")
        base = float(learner["learner_model_param"]["base_score"].strip("[]"))
        # xgboost keeps the base score as a probability and starts every margin at its logit
        self.base = F32(-np.log(F32(1.0) / F32(base) - F32(1.0)))
        types = booster.feature_types or ["q"] * booster.num_features()
        self.categorical = np.array([t == "c" for t in types])
        if self.categorical[feature]:
            raise ValueError("the axis feature must be numerical")
        self.feature = feature
        self.n_features = booster.num_features()
        self.cuts = _cuts(model["trees"], feature)
        self.n_trees = len(model["trees"])
        self._build(model["trees"])

    @classmethod
    def build(cls, booster: xgb.Booster, feature: int = 0, probes: int = 48) -> AxisEnsemble | None:
        """The ensemble, or ``None`` if unsupported or if it disagrees with the booster on
        ``probes`` random rows (every cell, rows one and two at a time as served)."""
        try:
            axis = cls(booster, feature)
        except (ValueError, KeyError):
            return None
        return axis if axis.agrees_with(booster, probes) else None

    # ------------------------------------------------------------------ construction

    def _build(self, trees: list[dict]) -> None:  # type: ignore[type-arg]
        n_cells = len(self.cuts) + 1
        num_feat: list[int] = []
        num_cond: list[float] = []
        num_left: list[bool] = []
        cat_feat: list[int] = []
        cat_left: list[bool] = []
        cat_sets: list[set[int]] = []
        leaves: list[tuple[int, int, float, int, int, list[tuple[tuple[str, int], bool]]]] = []
        for t, tree in enumerate(trees):
            if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
                raise ValueError("vector leaves")
            left, right = tree["left_children"], tree["right_children"]
            index, cond = tree["split_indices"], tree["split_conditions"]
            default, kind = tree["default_left"], tree["split_type"]
            cats = {
                node: set(tree["categories"][seg : seg + size])
                for node, seg, size in zip(
                    tree["categories_nodes"],
                    tree["categories_segments"],
                    tree["categories_sizes"],
                    strict=True,
                )
            }
            stack: list[tuple[int, int, int, list[tuple[tuple[str, int], bool]]]] = [
                (0, 0, n_cells - 1, [])
            ]
            while stack:
                node, lo, hi, path = stack.pop()
                if left[node] == -1:
                    leaves.append((t, lo, float(cond[node]), lo, hi, path))
                    continue
                if index[node] == self.feature:
                    if kind[node] != 0:
                        raise ValueError("categorical split on the axis feature")
                    # value < cut[r] exactly when the value's cell is r or less
                    r = int(np.searchsorted(self.cuts, F32(cond[node])))
                    stack.append((left[node], lo, min(hi, r), path))
                    stack.append((right[node], max(lo, r + 1), hi, path))
                    continue
                if kind[node] == 1:
                    ref = ("c", len(cat_feat))
                    cat_feat.append(index[node])
                    cat_left.append(bool(default[node]))
                    cat_sets.append(cats.get(node, set()))
                else:
                    ref = ("n", len(num_feat))
                    num_feat.append(index[node])
                    num_cond.append(cond[node])
                    num_left.append(bool(default[node]))
                stack.append((left[node], lo, hi, [*path, (ref, True)]))
                stack.append((right[node], lo, hi, [*path, (ref, False)]))

        n_num, n_cat = len(num_feat), len(cat_feat)
        self._num_feat = np.asarray(num_feat, dtype=np.intp)
        self._num_cond = np.asarray(num_cond, dtype=np.float32)
        self._num_left = np.asarray(num_left, dtype=bool)
        self._cat_feat = np.asarray(cat_feat, dtype=np.intp)
        self._cat_left = np.asarray(cat_left, dtype=bool)
        # categories at or above n_codes - 1 are in no node's set: xgboost sends them left,
        # like negative ones; a node sends the categories in its set right
        self._n_codes = max((max(s) for s in cat_sets if s), default=-1) + 2
        table = np.ones((n_cat, self._n_codes), dtype=bool)
        for k, chosen in enumerate(cat_sets):
            table[k, sorted(chosen)] = False
        self._cat_table = table.ravel()
        self._cat_row = np.arange(n_cat, dtype=np.intp) * self._n_codes
        self._n_decisions = n_num + n_cat  # decisions[n_decisions] is always True (padding)

        leaves.sort(key=lambda leaf: (leaf[0], leaf[1]))
        depth = max((len(leaf[5]) for leaf in leaves), default=0)
        width = 8 * max(1, math.ceil(depth / 8))  # bytes of a path, viewed as uint64 words
        paths = np.full((len(leaves), width), self._n_decisions, dtype=np.intp)
        ways = np.ones((len(leaves), width), dtype=bool)
        for i, (*_, steps) in enumerate(leaves):
            for k, ((kind_, j), way) in enumerate(steps):
                paths[i, k] = j if kind_ == "n" else n_num + j
                ways[i, k] = way
        self._leaves = _Leaves(
            value=np.asarray([leaf[2] for leaf in leaves], dtype=np.float32),
            cells=np.asarray([max(leaf[4] - leaf[3] + 1, 0) for leaf in leaves], dtype=np.intp),
            path=paths,
            goes_left=ways,
        )

    # ------------------------------------------------------------------ evaluation

    def cells(self, values: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Each value's cell: the number of cuts at or below it, compared in float32."""
        out: npt.NDArray[np.intp] = np.searchsorted(
            self.cuts, np.asarray(values, dtype=np.float32), side="right"
        )
        return out

    def _decisions(self, row: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Which way (True: left) every split on another feature sends ``row``."""
        n_num = len(self._num_feat)
        out = np.empty(self._n_decisions + 1, dtype=bool)
        out[-1] = True
        v = row.take(self._num_feat)
        out[:n_num] = v < self._num_cond
        missing = np.isnan(row)
        if missing.any():
            out[:n_num] |= np.isnan(v) & self._num_left
        if len(self._cat_feat):
            codes = np.full(self.n_features, self._n_codes - 1, dtype=np.intp)
            ok = self.categorical & ~missing & (row >= 0)
            codes[ok] = np.minimum(row[ok], self._n_codes - 1).astype(np.intp)
            way = self._cat_table.take(self._cat_row + codes.take(self._cat_feat))
            if missing.any():
                gone = missing.take(self._cat_feat)
                way = np.where(gone, self._cat_left, way)
            out[n_num:-1] = way
        return out

    def margins(self, rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """(rows, cells) float32 margins; the axis feature's column of ``rows`` is ignored."""
        x = np.atleast_2d(np.asarray(rows, dtype=np.float64)).astype(np.float32)
        leaves = self._leaves
        n_cells = len(self.cuts) + 1
        acc = np.empty((x.shape[0], self.n_trees + 1, n_cells), dtype=np.float32)
        acc[:, 0] = self.base
        for i, row in enumerate(x):
            decisions = self._decisions(row)
            wrong = decisions.take(leaves.path) ^ leaves.goes_left
            reached = (wrong.view(np.uint64) == 0).all(axis=1)
            acc[i, 1:] = np.repeat(leaves.value[reached], leaves.cells[reached]).reshape(
                self.n_trees, n_cells
            )
        # tree by tree, in order, in float32: xgboost's sum to the bit
        return np.add.reduce(acc, axis=1)  # type: ignore[no-any-return]

    def probabilities(self, rows: npt.ArrayLike) -> FloatArray:
        """(rows, cells) P(y = 1) as xgboost computes it: 1 / (1 + expf(−margin)) in
        float32, with −margin capped at 88.7. SciPy's float32 ``expit`` is that formula on
        the C library's ``expf``, as xgboost's is; ``np.exp`` differs in the last bit."""
        p: FloatArray = expit(np.maximum(self.margins(rows), F32(-88.7))).astype(np.float64)
        return p

    # ------------------------------------------------------------------ checking

    def agrees_with(self, booster: xgb.Booster, probes: int = 48, seed: int = 0) -> bool:
        """Whether every cell of ``probes`` random rows gets the booster's own probability
        (to the bit). Rows mix split values and their float32 neighbours, missing values and
        unknown categories, and are evaluated one and two at a time as served."""
        rng = np.random.default_rng(seed)
        conds = np.concatenate([self._num_cond, [F32(0.0)]])
        rows = np.empty((probes, self.n_features))
        for j in range(self.n_features):
            if self.categorical[j]:
                col = rng.integers(-1, self._n_codes + 1, size=probes).astype(np.float64)
            else:
                mine = conds[np.r_[self._num_feat == j, False]]
                pool = mine if mine.size else conds
                pick = pool[rng.integers(0, pool.size, size=probes)]
                away = np.where(rng.random(probes) < 0.5, -np.inf, np.inf).astype(np.float32)
                col = np.nextafter(pick, away)  # the float32 neighbour
                col = np.where(rng.random(probes) < 0.5, pick, col).astype(np.float64)
            col[rng.random(probes) < 0.08] = np.nan
            rows[:, j] = col
        at = np.r_[self.cuts[0] - 1.0 if len(self.cuts) else 0.0, self.cuts].astype(np.float64)
        got = np.vstack([self.probabilities(rows[i : i + 2]) for i in range(0, probes, 2)])
        if not np.array_equal(self.probabilities(rows[:1])[0], got[0]):
            return False
        for i, row in enumerate(rows):
            grid = np.tile(row, (len(at), 1))
            grid[:, self.feature] = at
            want = np.asarray(booster.inplace_predict(grid), dtype=np.float64)
            if not np.array_equal(got[i], want):
                return False
        return True
