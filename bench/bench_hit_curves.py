"""Hit curves of a two-way quote, in-process: along the markup axis vs row by row in xgboost.

What is timed is ``HitModel.curves`` on the pricing grid (141 markups) for the two sides of
one RFQ, as ``app.pricing.calc.compute_quote`` calls it, with varied contexts (structures,
sizes, tenors, clients, some unknown values). The baseline, timed in the same run and
interleaved with it, is the same call with the axis ensemble switched off: one xgboost call on
one row per markup cell (~90 per side). Both give the same numbers; the run checks it.

Usage: ``python bench/bench_hit_curves.py [--contexts N] [--rounds R]``. Results also go to
``bench/out/hit_curves.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.pricing.calc import MARKUP_GRID
from app.pricing.hit import HitContext
from ml.features import STRUCTURES
from ml.hit.model import HitModel


def contexts(n: int, seed: int = 5) -> list[tuple[HitContext, HitContext]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        common = {
            "underlying": str(rng.choice(["BTC", "ETH", "SOL"])),
            "structure": str(rng.choice([*STRUCTURES, "unknown"])),
            "quantity": float(rng.uniform(25, 2_000)),
            "notional_usd": float(rng.uniform(1e6, 2e8)),
            "gross_vega_usd": float(rng.uniform(500, 2e5)),
            "tenor_days": float(rng.uniform(1, 365)),
            "client": str(rng.choice(["sim-client-01", "sim-client-07", "new-client"])),
            "extra": {"rfq_side": "two_way"},
        }
        out.append((HitContext(side="buy", **common), HitContext(side="sell", **common)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    model = HitModel.load()
    axis = model._axis
    if axis is None:
        print("the hit booster is not served along its markup axis (unsupported or disagreed)")
        return 1
    pairs = contexts(args.contexts)

    def run(along_axis: bool) -> float:
        model._axis = axis if along_axis else None
        try:
            started = time.perf_counter()
            for a, b in pairs:
                model.curves(MARKUP_GRID, [a, b])
            return (time.perf_counter() - started) / len(pairs)
        finally:
            model._axis = axis

    for a, b in pairs[:50]:  # same numbers, to the bit
        model._axis = None
        rows = model.curves(MARKUP_GRID, [a, b])
        model._axis = axis
        fast = model.curves(MARKUP_GRID, [a, b])
        for x, y in zip(rows, fast, strict=True):
            np.testing.assert_array_equal(x, y)

    run(True), run(False)  # warm-up
    axis_s, rows_s = [], []
    for _ in range(args.rounds):  # interleaved rounds: the machine's speed moves both alike
        axis_s.append(run(True))
        rows_s.append(run(False))
    med_axis, med_rows = statistics.median(axis_s), statistics.median(rows_s)
    print(
        f"hit curves of a two-way quote ({len(pairs)} varied RFQs, median of {args.rounds} "
        f"rounds): along the axis {med_axis * 1e6:.0f} µs, row by row in xgboost "
        f"{med_rows * 1e6:.0f} µs (×{med_rows / med_axis:.2f}); the same numbers"
    )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "hit_curves.json").write_text(
        json.dumps(
            {
                "axis_us": med_axis * 1e6,
                "rows_us": med_rows * 1e6,
                "contexts": len(pairs),
                "rounds": args.rounds,
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
