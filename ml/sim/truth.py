"""The simulator's true probabilities, vectorised over (RFQ, dealer) pairs and client quotes.

The engine draws every event from these functions, and the evaluation scores models against
them, so there is one definition of the truth.

Dealer j asked about RFQ r with n dealers in competition:

* willing: ``σ(L)`` with ``L = base_j + drift_j(t) + und_j[u] + group_j[g] + size + tenor
  + hour_j(h) − vol_j z_vol − comp_j (n − 1) − inv_j clip(x, −3, 3)``, where ``x`` is the
  dealer's inventory (decayed vega traded with the desk) in the direction of this trade over a
  scale, 0 for two-way requests;
* in time: latency ``~ lognormal(ln median_j + 0.15 z_vol + 0.08 ln(N/5M), σ_j)`` below the
  deadline;
* answer = no transport error × willing × in time;
* acceptable: the quote's markup over theo, ``s ~ N(m, sd_j)`` in gross-vega vol points, is at
  most the desk's reference level ``R = 0.8 + 0.1 (legs − 1)`` (the cost of working it on lit
  venues); ``m = base_j + group_j[g] + 0.12 ln(N/5M) + volslope_j z_vol − compslope_j (n − 1)
  + invslope_j clip(x)``;
* win (the desk fills from this dealer, given the client traded) = answer × acceptable.

Client c shown a markup δ (gross-vega vol points): ``f(δ) = 1 / (1 + exp(α_c + β_c m_size
m_struct δ))`` with ``m_size = clip(1 + 0.25 ln(N/5M), 0.5, 2)`` and ``m_struct = 0.75`` for
complex structures. A one-sided request hits with ``f``; a two-way one buys or sells with
probability ½ each, then hits with ``f`` of that side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import expit, ndtr

from ml.sim.world import REGION_HOURS, SIM_UNDERLYINGS, UNDERLYING_PARAMS, World

__all__ = [
    "P_TRANSPORT_ERROR",
    "DealerInputs",
    "DealerTable",
    "DealerTruth",
    "client_hit",
    "dealer_truth",
    "reference_vp",
    "vol_z",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

P_TRANSPORT_ERROR = 0.003
OFF_HOURS_LOGIT = -1.6
TENOR_LOGIT = -2.5
SIZE_REF_USD = 5e6
INVENTORY_CLIP = 3.0
VOL_Z_SCALE = 0.25


def reference_vp(n_legs: npt.ArrayLike) -> FloatArray:
    """The desk's reference markup (vol points): a dealer quote at most this wide is used."""
    return 0.8 + 0.1 * (np.asarray(n_legs, dtype=np.float64) - 1.0)


def vol_z(vol_level: npt.ArrayLike, underlying: npt.ArrayLike) -> FloatArray:
    """How rich the RFQ's vol is against the underlying's long-run level: ln(σ/σ̄)/0.25."""
    base = np.array([UNDERLYING_PARAMS[u]["vol"] for u in SIM_UNDERLYINGS])
    ratio = np.asarray(vol_level, dtype=np.float64) / base[np.asarray(underlying)]
    out: FloatArray = np.log(ratio) / VOL_Z_SCALE
    return out


@dataclass(frozen=True, eq=False)
class DealerTable:
    """The world's dealers as arrays (one row per dealer)."""

    base: FloatArray
    und: FloatArray  # (dealers, underlyings)
    group: FloatArray  # (dealers, 4)
    log_max_notional: FloatArray
    size_slope: FloatArray
    min_tenor: FloatArray
    max_tenor: FloatArray
    active: npt.NDArray[np.bool_]  # (dealers, 24)
    vol_slope: FloatArray
    comp_slope: FloatArray
    inv_slope: FloatArray
    drift_a: FloatArray
    drift_p: FloatArray
    drift_phase: FloatArray
    lat_mu: FloatArray
    lat_sigma: FloatArray
    decline_share: FloatArray
    spread_base: FloatArray
    spread_sd: FloatArray
    spread_group: FloatArray  # (dealers, 4)
    spread_vol: FloatArray
    spread_comp: FloatArray
    spread_inv: FloatArray
    capacity: FloatArray
    eligible: npt.NDArray[np.bool_]  # (dealers, underlyings)

    @classmethod
    def from_world(cls, world: World) -> DealerTable:
        ds = world.dealers

        def arr(attr: str) -> FloatArray:
            return np.array([getattr(d, attr) for d in ds], dtype=np.float64)

        active = np.zeros((len(ds), 24), dtype=bool)
        for i, d in enumerate(ds):
            lo, hi = REGION_HOURS[d.region]
            active[i, lo:hi] = True
        return cls(
            base=arr("base_logit"),
            und=np.array([d.underlying_logit for d in ds]),
            group=np.array([d.group_logit for d in ds]),
            log_max_notional=np.log(arr("max_notional_usd")),
            size_slope=arr("size_slope"),
            min_tenor=arr("min_tenor_days"),
            max_tenor=arr("max_tenor_days"),
            active=active,
            vol_slope=arr("vol_slope"),
            comp_slope=arr("competition_slope"),
            inv_slope=arr("inventory_slope"),
            drift_a=arr("drift_amplitude"),
            drift_p=arr("drift_period_days"),
            drift_phase=arr("drift_phase"),
            lat_mu=np.log(arr("latency_median_s")),
            lat_sigma=arr("latency_sigma"),
            decline_share=arr("decline_share"),
            spread_base=arr("spread_base_vp"),
            spread_sd=arr("spread_sd_vp"),
            spread_group=np.array([d.spread_group_vp for d in ds]),
            spread_vol=arr("spread_vol_slope"),
            spread_comp=arr("spread_competition_slope"),
            spread_inv=arr("spread_inventory_slope"),
            capacity=arr("capacity_scale"),
            eligible=np.array([[u in d.underlyings for u in SIM_UNDERLYINGS] for d in ds]),
        )


@dataclass(frozen=True, eq=False)
class DealerInputs:
    """What a dealer's behaviour depends on, one entry per (RFQ, dealer) pair."""

    dealer: IntArray
    underlying: IntArray
    group: IntArray
    n_legs: IntArray
    notional_usd: FloatArray
    tenor_days: FloatArray
    hour: IntArray
    vol_z: FloatArray
    n_asked: IntArray
    inventory_x: FloatArray
    t_days: FloatArray  # days since the Unix epoch (drives the slow drift)


@dataclass(frozen=True, eq=False)
class DealerTruth:
    """True probabilities (and the latent means the engine draws around) per pair."""

    willing_logit: FloatArray
    p_willing: FloatArray
    p_in_time: FloatArray
    p_answer: FloatArray
    spread_mean_vp: FloatArray
    spread_sd_vp: FloatArray
    reference_vp: FloatArray
    p_acceptable: FloatArray
    p_win: FloatArray
    latency_mu: FloatArray
    size_penalty: FloatArray
    tenor_penalty: FloatArray
    hour_penalty: FloatArray


def dealer_truth(tab: DealerTable, x: DealerInputs, deadline_s: float) -> DealerTruth:
    """True P(answer) and P(win | the client traded) of each pair (see the module notes)."""
    d = x.dealer
    log_size = np.log(x.notional_usd / SIZE_REF_USD)
    over = np.maximum(0.0, np.log(x.notional_usd) - tab.log_max_notional[d])
    size_pen = -0.15 * log_size - tab.size_slope[d] * over
    tenor_pen = np.where(
        (x.tenor_days < tab.min_tenor[d]) | (x.tenor_days > tab.max_tenor[d]), TENOR_LOGIT, 0.0
    )
    hour_pen = np.where(tab.active[d, x.hour], 0.0, OFF_HOURS_LOGIT)
    drift = tab.drift_a[d] * np.sin(2 * np.pi * x.t_days / tab.drift_p[d] + tab.drift_phase[d])
    inv = np.clip(x.inventory_x, -INVENTORY_CLIP, INVENTORY_CLIP)
    comp = x.n_asked - 1.0
    logit = (
        tab.base[d]
        + drift
        + tab.und[d, x.underlying]
        + tab.group[d, x.group]
        + size_pen
        + tenor_pen
        + hour_pen
        - tab.vol_slope[d] * x.vol_z
        - tab.comp_slope[d] * comp
        - tab.inv_slope[d] * inv
    )
    p_will = expit(logit)
    lat_mu = tab.lat_mu[d] + 0.15 * x.vol_z + 0.08 * log_size
    p_in_time = ndtr((np.log(deadline_s) - lat_mu) / tab.lat_sigma[d])
    p_answer = (1.0 - P_TRANSPORT_ERROR) * p_will * p_in_time
    m = (
        tab.spread_base[d]
        + tab.spread_group[d, x.group]
        + 0.12 * log_size
        + tab.spread_vol[d] * x.vol_z
        - tab.spread_comp[d] * comp
        + tab.spread_inv[d] * inv
    )
    sd = tab.spread_sd[d]
    ref = reference_vp(x.n_legs)
    p_acc = ndtr((ref - m) / sd)
    return DealerTruth(
        willing_logit=logit,
        p_willing=p_will,
        p_in_time=p_in_time,
        p_answer=p_answer,
        spread_mean_vp=m,
        spread_sd_vp=sd,
        reference_vp=ref,
        p_acceptable=p_acc,
        p_win=p_answer * p_acc,
        latency_mu=lat_mu,
        size_penalty=size_pen,
        tenor_penalty=tenor_pen,
        hour_penalty=hour_pen,
    )


def client_hit(
    alpha: FloatArray,
    beta: FloatArray,
    notional_usd: FloatArray,
    group: IntArray,
    markup_vp: FloatArray,
) -> FloatArray:
    """f(δ): probability that a client who wants this side trades at markup δ."""
    size_mult = np.clip(1.0 + 0.25 * np.log(notional_usd / SIZE_REF_USD), 0.5, 2.0)
    struct_mult = np.where(group == 3, 0.75, 1.0)
    out: FloatArray = expit(-(alpha + beta * size_mult * struct_mult * markup_vp))
    return out
