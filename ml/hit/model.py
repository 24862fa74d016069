"""The served client hit model: the ``HitCurve`` of :mod:`app.pricing.hit`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ml.axis import AxisEnsemble, markup_cuts
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
        # whole curves per context, to the bit the booster's (None: row by row through xgboost)
        self._axis = _axis_of(artifact)
        self._cuts = self._axis.cuts if self._axis is not None else markup_cuts(self.head.booster)

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

    def _along_axis(
        self, axis: AxisEnsemble, m: FloatArray, ctxs: Sequence[HitQuery]
    ) -> list[FloatArray]:
        rows = np.vstack([hit_matrix(ctx, m[:1], self.store) for ctx in ctxs])
        cells = axis.cells(m)
        order = np.argsort(m, kind="stable")
        p = self.head.calibrator.apply(axis.probabilities(rows))
        out = []
        for row in p:
            curve = np.empty(len(m))
            curve[order] = np.minimum.accumulate(row[cells[order]])
            out.append(curve)
        return out

    def curves(self, markups: FloatArray, ctxs: Sequence[HitQuery]) -> list[FloatArray]:
        """:meth:`probabilities` for each context.

        Through :class:`ml.axis.AxisEnsemble` when the booster allows it: each context's
        other features walk each tree once and give the probability in every markup cell, the
        same numbers as the booster's. Otherwise from one booster call:

        The markup is the only feature that varies along a curve, and a tree sends a row
        left or right by comparing it (as float32, like xgboost) with its split values. Two
        markups with the same number of split values at or below them therefore follow the
        same path in every tree and get the same prediction: only one markup per such cell
        is evaluated (about 90 rows of the 141-point pricing grid), exactly.
        """
        m = np.asarray(markups, dtype=np.float64)
        if not ctxs:
            return []
        if m.size == 0:
            return [np.empty(0) for _ in ctxs]
        if self._axis is not None and not np.isnan(m).any():
            return self._along_axis(self._axis, m, ctxs)
        order = np.argsort(m, kind="stable")
        cells = np.searchsorted(self._cuts, m[order].astype(np.float32), side="right")
        first = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])  # one row per cell
        expand = np.cumsum(np.r_[False, cells[1:] != cells[:-1]])
        reps = m[order][first]
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


_AXES: dict[tuple[str, ...], AxisEnsemble | None] = {}


def _axis_of(artifact: Artifact) -> AxisEnsemble | None:
    """The artifact's hit booster along the markup, built (and checked) once per artifact
    version and model files (their sha256, verified when the artifact was loaded): it holds
    only arrays read from the booster. Any failure to build means row by row in xgboost."""
    files = artifact.manifest.get("files", {})
    key = (artifact.version, *sorted(f"{k}:{v}" for k, v in files.items()))
    if key not in _AXES:
        try:
            _AXES[key] = AxisEnsemble.build(artifact.heads["hit"].booster, feature=0)
        except Exception:  # an unexpected model layout: the booster still serves
            _AXES[key] = None
    return _AXES[key]
