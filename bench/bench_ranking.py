"""Serving cost of dealer ranking: rank 20 dealers for one RFQ, in-process (target ≤ 1 ms median).

What is timed is what the service does per RFQ once it is priced: build the RFQ context
from the pricing greeks, read 20 dealers' trailing statistics from the in-memory feature
store, predict P(answer) and P(win) with the committed default fill model, and choose the
dealers (re-predicting at the chosen count when it differs from the planned one).

The baseline, timed in the same run, is the same pipeline without the model: dealers ranked
by their trailing answer × win rates from the store. The ratio shows what the model costs.

Usage: ``python bench/bench_ranking.py [--iterations N] [--check]`` (``--check`` exits 1 when
the median is over 1 ms). Results also go to ``bench/out/ranking.json``.
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
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.dealers.selection import Candidate, SelectionParams, choose_dealers
from ml.export import LogData
from ml.features import FILL_FEATURES, build_store, rfq_context
from ml.fill.model import FillModel
from ml.sim import SimConfig, simulate

TARGET_S = 1e-3
_ANSWER = FILL_FEATURES.index("d_answer_rate")
_WIN = FILL_FEATURES.index("d_win_rate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--check", action="store_true", help="exit 1 when over the target")
    args = ap.parse_args()

    model = FillModel.load()
    sim = simulate(SimConfig(n_rfqs=3000, seed=99))
    store = build_store(LogData(sim.tables))
    names = [
        *sim.oracle.dealer_names,
        "new-dealer-a",
        "new-dealer-b",
        "new-dealer-c",
        "new-dealer-d",
    ][:20]
    candidates = [Candidate(n, n) for n in names]
    params = SelectionParams()
    # the inputs the service has in hand after pricing: RFQ fields, legs and greeks
    rfqs = sim.tables["rfq"].to_pylist()[-300:]
    legs: dict[str, list[dict[str, Any]]] = {}
    for leg in sim.tables["rfq_leg"].to_pylist():
        legs.setdefault(leg["rfq_id"], []).append(leg)
    greeks = {q["rfq_id"]: json.loads(q["greeks"]) for q in sim.tables["client_quote"].to_pylist()}
    inputs = [
        (r, sorted(legs[r["id"]], key=lambda x: x["leg_index"]), greeks[r["id"]]) for r in rfqs
    ]
    now = max(r["created_at"] for r in rfqs).timestamp() + 60.0

    def context(i: int):  # type: ignore[no-untyped-def]
        r, lg, g = inputs[i % len(inputs)]
        return rfq_context(
            at=now,
            underlying=r["underlying"],
            structure=r["structure"],
            side=r["side"],
            quantity=r["quantity"],
            client=r["client"],
            hedge_reference=r["hedge_reference"],
            legs=lg,
            greeks=g,
        )

    def with_model(i: int) -> int:
        ctx = context(i)
        return choose_dealers(candidates, model.predictor(ctx, names, store), params).k

    def baseline(i: int) -> int:
        ctx = context(i)
        x = model.features.matrix(ctx, names, 1, store)
        p_answer = x[:, _ANSWER].copy()
        p_win = p_answer * x[:, _WIN]
        return choose_dealers(candidates, lambda n: (p_answer, p_win), params).k

    def timed(fn) -> list[float]:  # type: ignore[no-untyped-def]
        for i in range(100):
            fn(i)
        out = []
        for i in range(args.iterations):
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)
        return out

    ks = [with_model(i) for i in range(len(inputs))]
    t_model = timed(with_model)
    t_base = timed(baseline)
    med_m, med_b = statistics.median(t_model), statistics.median(t_base)
    result = {
        "dealers": len(names),
        "iterations": args.iterations,
        "model_version": model.version,
        "trees": {
            h: int(model.artifact.manifest["heads"][h]["trees"])
            for h in ("answer", "win_given_answer")
        },
        "median_ms": med_m * 1e3,
        "p90_ms": float(np.percentile(t_model, 90)) * 1e3,
        "baseline_median_ms": med_b * 1e3,
        "ratio_to_baseline": med_m / med_b,
        "second_pass_share": float(np.mean([k != params.planned_dealers for k in ks])),
        "target_ms": TARGET_S * 1e3,
        "machine": f"{platform.machine()} {platform.python_version()} cpus={os.cpu_count()}",
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    ok = med_m <= TARGET_S
    print(
        f"rank {len(names)} dealers for one RFQ ({args.iterations} runs, "
        f"{model.version}, trees {result['trees']})"
    )
    print(
        f"  with the fill model : median {result['median_ms']:.3f} ms, "
        f"p90 {result['p90_ms']:.3f} ms  (re-ranked at k for "
        f"{result['second_pass_share']:.0%} of RFQs)"
    )
    print(f"  baseline (no model) : median {result['baseline_median_ms']:.3f} ms")
    print(f"  ratio               : {result['ratio_to_baseline']:.1f}x")
    print(
        f"  target ≤ {TARGET_S * 1e3:.0f} ms median: {'PASS' if ok else 'FAIL'} "
        f"(load average {result['load_avg']})"
    )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranking.json").write_text(json.dumps(result, indent=2) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
