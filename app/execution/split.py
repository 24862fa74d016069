r"""Splitting one slice across lit venues at the least expected cost (pure).

Each venue ``v`` offers a linear book: the marginal cost of its ``q``-th contract is
``a_v + b_v q`` (``a_v`` the touch price plus the fee for a purchase, the fee minus the touch for
a sale; ``b_v ≥ 0`` the impact slope), up to its visible depth ``D_v``, and an order must be at
least ``m_v`` contracts. Taking ``q_v`` contracts costs

.. math:: c_v(q_v) = a_v q_v + ½ b_v q_v^2,

and the split solves ``min Σ c_v(q_v)`` over ``Σ q_v = Q``, ``q_v ∈ \{0\} ∪ [m_v, D_v]``, in whole
lots. On a fixed set of venues the problem is convex and its optimum equalises marginal costs
(water-filling: ``q_v = clip((μ − a_v)/b_v, m_v, D_v)`` with one level ``μ`` for all); minimum
sizes make it a choice of venues, enumerated exactly (``2^k`` sets for the ``k`` venues that have
a minimum; a greedy drop beyond :data:`EXACT_MIN_SIZE_VENUES`). Whole lots are placed greedily
by marginal cost from a point below the continuous optimum, which is exact for separable convex
costs (Hochbaum, 1994, "Lower and upper bounds for the allocation problem", Math. Oper. Res.
19(2):390–409).

When the venues cannot absorb the slice (depth, minimum sizes, a marginal-cost cap), the result
allocates the most they can take and reports the rest as ``shortfall`` for the caller to carry
forward.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EXACT_MIN_SIZE_VENUES",
    "Allocation",
    "SplitResult",
    "VenueLiquidity",
    "liquidity_from_levels",
    "split_slice",
]

#: up to this many venues with a minimum size, the choice of venues is enumerated exactly
EXACT_MIN_SIZE_VENUES = 10
_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class VenueLiquidity:
    """What one venue offers for this slice, as a linear marginal cost.

    Parameters
    ----------
    venue
        Venue name.
    marginal_cost
        a, cost of the first contract (price units per contract; lower is better).
    impact
        b ≥ 0, increase of the marginal cost per contract taken.
    depth
        D ≥ 0, contracts visible.
    min_size
        m ≥ 0, smallest order the venue accepts.
    fee
        Fee per contract included in ``marginal_cost`` (reported back, not used by the split).
    """

    venue: str
    marginal_cost: float
    impact: float
    depth: float
    min_size: float = 0.0
    fee: float = 0.0

    def __post_init__(self) -> None:
        vals = (self.marginal_cost, self.impact, self.depth, self.min_size, self.fee)
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{self.venue}: liquidity must be finite")
        if self.impact < 0 or self.depth < 0 or self.min_size < 0:
            raise ValueError(f"{self.venue}: need impact, depth and min_size >= 0")

    def cost(self, quantity: float) -> float:
        """c(q) = a q + ½ b q²."""
        return quantity * (self.marginal_cost + 0.5 * self.impact * quantity)


@dataclass(frozen=True, slots=True)
class Allocation:
    """Contracts sent to one venue, their expected cost and the marginal cost reached."""

    venue: str
    quantity: float
    expected_cost: float
    last_marginal_cost: float


@dataclass(frozen=True, slots=True)
class SplitResult:
    """The split of one slice.

    ``allocations`` lists only venues that get something; ``shortfall = requested − allocated``
    is what the venues could not absorb (``reason``: ``"depth"``, ``"min_size"``,
    ``"price_limit"`` or ``"lot"``, a remainder below one lot), for the caller to carry forward.
    """

    requested: float
    allocations: tuple[Allocation, ...]
    allocated: float
    shortfall: float
    expected_cost: float
    reason: str | None = None

    @property
    def complete(self) -> bool:
        """Whether the whole slice was placed."""
        return self.reason is None


def split_slice(
    quantity: float,
    venues: Sequence[VenueLiquidity],
    *,
    lot: float = 0.0,
    max_marginal_cost: float | None = None,
) -> SplitResult:
    """Split ``quantity`` across ``venues`` at the least expected cost.

    Parameters
    ----------
    quantity
        Q ≥ 0, contracts to place.
    venues
        The venues' liquidity (names unique).
    lot
        Quantity step (0: continuous); ``quantity`` is rounded down to it.
    max_marginal_cost
        Never take a contract whose marginal cost exceeds this (a limit price).

    Returns
    -------
    SplitResult
        The cost-minimising allocation of min(Q, what the venues can take); the remainder is
        the shortfall.

    Examples
    --------
    >>> v = [VenueLiquidity("a", 1.0, 0.01, 100), VenueLiquidity("b", 1.0, 0.02, 100)]
    >>> [(x.venue, round(x.quantity, 6)) for x in split_slice(30, v).allocations]
    [('a', 20.0), ('b', 10.0)]
    """
    if not (math.isfinite(quantity) and quantity >= 0):
        raise ValueError("quantity must be finite and >= 0")
    if not (math.isfinite(lot) and lot >= 0):
        raise ValueError("lot must be finite and >= 0")
    if len({v.venue for v in venues}) != len(venues):
        raise ValueError("venue names must be unique")
    target = _floor(quantity, lot)
    usable: list[_Box] = []
    depth_room = 0.0  # what the venues could take without the price limit
    for v in venues:
        lower = _ceil(v.min_size, lot)
        if lot > 0 and lower <= lot:
            lower = 0.0  # any whole lot meets the minimum: not a choice of venue
        depth = _floor(v.depth, lot)
        if lower > depth or depth <= 0:
            continue
        depth_room += depth
        upper = depth
        if max_marginal_cost is not None:
            if v.impact > 0:
                room = max(0.0, (max_marginal_cost - v.marginal_cost) / v.impact)
            else:
                room = depth if v.marginal_cost <= max_marginal_cost + _EPS else 0.0
            upper = min(upper, _floor(room, lot))
        if lower <= upper and upper > 0:
            usable.append(_Box(v, lower, upper))
    best = _best_allocation(target, usable, lot)
    chosen = best[1] if best else {}
    allocations = tuple(
        Allocation(
            venue=b.liq.venue,
            quantity=q,
            expected_cost=b.liq.cost(q),
            last_marginal_cost=b.liq.marginal_cost + b.liq.impact * q,
        )
        for b in usable
        if (q := chosen.get(b.liq.venue, 0.0)) > 0
    )
    allocated = math.fsum(a.quantity for a in allocations)
    shortfall = quantity - allocated
    reason = None
    if shortfall <= max(_EPS, 1e-9 * quantity):
        shortfall = 0.0
    elif allocated < min(target, math.fsum(b.upper for b in usable)) - _EPS:
        reason = "min_size"  # the venues could hold more, but not in orders that large
    elif allocated < min(target, depth_room) - _EPS:
        reason = "price_limit"
    elif allocated < target - _EPS:
        reason = "depth"
    else:
        reason = "lot"  # only a remainder smaller than one lot is left
    return SplitResult(
        requested=quantity,
        allocations=allocations,
        allocated=allocated,
        shortfall=shortfall,
        expected_cost=math.fsum(a.expected_cost for a in allocations),
        reason=reason,
    )


def liquidity_from_levels(
    venue: str,
    side: str,
    levels: Sequence[tuple[float, float]],
    *,
    fee: float = 0.0,
    min_size: float = 0.0,
) -> VenueLiquidity:
    """Linear marginal cost of one side of a book (the asks for a purchase, bids for a sale).

    Parameters
    ----------
    venue
        Venue name.
    side
        ``"buy"`` (takes the asks) or ``"sell"`` (hits the bids).
    levels
        ``(price, size)`` best first.
    fee
        Fee per contract.
    min_size
        The venue's minimum order.

    Returns
    -------
    VenueLiquidity
        Depth = Σ sizes; the price of the contract at cumulative depth c is fitted (least squares
        over the levels' midpoints) as p(c) = p₀ + s·c, which a linear book reproduces exactly;
        one level gives a flat price. A sale's cost is the fee minus the price.
    """
    if side not in ("buy", "sell"):
        raise ValueError("side must be 'buy' or 'sell'")
    book = [(float(p), float(s)) for p, s in levels if float(s) > 0]
    if not book:
        return VenueLiquidity(venue, 0.0, 0.0, 0.0, min_size, fee)
    depth, mids, prices, cum = 0.0, [], [], 0.0
    for p, s in book:
        mids.append(cum + 0.5 * s)
        prices.append(p)
        cum += s
    depth = cum
    n = len(book)
    if n == 1:
        intercept, slope = prices[0], 0.0
    else:
        mx, my = math.fsum(mids) / n, math.fsum(prices) / n
        sxx = math.fsum((x - mx) ** 2 for x in mids)
        sxy = math.fsum((x - mx) * (y - my) for x, y in zip(mids, prices, strict=True))
        slope = sxy / sxx if sxx > 0 else 0.0
        intercept = my - slope * mx
    if side == "buy":
        return VenueLiquidity(venue, intercept + fee, max(slope, 0.0), depth, min_size, fee)
    return VenueLiquidity(venue, fee - intercept, max(-slope, 0.0), depth, min_size, fee)


# ----------------------------------------------------------------------------- internals
@dataclass(frozen=True, slots=True)
class _Box:
    liq: VenueLiquidity
    lower: float
    upper: float


def _floor(x: float, lot: float) -> float:
    if lot <= 0:
        return x
    return math.floor(x / lot + 1e-9) * lot


def _ceil(x: float, lot: float) -> float:
    if lot <= 0:
        return x
    return math.ceil(x / lot - 1e-9) * lot


def _best_allocation(
    target: float, boxes: list[_Box], lot: float
) -> tuple[tuple[float, float], dict[str, float]] | None:
    """Over the choices of venues, the largest amount placed, then the least cost."""
    if target <= 0 or not boxes:
        return None
    free = [b for b in boxes if b.lower <= 0]
    gated = [b for b in boxes if b.lower > 0]
    if len(gated) <= EXACT_MIN_SIZE_VENUES:
        choices: list[list[_Box]] = [
            free + [g for g, on in zip(gated, mask, strict=True) if on]
            for mask in itertools.product((False, True), repeat=len(gated))
        ]
    else:
        choices = _greedy_choices(target, free, gated, lot)
    best: tuple[tuple[float, float], dict[str, float]] | None = None
    for chosen in choices:
        if not chosen:
            continue
        lowest = math.fsum(b.lower for b in chosen)
        if lowest > target + _EPS:
            continue
        amount = min(target, math.fsum(b.upper for b in chosen))
        alloc = _fill(amount, chosen, lot)
        placed = math.fsum(alloc.values())
        cost = math.fsum(b.liq.cost(alloc[b.liq.venue]) for b in chosen)
        key = (-round(placed, 9), cost)
        if best is None or key < best[0]:
            best = (key, alloc)
    return best


def _greedy_choices(
    target: float, free: list[_Box], gated: list[_Box], lot: float
) -> list[list[_Box]]:
    """Many venues with minimum sizes: drop, one at a time, the one that falls furthest short."""
    chosen = free + gated
    out = [list(chosen)]
    while True:
        amount = min(target, math.fsum(b.upper for b in chosen))
        relaxed = [_Box(b.liq, 0.0, b.upper) for b in chosen]
        alloc = _fill(amount, relaxed, lot)
        short = [b for b in chosen if b.lower > 0 and alloc[b.liq.venue] < b.lower - _EPS]
        if not short:
            return out
        worst = min(short, key=lambda b: alloc[b.liq.venue] / b.lower)
        chosen = [b for b in chosen if b is not worst]
        out.append(list(chosen))


def _fill(amount: float, boxes: list[_Box], lot: float) -> dict[str, float]:
    """Least-cost allocation of ``amount`` within the boxes (Σ lower ≤ amount ≤ Σ upper)."""
    cont = _water_fill(amount, boxes)
    if lot <= 0:
        return cont
    n = len(boxes)
    lots = {}
    for b in boxes:
        lo = round(b.lower / lot)
        start = max(lo, math.floor(cont[b.liq.venue] / lot + 1e-9) - n)
        lots[b.liq.venue] = start
    left = round(amount / lot) - sum(lots.values())
    heap: list[tuple[float, int, str]] = []

    def push(i: int, b: _Box) -> None:
        k = lots[b.liq.venue]
        if (k + 1) * lot <= b.upper + 1e-9 * max(1.0, b.upper):
            q0, q1 = k * lot, (k + 1) * lot
            heapq.heappush(heap, (b.liq.cost(q1) - b.liq.cost(q0), i, b.liq.venue))

    for i, b in enumerate(boxes):
        push(i, b)
    while left > 0 and heap:
        _, i, name = heapq.heappop(heap)
        lots[name] += 1
        left -= 1
        push(i, boxes[i])
    return {name: k * lot for name, k in lots.items()}


def _water_fill(amount: float, boxes: list[_Box]) -> dict[str, float]:
    """Continuous box-constrained water-filling: q_v = clip((μ − a_v)/b_v, l_v, u_v), Σ q = A.

    Venues without impact (b = 0) take nothing below μ = a and all above; at μ = a they share
    what is left, in order.
    """
    lo_total = math.fsum(b.lower for b in boxes)
    hi_total = math.fsum(b.upper for b in boxes)
    if amount <= lo_total + _EPS:
        return {b.liq.venue: b.lower for b in boxes}
    if amount >= hi_total - _EPS:
        return {b.liq.venue: b.upper for b in boxes}

    def q_at(mu: float, flat_high: bool) -> list[float]:
        out = []
        for b in boxes:
            a, s = b.liq.marginal_cost, b.liq.impact
            if s > 0:
                out.append(min(max((mu - a) / s, b.lower), b.upper))
            elif mu > a or (mu == a and flat_high):
                out.append(b.upper)
            else:
                out.append(b.lower)
        return out

    points = sorted(
        {
            p
            for b in boxes
            for p in (
                (
                    b.liq.marginal_cost + b.liq.impact * b.lower,
                    b.liq.marginal_cost + b.liq.impact * b.upper,
                )
                if b.liq.impact > 0
                else (b.liq.marginal_cost,)
            )
        }
    )
    prev_mu, prev_total = None, lo_total
    for mu in points:
        low_q = q_at(mu, flat_high=False)
        low_total = math.fsum(low_q)
        if low_total >= amount - _EPS:
            # the level lies on the linear piece (prev_mu, mu]
            if prev_mu is None or low_total - prev_total <= _EPS:
                return {b.liq.venue: q for b, q in zip(boxes, low_q, strict=True)}
            star = prev_mu + (amount - prev_total) * (mu - prev_mu) / (low_total - prev_total)
            q = q_at(star, flat_high=False)
            return _exact(amount, boxes, q)
        high_q = q_at(mu, flat_high=True)
        high_total = math.fsum(high_q)
        if high_total >= amount - _EPS:
            # flat venues at this level share the rest, in order
            q = low_q
            left = amount - low_total
            for i, b in enumerate(boxes):
                if b.liq.impact == 0 and b.liq.marginal_cost == mu and left > 0:
                    add = min(left, b.upper - q[i])
                    q[i] += add
                    left -= add
            return {b.liq.venue: x for b, x in zip(boxes, q, strict=True)}
        prev_mu, prev_total = mu, high_total
    return {b.liq.venue: b.upper for b in boxes}


def _exact(amount: float, boxes: list[_Box], q: list[float]) -> dict[str, float]:
    """Remove the rounding residue of the interpolation from a venue strictly inside its box."""
    gap = amount - math.fsum(q)
    for i, b in enumerate(boxes):
        if gap == 0:
            break
        room = (b.upper - q[i]) if gap > 0 else (b.lower - q[i])
        step = min(gap, room) if gap > 0 else max(gap, room)
        q[i] += step
        gap -= step
    return {b.liq.venue: x for b, x in zip(boxes, q, strict=True)}
