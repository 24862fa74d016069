"""Shared, cached simulated data for the ML tests (a conftest here would also reach the
intent tests, so fixtures import these helpers instead)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from ml.sim import SimConfig, SimResult, simulate

TRAIN = SimConfig(n_rfqs=100_000, seed=7)
"""The run the committed default artifacts were trained on (``rfqdesk sim run``)."""


@lru_cache(maxsize=4)
def small_sim(n: int = 2_000, seed: int = 3) -> SimResult:
    return simulate(SimConfig(n_rfqs=n, seed=seed))


@lru_cache(maxsize=2)
def fresh_sim(n: int = 15_000, seed: int = 8) -> SimResult:
    """New events in the same market, after the default artifacts' training window."""
    return simulate(SimConfig(n_rfqs=n, seed=seed, start=TRAIN.end + timedelta(days=1)))
