"""What analytics rows can be grouped by, and the bucket edges of the numeric dimensions.

A bucketed dimension is computed in SQL as the index of its bucket (``0`` for values below
the first edge, ``len(edges)`` for values at or above the last) and labelled here, so that rows
sort in bucket order rather than alphabetically.
"""

from __future__ import annotations

import itertools
from enum import StrEnum


class Dim(StrEnum):
    """A ``group_by`` value."""

    DEALER = "dealer"
    CLIENT = "client"
    UNDERLYING = "underlying"
    STRUCTURE = "structure"
    SIDE = "side"
    SIZE_CONTRACTS = "size_contracts"
    SIZE_NOTIONAL = "size_notional"
    SIZE_VEGA = "size_vega"
    TENOR = "tenor"
    CHANNEL = "channel"
    HOUR = "hour"
    DAY = "day"


#: contracts (structure units, one coin each)
CONTRACT_EDGES: tuple[float, ...] = (10, 25, 50, 100, 250, 500, 1000, 2500)
#: USD: quantity × spot of the quote's snapshot
NOTIONAL_EDGES: tuple[float, ...] = (
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
)
#: USD per vol point: the package's gross vega (Σ |size × leg vega|) when it was quoted
VEGA_EDGES: tuple[float, ...] = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000)
#: days from the RFQ's date to its last leg's expiry
TENOR_EDGES: tuple[float, ...] = (7, 30, 90, 180, 365)

BUCKETS: dict[Dim, tuple[float, ...]] = {
    Dim.SIZE_CONTRACTS: CONTRACT_EDGES,
    Dim.SIZE_NOTIONAL: NOTIONAL_EDGES,
    Dim.SIZE_VEGA: VEGA_EDGES,
    Dim.TENOR: TENOR_EDGES,
}
BUCKET_UNITS: dict[Dim, str] = {
    Dim.SIZE_CONTRACTS: "contracts",
    Dim.SIZE_NOTIONAL: "USD notional",
    Dim.SIZE_VEGA: "USD per vol point",
    Dim.TENOR: "days",
}


def _short(x: float) -> str:
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if x >= div and x % (div / 10) == 0:
            return f"{x / div:g}{suffix}"
    return f"{x:g}"


def bucket_labels(edges: tuple[float, ...]) -> list[str]:
    """``["<10", "10-25", ..., "2.5k+"]`` for edges ``(10, 25, ..., 2500)``."""
    labels = [f"<{_short(edges[0])}"]
    labels += [f"{_short(a)}-{_short(b)}" for a, b in itertools.pairwise(edges)]
    labels.append(f"{_short(edges[-1])}+")
    return labels


def bucket_label(dim: Dim, index: int | None) -> str | None:
    if index is None:
        return None
    return bucket_labels(BUCKETS[dim])[int(index)]


#: probability buckets of the calibration report
def probability_edges(buckets: int) -> list[float]:
    return [i / buckets for i in range(buckets + 1)]
