"""The served client hit model: the ``HitCurve`` of :mod:`app.pricing.hit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

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
        m = np.asarray(markups, dtype=np.float64)
        order = np.argsort(m, kind="stable")
        p = self.head.predict(hit_matrix(ctx, m[order], self.store))
        p = np.minimum.accumulate(p)
        out = np.empty_like(p)
        out[order] = p
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
