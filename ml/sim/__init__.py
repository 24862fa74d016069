"""Seeded market simulator: clients with hidden price sensitivity, dealers with hidden answer
and pricing behaviour, a price/vol path and RFQ arrivals, written into the service's log
tables, with the true probability of every event kept apart (:mod:`ml.sim.truth`)."""

from ml.sim.engine import INVENTORY_HALF_LIFE_DAYS, Oracle, SimConfig, SimResult, simulate
from ml.sim.truth import DealerTable, DealerTruth, client_hit, dealer_truth
from ml.sim.world import World, build_world

__all__ = [
    "INVENTORY_HALF_LIFE_DAYS",
    "DealerTable",
    "DealerTruth",
    "Oracle",
    "SimConfig",
    "SimResult",
    "World",
    "build_world",
    "client_hit",
    "dealer_truth",
    "simulate",
]
