"""The served dealer-fill model: P(answer) and P(win) per (RFQ, dealer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ml.features import FILL_FEATURES, FeatureStore, FillFeatures, RfqContext
from ml.registry import Artifact, load_artifact, resolve

__all__ = ["FillModel"]

FloatArray = npt.NDArray[np.float64]
_N_ASKED = FILL_FEATURES.index("n_dealers_asked")


class FillModel:
    """Dealer-fill probabilities from a verified ``fill`` artifact.

    ``p_answer`` is P(the dealer answers the request with a tradeable quote before the
    deadline); ``p_win`` is P(the desk fills from that dealer | the client trades), the
    product of the ``answer`` and ``win_given_answer`` heads.

    Examples
    --------
    >>> model = FillModel.load()                      # the committed default   # doctest: +SKIP
    >>> p_answer, p_win = model.predict(ctx, ["sim-dealer-01"], 4, store)    # doctest: +SKIP
    """

    name = "fill"

    def __init__(self, artifact: Artifact) -> None:
        if artifact.name != self.name:
            raise ValueError(f"not a fill artifact: {artifact.name}")
        self.artifact = artifact
        self.version = f"fill/{artifact.version}"
        self.features = FillFeatures(artifact.manifest["categories"]["dealer"])
        self.answer = artifact.heads["answer"]
        self.win_given_answer = artifact.heads["win_given_answer"]

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> FillModel:
        return cls(artifact)

    @classmethod
    def load(cls, path: Path | None = None, version: str | None = None) -> FillModel:
        """Load ``path`` (or the registered ``version``, default the pinned default)."""
        return cls(load_artifact(path or resolve("fill", version), "fill"))

    def predict_matrix(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(p_answer, p_win) for feature rows ``x`` (columns :data:`FILL_FEATURES`)."""
        p_answer = self.answer.predict(x)
        return p_answer, p_answer * self.win_given_answer.predict(x)

    def predict(
        self, ctx: RfqContext, dealers: Sequence[str], n_asked: int, store: FeatureStore
    ) -> tuple[FloatArray, FloatArray]:
        """(p_answer, p_win) of each dealer (by name) if ``n_asked`` dealers are asked."""
        return self.predict_matrix(self.features.matrix(ctx, dealers, n_asked, store))

    def predictor(
        self, ctx: RfqContext, dealers: Sequence[str], store: FeatureStore
    ) -> Callable[[int], tuple[FloatArray, FloatArray]]:
        """``n_asked -> (p_answer, p_win)`` for :func:`app.dealers.selection.choose_dealers`;
        the features are built once and only the competition column changes."""
        x = self.features.matrix(ctx, dealers, 1, store)

        def predict(n_asked: int) -> tuple[FloatArray, FloatArray]:
            x[:, _N_ASKED] = float(n_asked)
            return self.predict_matrix(x)

        return predict
