"""The client hit-probability seam: P(client trades | markup, RFQ).

Until a trained model is promoted, a logistic curve with configured parameters serves; the
trained xgboost hit model implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HitContext:
    """What a hit model may know about the request being quoted (no outcome information)."""

    underlying: str
    structure: str
    side: str  # the client's side of this price: "buy" (our ask) or "sell" (our bid)
    quantity: float
    notional_usd: float
    gross_vega_usd: float
    tenor_days: float
    client: str | None
    extra: dict[str, Any] | None = None


class HitCurve(Protocol):
    @property
    def version(self) -> str: ...

    def probabilities(self, markups: FloatArray, ctx: HitContext) -> FloatArray:
        """P(hit) at each markup (gross-vega vol points); non-increasing in the markup."""
        ...

    def curves(self, markups: FloatArray, ctxs: Sequence[HitContext]) -> list[FloatArray]:
        """:meth:`probabilities` for several contexts (a quote's two sides) in one go."""
        ...


@dataclass(frozen=True)
class LogisticHitCurve:
    """f(δ) = 1 / (1 + exp(α + βδ)): Fermanian–Guéant–Pu's logistic win probability."""

    alpha: float
    beta: float
    version: str = "logistic-config"

    def probabilities(self, markups: FloatArray, ctx: HitContext) -> FloatArray:
        z = np.clip(self.alpha + self.beta * markups, -700.0, 700.0)
        out: FloatArray = 1.0 / (1.0 + np.exp(z))
        return out

    def curves(self, markups: FloatArray, ctxs: Sequence[HitContext]) -> list[FloatArray]:
        return [self.probabilities(markups, ctx) for ctx in ctxs]
