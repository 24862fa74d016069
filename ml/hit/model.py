"""The served client hit model: the ``HitCurve`` of :mod:`app.pricing.hit`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from ml.features import FeatureStore, HitQuery, hit_matrix
from ml.registry import Artifact, ModelSlot, load_artifact, resolve

__all__ = ["HitModel", "LiveHitCurve"]

FloatArray = npt.NDArray[np.float64]


class HitModel:
    """P(client trades | markup, RFQ) from a verified ``hit`` artifact.

    Implements ``app.pricing.hit.HitCurve``: :meth:`probabilities` takes markups in
    gross-vega vol points and a ``HitContext`` and returns a curve that is non-increasing in
    the markup (xgboost's monotone constraint, a Platt map with a positive slope, and a
    running minimum against rounding).

    Parameters
    ----------
    artifact
        A loaded ``hit`` artifact.
    store
        Trailing client statistics (the service's :class:`ml.features.FeatureStore`);
        without one, every client looks new.

    Notes
    -----
    ``ctx.extra`` should carry ``rfq_side`` (the request's side: ``two_way`` requests are
    traded on each side about half as often) and may carry ``n_legs`` and ``at``.
    """

    name = "hit"

    def __init__(self, artifact: Artifact, store: FeatureStore | None = None) -> None:
        if artifact.name != self.name:
            raise ValueError(f"not a hit artifact: {artifact.name}")
        self.artifact = artifact
        self.version = f"hit/{artifact.version}"
        self.head = artifact.heads["hit"]
        self.store = store
        self._cuts = markup_cuts(self.head.booster)

    @classmethod
    def from_artifact(cls, artifact: Artifact, store: FeatureStore | None = None) -> HitModel:
        return cls(artifact, store)

    @classmethod
    def load(
        cls, path: Path | None = None, version: str | None = None, store: FeatureStore | None = None
    ) -> HitModel:
        """Load ``path`` (or the registered ``version``, default the pinned default)."""
        return cls(load_artifact(path or resolve("hit", version), "hit"), store)

    def probabilities(self, markups: FloatArray, ctx: HitQuery) -> FloatArray:
        """P(hit) at each markup (gross-vega vol points), non-increasing in the markup."""
        return self.curves(markups, [ctx])[0]

    def curves(self, markups: FloatArray, ctxs: Sequence[HitQuery]) -> list[FloatArray]:
        """:meth:`probabilities` for each context, from one booster call.

        The markup is the only feature that varies along a curve, and a tree sends a row
        left or right by comparing it (as float32, like xgboost) with its split values. Two
        markups with the same number of split values at or below them therefore follow the
        same path in every tree and get the same prediction: only one markup per such cell
        is evaluated (about 90 rows of the 141-point pricing grid), exactly.
        """
        m = np.asarray(markups, dtype=np.float64)
        order = np.argsort(m, kind="stable")
        cells = np.searchsorted(self._cuts, m[order].astype(np.float32), side="right")
        first = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])  # one row per cell
        expand = np.cumsum(np.r_[False, cells[1:] != cells[:-1]])
        reps = m[order][first]
        if not ctxs:
            return []
        x = np.vstack([hit_matrix(ctx, reps, self.store) for ctx in ctxs])
        p = self.head.predict(x).reshape(len(ctxs), len(reps))
        out = []
        for row in p:
            curve = np.empty(len(m))
            curve[order] = np.minimum.accumulate(row)[expand]
            out.append(curve)
        return out


class LiveHitCurve:
    """A ``HitCurve`` that always uses the model a :class:`ml.registry.ModelSlot` serves now,
    so the pricing service follows promotions without being rebuilt.

    Examples
    --------
    >>> slot = ModelSlot("hit", lambda a: HitModel(a, store))          # doctest: +SKIP
    >>> pricing = PricingService(feed, LiveHitCurve(slot), settings)   # doctest: +SKIP
    """

    def __init__(self, slot: ModelSlot[HitModel]) -> None:
        self.slot = slot

    @property
    def version(self) -> str:
        return self.slot.model.version

    def probabilities(self, markups: FloatArray, ctx: HitQuery) -> FloatArray:
        return self.slot.model.probabilities(markups, ctx)

    def curves(self, markups: FloatArray, ctxs: Sequence[HitQuery]) -> list[FloatArray]:
        return self.slot.model.curves(markups, ctxs)


def markup_cuts(booster: xgb.Booster, feature: int = 0) -> npt.NDArray[np.float32]:
    """The sorted distinct split values on ``feature`` (the markup) over all the trees, as
    float32 (what xgboost compares a row's value with: left when ``value < split``)."""
    model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
    cuts = [
        cond
        for tree in model["trees"]
        for left, index, cond in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"], strict=True
        )
        if left != -1 and index == feature
    ]
    return np.unique(np.asarray(cuts, dtype=np.float32))
