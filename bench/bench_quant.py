"""Micro-benchmark of one in-process "price and quote" of a 4-leg block structure.

Run from the repository root::

    python bench/bench_quant.py [--repeat 200] [--number 200]

It times, with :mod:`timeit`, the median per-call wall time of

* ``price_package`` on a 4-leg structure (BTC risk reversal vs a calendar put spread, hedged vs
  a reference),
* ``inventory_skew`` of that package's (delta, vega) against the desk's book,
* ``optimal_markup`` on a logistic hit curve (the seam the trained hit model fills),
* the three together (the quoting hot path; target ≤ 150 µs median),

and, in the same run, a baseline (``numpy.exp`` of a 4-element array) to normalise for the
machine, printing each figure's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import timeit
from collections.abc import Callable

import numpy as np

from app.quant import LogisticIntensity, inventory_skew, optimal_markup, price_package

TARGET_US = 150.0

FORWARD = np.array([64_000.0, 64_000.0, 66_000.0, 66_000.0])
STRIKE = np.array([70_000.0, 58_000.0, 60_000.0, 56_000.0])
T_YEARS = np.array([30 / 365, 30 / 365, 90 / 365, 90 / 365])
SIGMA = np.array([0.52, 0.61, 0.60, 0.63])
IS_CALL = np.array([True, False, False, False])
SIGNED_SIZE = np.array([250.0, -250.0, 250.0, -250.0])
HEDGE_REFERENCE = 64_500.0

# desk book in (BTC delta [coins], BTC vega [USD per vol point]); daily covariance of their moves
DESK = np.array([-40.0, 25_000.0])
COVARIANCE = np.array([[1.6e6, 120.0], [120.0, 2.5]])
RISK_AVERSION = 2e-6  # 1/USD
HIT = LogisticIntensity(lam=1.0, alpha=-0.3, beta=5.0 / 2_000.0).hit_probability  # δ in USD


def price_and_quote() -> float:
    risk = price_package(
        FORWARD, STRIKE, T_YEARS, SIGMA, IS_CALL, SIGNED_SIZE, hedge_reference=HEDGE_REFERENCE
    )
    exposure = np.array([risk.delta, risk.vega / 100.0])  # desk buys: takes +package risk
    cost = inventory_skew(exposure, DESK, COVARIANCE, RISK_AVERSION)
    return risk.theo_usd - optimal_markup(HIT, cost).markup  # our bid


def _time_us(fn: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    """(median, min) per-call time in µs over ``repeat`` runs of ``number`` calls."""
    fn()  # warm up
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6, min(runs) / number * 1e6


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=200, help="timing runs (median taken)")
    args = parser.parse_args()

    risk = price_package(
        FORWARD, STRIKE, T_YEARS, SIGMA, IS_CALL, SIGNED_SIZE, hedge_reference=HEDGE_REFERENCE
    )
    exposure = np.array([risk.delta, risk.vega / 100.0])
    cost = inventory_skew(exposure, DESK, COVARIANCE, RISK_AVERSION)
    four = np.array([0.1, 0.2, 0.3, 0.4])

    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline numpy.exp(4 elements)", lambda: np.exp(four)),
        (
            "price_package (4 legs, hedged)",
            lambda: price_package(
                FORWARD,
                STRIKE,
                T_YEARS,
                SIGMA,
                IS_CALL,
                SIGNED_SIZE,
                hedge_reference=HEDGE_REFERENCE,
            ),
        ),
        (
            "inventory_skew (2 factors)",
            lambda: inventory_skew(exposure, DESK, COVARIANCE, RISK_AVERSION),
        ),
        ("optimal_markup (logistic)", lambda: optimal_markup(HIT, cost)),
        ("price + skew + markup", price_and_quote),
    ]
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{args.repeat} runs x {args.number} calls; median (min) per call; load {_load()}")
    base = 0.0
    total = 0.0
    for name, fn in cases:
        us, fastest = _time_us(fn, args.number, args.repeat)
        base = base or us
        total = us
        print(f"{name:34s} {us:9.2f} us ({fastest:7.2f})   x{us / base:7.1f} baseline")
    verdict = "OK" if total <= TARGET_US else "OVER TARGET"
    print(f"price+quote median {total:.1f} us (target <= {TARGET_US:.0f} us): {verdict}")
    bid = price_and_quote()
    print(f"theo {risk.theo_usd:,.2f} USD, inventory cost {cost:,.2f} USD, bid {bid:,.2f} USD")


if __name__ == "__main__":
    main()
