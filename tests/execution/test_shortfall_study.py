"""On the simulated venues, the optimal schedule against TWAP, over seeded runs (in memory, with
the worker, split and venues the service uses).

The simulated market has an adverse drift α (the dealers who took the rest of the block hedging
the same way) that the plan's model knows: the optimal schedule front-loads and its mean
shortfall beats TWAP's. Without drift, Almgren–Chriss trades a higher mean for a lower variance
(TWAP minimises the mean), which the control checks.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from app.execution.planning import LegSpec, package_model
from app.execution.venues import InstrumentReference
from app.quant.scheduling import linear_schedule, optimal_schedule
from tests.execution.sim import CALL, Study, shortfall_of, study_settings

QUANTITY = Decimal(200)
BETA = 2e-5  # coin per contract per √s
ALPHA = 3e-6  # coin per contract per s, against the desk
REFS = {CALL: InstrumentReference(0.05, BETA)}
LEG = LegSpec(CALL, 1, "buy", 0.05, 0.55, BETA)
TWAP = [float(QUANTITY) * (k + 1) / 10 for k in range(10)]


async def shortfalls(runs: int, drift: float, risk_aversion: float) -> dict[str, np.ndarray]:
    settings = study_settings(expected_drift_coin_per_s=drift, risk_aversion_per_coin=risk_aversion)
    out: dict[str, list[float]] = {"optimal": [], "twap": []}
    for seed in range(runs):
        for kind, override in (("optimal", None), ("twap", TWAP)):
            study = Study(settings, [LEG], QUANTITY, seed, drift={CALL: drift}, references=REFS)
            state = await study.run(study.plan(override))
            assert state.state == "completed"
            assert state.filled() == [QUANTITY]
            out[kind].append(shortfall_of(state))
    return {k: np.array(v) for k, v in out.items()}


def predicted(drift: float, risk_aversion: float) -> tuple[float, float, float, float]:
    settings = study_settings(expected_drift_coin_per_s=drift, risk_aversion_per_coin=risk_aversion)
    model = package_model([LEG], float(QUANTITY), settings)
    opt, lin = optimal_schedule(model, risk_aversion), linear_schedule(model)
    return opt.expected_cost, opt.std, lin.expected_cost, lin.std


async def test_optimal_beats_twap_and_matches_its_prediction() -> None:
    runs = 200  # about 5 s
    got = await shortfalls(runs, ALPHA, 5.0)
    e_opt, _, e_lin, _ = predicted(ALPHA, 5.0)
    opt, twap = got["optimal"].mean(), got["twap"].mean()
    diff = got["optimal"] - got["twap"]  # same seeds: same price paths
    assert opt < twap
    assert diff.mean() / (diff.std(ddof=1) / np.sqrt(runs)) < -5
    assert abs(opt / e_opt - 1) < 0.05
    assert abs(twap / e_lin - 1) < 0.05


async def test_without_drift_the_optimal_schedule_buys_less_risk_for_more_cost() -> None:
    got = await shortfalls(60, 0.0, 40.0)
    e_opt, sd_opt, e_lin, sd_lin = predicted(0.0, 40.0)
    assert e_opt > e_lin  # the model's trade-off
    assert sd_opt < sd_lin
    assert got["optimal"].mean() > got["twap"].mean()
    assert got["optimal"].std() < got["twap"].std()
    assert abs(got["optimal"].mean() / e_opt - 1) < 0.05
    assert abs(got["twap"].mean() / e_lin - 1) < 0.05
