"""Dealer ranking and selection: which dealers to ask for one RFQ, and why (pure, no I/O).

Each eligible dealer j comes with P(answer)ⱼ (a tradeable quote before the deadline) and
P(win)ⱼ (the desk fills from j if the client trades). Asking a set S covers the trade with
probability ``F(S) = 1 − Π_{j∈S} (1 − P(win)ⱼ)`` (dealers decide independently given the
RFQ), and every dealer asked leaks information about the client's interest at a cost ``c``
(in units of the value ``V`` of a covered trade). The best set of k dealers is the k with the
highest P(win) (F is increasing in each term), and the k-th adds
``m_k = P(win)_k Π_{i<k} (1 − P(win)_i)``, which falls with k; so the optimum asks every
dealer whose marginal value ``V m_k`` exceeds ``c``, within ``[min_dealers, max_dealers]``.

P(win) depends on how many dealers are asked (dealers answer less and quote tighter in a
crowd), so :func:`choose_dealers` predicts at a planned count first, chooses k, and — when k
differs — ranks again with probabilities predicted at k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Candidate",
    "RankedDealer",
    "Selection",
    "SelectionParams",
    "choose_dealers",
    "expected_fill",
    "greedy_order",
]

FloatArray = npt.NDArray[np.float64]
Predictor = Callable[[int], tuple[FloatArray, FloatArray]]
"""``n_asked -> (p_answer, p_win)`` over the eligible candidates, in their order."""


@dataclass(frozen=True)
class SelectionParams:
    """How many dealers to ask.

    Parameters
    ----------
    leak_cost
        Cost of asking one more dealer (information leakage), in units of ``fill_value``.
    fill_value
        Value of covering the trade with a dealer rather than working it on lit venues.
    min_dealers, max_dealers
        Bounds on the number asked (when that many are eligible).
    planned_dealers
        Competition assumed for the first prediction pass.
    """

    leak_cost: float = 0.04
    fill_value: float = 1.0
    min_dealers: int = 1
    max_dealers: int = 8
    planned_dealers: int = 3

    def __post_init__(self) -> None:
        if self.leak_cost < 0 or self.fill_value <= 0:
            raise ValueError("leak_cost must be >= 0 and fill_value > 0")
        if not 1 <= self.min_dealers <= self.max_dealers:
            raise ValueError("need 1 <= min_dealers <= max_dealers")
        if self.planned_dealers < 1:
            raise ValueError("planned_dealers must be >= 1")


@dataclass(frozen=True)
class Candidate:
    """A dealer that could be asked; ``eligible=False`` with the reason when it cannot."""

    dealer_id: str
    name: str
    eligible: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class RankedDealer:
    """One dealer's place in the ranking, its probabilities, and the decision's reason."""

    dealer_id: str
    name: str
    rank: int | None
    p_answer: float | None
    p_win: float | None
    marginal_fill: float | None
    selected: bool
    reason: str


@dataclass(frozen=True)
class Selection:
    """The ranking of one RFQ's dealers and the ones to ask.

    ``expected_fill`` is F(S), the probability that a selected dealer covers the trade;
    ``expected_dealer_fills`` is Σ P(win) over the selected; ``net_value`` is
    ``V F(S) − c |S|``.
    """

    dealers: tuple[RankedDealer, ...]
    k: int
    n_asked_assumed: int
    expected_fill: float
    expected_dealer_fills: float
    net_value: float
    model_version: str = ""

    @property
    def selected(self) -> tuple[RankedDealer, ...]:
        return tuple(d for d in self.dealers if d.selected)


def greedy_order(p_answer: FloatArray, p_win: FloatArray) -> npt.NDArray[np.intp]:
    """Indices by P(win) descending, ties broken by P(answer) descending."""
    return np.lexsort((-np.asarray(p_answer), -np.asarray(p_win)))


def expected_fill(p_win: FloatArray) -> float:
    """F(S) = 1 − Π (1 − P(win)) of the dealers in ``p_win``."""
    return float(1.0 - np.prod(1.0 - np.clip(np.asarray(p_win), 0.0, 1.0)))


def _marginals(p_sorted: FloatArray) -> FloatArray:
    q = np.clip(p_sorted, 0.0, 1.0)
    before = np.concatenate(([1.0], np.cumprod(1.0 - q)[:-1]))
    out: FloatArray = q * before
    return out


def _choose_k(marg: FloatArray, params: SelectionParams) -> int:
    n = len(marg)
    lo, hi = min(params.min_dealers, n), min(params.max_dealers, n)
    worth = marg * params.fill_value > params.leak_cost
    k = int(np.argmin(worth)) if not worth.all() else n  # marginals fall: first "no"
    return max(lo, min(hi, k))


def choose_dealers(
    candidates: Sequence[Candidate],
    predict: Predictor,
    params: SelectionParams | None = None,
    *,
    k: int | None = None,
    model_version: str = "",
) -> Selection:
    """Rank the eligible candidates and choose the dealers to ask.

    Parameters
    ----------
    candidates
        Every dealer considered, eligible or not (ineligible ones are listed with their
        reason and never asked).
    predict
        ``n_asked -> (p_answer, p_win)`` over the eligible candidates in their given order
        (:meth:`ml.fill.model.FillModel.predictor`; the simulator's truth for an oracle).
    params
        Leak cost, value and bounds.
    k
        Ask exactly this many (capped by the eligible count) instead of choosing.
    model_version
        Recorded on the result.

    Returns
    -------
    Selection
        Eligible dealers in rank order, then ineligible ones; each with a reason.
    """
    params = params or SelectionParams()
    eligible = [c for c in candidates if c.eligible]
    n = len(eligible)
    others = tuple(
        RankedDealer(
            c.dealer_id,
            c.name,
            None,
            None,
            None,
            None,
            False,
            f"not eligible: {c.reason or 'excluded'}",
        )
        for c in candidates
        if not c.eligible
    )
    if n == 0:
        return Selection(others, 0, 0, 0.0, 0.0, 0.0, model_version)
    planned = min(k if k is not None else params.planned_dealers, n)
    p_ans, p_win = predict(planned)
    order = greedy_order(p_ans, p_win)
    marg = _marginals(p_win[order])
    chosen = min(k, n) if k is not None else _choose_k(marg, params)
    assumed = planned
    if chosen != planned:  # the probabilities depend on the competition: re-rank at k
        p_ans, p_win = predict(chosen)
        order = greedy_order(p_ans, p_win)
        marg = _marginals(p_win[order])
        assumed = chosen
    cost, value = params.leak_cost, params.fill_value
    ranked = []
    pa_l, pw_l, m_l = p_ans.tolist(), p_win.tolist(), marg.tolist()
    for r, i in enumerate(order.tolist(), start=1):
        c = eligible[i]
        pa, pw, m = pa_l[i], pw_l[i], m_l[r - 1]
        sel = r <= chosen
        if k is not None:
            why = f"rank {r}: {'asked' if sel else 'not asked'} ({k} requested); adds {m:.3f}"
        elif sel and m * value > cost:
            why = f"rank {r}: P(win) {pw:.2f} adds {m:.3f} expected fills > leak cost {cost:g}"
        elif sel:
            why = f"rank {r}: adds {m:.3f} < leak cost {cost:g}, but {params.min_dealers} minimum"
        elif r > params.max_dealers and m * value > cost:
            why = f"rank {r}: adds {m:.3f} expected fills, but {params.max_dealers} maximum"
        else:
            why = f"rank {r}: adds {m:.3f} expected fills < leak cost {cost:g}"
        if pa < 0.2:
            why += f"; rarely answers such requests (P(answer) {pa:.2f})"
        ranked.append(RankedDealer(c.dealer_id, c.name, r, pa, pw, m, sel, why))
    top = p_win[order[:chosen]]
    fill = expected_fill(top)
    return Selection(
        dealers=tuple(ranked) + others,
        k=chosen,
        n_asked_assumed=assumed,
        expected_fill=fill,
        expected_dealer_fills=float(np.sum(top)),
        net_value=value * fill - cost * chosen,
        model_version=model_version,
    )


def selection_summary(selection: Selection) -> dict[str, object]:
    """The ranking as the RFQ's quote explains it: who was asked, with what odds, and why."""
    return {
        "model_version": selection.model_version or None,
        "asked": selection.k,
        "expected_fill": _finite(selection.expected_fill),
        "net_value": _finite(selection.net_value),
        "dealers": [
            {
                "name": d.name,
                "rank": d.rank,
                "p_answer": _finite(d.p_answer),
                "p_win": _finite(d.p_win),
                "marginal_fill": _finite(d.marginal_fill),
                "selected": d.selected,
                "reason": d.reason,
            }
            for d in selection.dealers
        ],
    }


def _finite(x: float | None) -> float | None:
    return None if x is None or x != x else float(x)
