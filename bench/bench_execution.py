"""Micro-benchmark of the residual executor's per-slice decisions.

Run from the repository root::

    python bench/bench_execution.py [--repeat 100] [--number 200]

It times, with :mod:`timeit`, the median per-call wall time of

* ``optimal_schedule`` of a 10-slice plan (Almgren–Chriss closed form, eqs 17–20),
* the same with an adverse drift (tridiagonal first-order condition, eq. 26),
* ``split_slice`` of one 25-contract slice over 3 venues in 0.1 lots, from their books
  (``liquidity_from_levels`` on 10 levels each, then the least-cost split),
* a whole slice decision: re-solve the schedule from what is left, release the legs of a
  2-leg package within the delta band, and split each leg over the 3 venues,

and, in the same run, a baseline (``numpy.exp`` of a 4-element array) to normalise for the
machine, printing each figure's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable

import numpy as np

# the same timing as the quant benchmark (run as a script, bench/ is on the path)
from bench_quant import _load, _time_us

from app.execution.split import liquidity_from_levels, split_slice
from app.quant.scheduling import ExecutionModel, optimal_schedule, release_legs, reschedule

# a package unit on the default venues (see app.execution.planning.package_model)
MODEL = ExecutionModel(
    shares=200.0,
    horizon=600.0,
    n_periods=10,
    sigma=2e-5,
    eta=5.3e-4,
    gamma=2e-6,
    epsilon=7.9e-4,
)
RISK_AVERSION = 20.0  # 1/coin

VENUES = [  # name, half spread, fee, depth, width
    ("deribit_sim", 0.0005, 0.0003, 80.0, 0.003),
    ("okx_sim", 0.0005, 0.0002, 50.0, 0.003),
    ("bybit_sim", 0.0006, 0.0003, 40.0, 0.003),
]
MID = 0.04


def _asks(half: float, depth: float, width: float, levels: int = 10) -> list[tuple[float, float]]:
    step = depth / levels
    slope = width / depth
    return [(MID + half + slope * (j + 0.5) * step, step) for j in range(levels)]


BOOKS = [(name, fee, _asks(half, depth, width)) for name, half, fee, depth, width in VENUES]


def split_from_books(quantity: float = 25.0) -> float:
    liquidity = [
        liquidity_from_levels(name, "buy", levels, fee=fee, min_size=0.1)
        for name, fee, levels in BOOKS
    ]
    return split_slice(quantity, liquidity, lot=0.1).expected_cost


def slice_decision() -> float:
    tail = reschedule(MODEL, RISK_AVERSION, 143.7, 7)
    release = release_legs(
        200.0 - float(tail.holdings[1]),
        200.0,
        [1, 1],
        [56.3, 56.3],
        [56.3, 56.3],
        [0.36, -0.14],
        25.0,
    )
    return sum(split_from_books(float(q)) for q in release)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=100, help="timing runs (median taken)")
    args = parser.parse_args()

    drift = ExecutionModel(
        shares=MODEL.shares,
        horizon=MODEL.horizon,
        n_periods=MODEL.n_periods,
        sigma=MODEL.sigma,
        eta=MODEL.eta,
        gamma=MODEL.gamma,
        epsilon=MODEL.epsilon,
        drift=3e-6,
    )
    four = np.array([0.1, 0.2, 0.3, 0.4])
    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline numpy.exp(4 elements)", lambda: np.exp(four)),
        ("optimal_schedule (N=10)", lambda: optimal_schedule(MODEL, RISK_AVERSION)),
        ("optimal_schedule, drift (N=10)", lambda: optimal_schedule(drift, RISK_AVERSION)),
        ("split 25 over 3 venues (books)", split_from_books),
        ("slice: re-solve+legs+2 splits", slice_decision),
    ]
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{args.repeat} runs x {args.number} calls; median (min) per call; load {_load()}")
    base = 0.0
    for name, fn in cases:
        us, fastest = _time_us(fn, args.number, args.repeat)
        base = base or us
        print(f"{name:34s} {us:9.2f} us ({fastest:7.2f})   x{us / base:7.1f} baseline")
    sched = optimal_schedule(MODEL, RISK_AVERSION)
    print(
        f"schedule: kappa {sched.kappa:.5f}/s, trades {np.round(sched.trades, 1).tolist()}, "
        f"E {sched.expected_cost:.4f} coin, sd {sched.std:.4f} coin"
    )


if __name__ == "__main__":
    main()
