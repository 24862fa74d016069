"""Latency of the intent model: median parse of one chat line on one CPU thread.

Run from the repository root::

    python bench/bench_intent.py [--model DIR] [--repeat 300]

The model is loaded once (``torch.set_num_threads(1)``), then each of a few typical lines is
parsed ``repeat`` times in turn, one line per call, and the median wall time per call is
reported (target ≤ 10 ms). In the same run a baseline, the tokenizer alone on the same lines,
normalises for the machine; the ratio of the two is printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from ml.intent.model import IntentParser, latest_artifact

TARGET_MS = 10.0
AS_OF = date(2026, 11, 24)
LINES = (
    "hi, 2-way in 250x BTC 25DEC26 70/80 call spread vs 64.5k please",
    "client sells 1.5k ETH Mar27 3.5k/3k put spread, ref 3,080",
    "where's your offer on 40 btc weekly 62k puts",
    "BTC Dec/Mar 90k call calendar x 75, delta hedged vs 68,200",
    "mine, thanks",
    "can you send over yesterday's confirms",
)


def _median_ms(fn: Callable[[str], object], repeat: int) -> float:
    for line in LINES:
        fn(line)  # warm up
    times = []
    for _ in range(repeat):
        for line in LINES:
            start = time.perf_counter()
            fn(line)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    """Print the medians and whether the target is met."""
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--model", type=Path, default=None)
    arguments.add_argument("--repeat", type=int, default=300)
    options = arguments.parse_args()

    parser = IntentParser.load(options.model or latest_artifact(), num_threads=1)
    tokenizer = parser.tokenizer
    baseline = _median_ms(lambda line: tokenizer(line, return_offsets_mapping=True), options.repeat)
    parse = _median_ms(lambda line: parser.parse(line, AS_OF), options.repeat)

    print(f"intent model {parser.version} on {platform.processor() or platform.machine()}")
    print(f"torch threads: {torch.get_num_threads()}, lines: {len(LINES)} x {options.repeat}")
    print(f"baseline (tokenizer alone)  median {baseline:8.3f} ms")
    print(f"parse (model + normaliser)  median {parse:8.3f} ms  ({parse / baseline:.0f}x baseline)")
    verdict = "PASS" if parse <= TARGET_MS else "FAIL"
    print(f"target <= {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
