"""The simulated market's hidden world: dealers and clients with private behaviour.

A :class:`World` is drawn once from ``world_seed`` and is the same for every simulation run
that uses that seed (the default artifacts, the tests' fresh datasets and the service's
simulated dealers all share world 0). Event randomness is seeded separately
(:class:`ml.sim.engine.SimConfig.seed`), so a "fresh dataset" is new events in the same
market, and a model trained on one run is scored on another.

Nothing here is visible to training: the log tables carry names only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from app.domain import Structure

__all__ = [
    "COMPLEXITY",
    "REGION_HOURS",
    "SIM_STRUCTURES",
    "SIM_UNDERLYINGS",
    "ClientSpec",
    "DealerSpec",
    "World",
    "build_world",
]

SIM_UNDERLYINGS: tuple[str, ...] = ("BTC", "ETH")
SIM_STRUCTURES: tuple[Structure, ...] = tuple(s for s in Structure if s is not Structure.CUSTOM)

#: structure → complexity group: 0 vanilla, 1 spreads and risk reversals, 2 vol (straddle,
#: strangle), 3 complex (butterflies, condors, calendars, ratios)
COMPLEXITY: dict[str, int] = {
    "call": 0,
    "put": 0,
    "call_spread": 1,
    "put_spread": 1,
    "risk_reversal": 1,
    "straddle": 2,
    "strangle": 2,
    "call_butterfly": 3,
    "put_butterfly": 3,
    "call_condor": 3,
    "call_calendar": 3,
    "put_calendar": 3,
    "call_ratio": 3,
    "put_ratio": 3,
}

#: region → UTC hours [start, end) in which a dealer's desk is staffed
REGION_HOURS: dict[str, tuple[int, int]] = {
    "asia": (0, 10),
    "europe": (6, 17),
    "us": (12, 22),
    "global": (0, 24),
}

#: per underlying: initial spot, long-run ATM vol, strike step, minimum block, typical size
UNDERLYING_PARAMS: dict[str, dict[str, float]] = {
    "BTC": {
        "spot": 64_000.0,
        "vol": 0.55,
        "step": 1000.0,
        "min_qty": 25.0,
        "median_qty": 75.0,
        "inventory_scale_usd": 60_000.0,
        "capacity": 400.0,
    },
    "ETH": {
        "spot": 3_200.0,
        "vol": 0.70,
        "step": 50.0,
        "min_qty": 250.0,
        "median_qty": 750.0,
        "inventory_scale_usd": 25_000.0,
        "capacity": 4_000.0,
    },
}

#: client tiers: hidden price sensitivity f(δ) = 1 / (1 + exp(α + β δ)), δ in vol points
TIERS: dict[str, dict[str, float]] = {
    "hedge_fund": {"alpha": -0.2, "beta": 2.8, "share": 0.30, "two_way": 0.45},
    "prop": {"alpha": -0.6, "beta": 2.0, "share": 0.25, "two_way": 0.35},
    "asset_manager": {"alpha": -1.0, "beta": 1.2, "share": 0.25, "two_way": 0.15},
    "corporate": {"alpha": -1.5, "beta": 0.7, "share": 0.20, "two_way": 0.05},
}


@dataclass(frozen=True)
class DealerSpec:
    """One dealer's hidden behaviour (logits add up; see :mod:`ml.sim.truth`)."""

    name: str
    underlyings: tuple[str, ...]
    base_logit: float
    underlying_logit: tuple[float, ...]  # per SIM_UNDERLYINGS
    group_logit: tuple[float, float, float, float]  # per COMPLEXITY group
    max_notional_usd: float
    size_slope: float
    min_tenor_days: float
    max_tenor_days: float
    region: str
    vol_slope: float
    competition_slope: float
    inventory_slope: float
    drift_amplitude: float
    drift_period_days: float
    drift_phase: float
    latency_median_s: float
    latency_sigma: float
    decline_share: float
    spread_base_vp: float
    spread_sd_vp: float
    spread_group_vp: tuple[float, float, float, float]
    spread_vol_slope: float
    spread_competition_slope: float
    spread_inventory_slope: float
    capacity_scale: float


@dataclass(frozen=True)
class ClientSpec:
    """One client's hidden price sensitivity and habits."""

    name: str
    tier: str
    alpha: float
    beta: float
    activity: float
    two_way_share: float
    buy_share: float
    structure_weights: tuple[float, ...]  # per SIM_STRUCTURES


@dataclass(frozen=True)
class World:
    """Dealers, clients and market parameters of one simulated market."""

    seed: int
    dealers: tuple[DealerSpec, ...]
    clients: tuple[ClientSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "dealers": [asdict(d) for d in self.dealers],
            "clients": [asdict(c) for c in self.clients],
            "underlyings": UNDERLYING_PARAMS,
            "tiers": TIERS,
        }

    def dealer_index(self) -> dict[str, int]:
        return {d.name: i for i, d in enumerate(self.dealers)}


_BASE_STRUCTURE_WEIGHTS: dict[str, float] = {
    "call": 0.16,
    "put": 0.14,
    "call_spread": 0.12,
    "put_spread": 0.11,
    "straddle": 0.08,
    "strangle": 0.07,
    "risk_reversal": 0.09,
    "call_butterfly": 0.04,
    "put_butterfly": 0.03,
    "call_condor": 0.03,
    "call_calendar": 0.04,
    "put_calendar": 0.03,
    "call_ratio": 0.03,
    "put_ratio": 0.03,
}


def build_world(seed: int = 0, n_dealers: int = 16, n_clients: int = 40) -> World:
    """Draw a market: ``n_dealers`` dealers and ``n_clients`` clients with hidden behaviour.

    Parameters
    ----------
    seed
        World seed; the same seed gives the same names and behaviour.
    n_dealers, n_clients
        Population sizes.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    dealers = []
    regions = list(REGION_HOURS)
    for i in range(n_dealers):
        u = rng.uniform()
        underlyings = ("BTC", "ETH") if u < 0.75 else ("BTC",) if u < 0.9 else ("ETH",)
        group = rng.normal(0.0, 0.6, 4)
        if rng.uniform() < 0.25:  # does not do complex structures
            group[3] = -3.0
        if rng.uniform() < 0.15:  # vanilla and spreads only
            group[2] -= 2.0
        min_tenor = float(rng.choice([0.0, 0.0, 6.0, 13.0]))
        max_tenor = float(rng.choice([120.0, 200.0, 400.0, 400.0]))
        dealers.append(
            DealerSpec(
                name=f"sim-dealer-{i + 1:02d}",
                underlyings=underlyings,
                base_logit=float(rng.normal(1.0, 0.7)),
                underlying_logit=(0.0, float(rng.normal(0.0, 0.5))),
                group_logit=(float(group[0]), float(group[1]), float(group[2]), float(group[3])),
                max_notional_usd=float(np.exp(rng.normal(np.log(15e6), 0.6))),
                size_slope=float(rng.uniform(1.0, 3.0)),
                min_tenor_days=min_tenor,
                max_tenor_days=max_tenor,
                region=str(rng.choice(regions, p=[0.2, 0.35, 0.25, 0.2])),
                vol_slope=float(rng.uniform(0.0, 0.8)),
                competition_slope=float(rng.uniform(0.0, 0.25)),
                inventory_slope=float(rng.uniform(0.2, 1.0)),
                drift_amplitude=float(rng.uniform(0.0, 0.25)),
                drift_period_days=float(rng.uniform(25.0, 70.0)),
                drift_phase=float(rng.uniform(0.0, 2 * np.pi)),
                latency_median_s=float(rng.uniform(0.3, 1.9)),
                latency_sigma=float(rng.uniform(0.3, 0.6)),
                decline_share=float(rng.uniform(0.2, 0.8)),
                spread_base_vp=float(rng.normal(0.8, 0.25)),
                spread_sd_vp=float(rng.uniform(0.2, 0.45)),
                spread_group_vp=tuple(float(x) for x in rng.normal(0.0, 0.15, 4)),  # type: ignore[arg-type]
                spread_vol_slope=float(rng.uniform(0.0, 0.25)),
                spread_competition_slope=float(rng.uniform(0.0, 0.08)),
                spread_inventory_slope=float(rng.uniform(0.05, 0.3)),
                capacity_scale=float(np.exp(rng.normal(0.0, 0.5))),
            )
        )
    tiers = list(TIERS)
    shares = np.array([TIERS[t]["share"] for t in tiers])
    base_w = np.array([_BASE_STRUCTURE_WEIGHTS[s.value] for s in SIM_STRUCTURES])
    activity = 1.0 / np.arange(1, n_clients + 1) ** 0.8
    rng.shuffle(activity)
    clients = []
    for i in range(n_clients):
        tier = str(rng.choice(tiers, p=shares / shares.sum()))
        p = TIERS[tier]
        weights = rng.dirichlet(base_w * 40.0)
        clients.append(
            ClientSpec(
                name=f"sim-client-{i + 1:02d}",
                tier=tier,
                alpha=float(p["alpha"] + rng.normal(0.0, 0.15)),
                beta=float(p["beta"] * np.exp(rng.normal(0.0, 0.1))),
                activity=float(activity[i]),
                two_way_share=float(np.clip(p["two_way"] + rng.normal(0.0, 0.05), 0.0, 0.9)),
                buy_share=float(np.clip(rng.normal(0.55, 0.08), 0.2, 0.8)),
                structure_weights=tuple(float(w) for w in weights),
            )
        )
    return World(seed=seed, dealers=tuple(dealers), clients=tuple(clients))
