"""Risk factors of the desk: delta per underlying and vega per (underlying, expiry).

Pure: builds the factor vector of a package and the factors' covariance over the holding
horizon from a market snapshot; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def delta_factor(underlying: str) -> str:
    return f"{underlying}:delta"


def vega_factor(underlying: str, expiry: date) -> str:
    return f"{underlying}:vega:{expiry.isoformat()}"


def factor_underlying(factor: str) -> str:
    return factor.split(":", 1)[0]


def package_factors(
    underlying: str,
    expiries: Sequence[date],
    signed_size: FloatArray,
    leg_deltas: FloatArray,
    leg_vegas_per_point: FloatArray,
    hedged: bool,
) -> dict[str, float]:
    """Exposures of the package's holder: delta in coins, vega in USD per vol point."""
    out: dict[str, float] = {}
    delta = 0.0 if hedged else float(signed_size @ leg_deltas)
    out[delta_factor(underlying)] = delta
    for expiry, n, v in zip(expiries, signed_size, leg_vegas_per_point, strict=True):
        key = vega_factor(underlying, expiry)
        out[key] = out.get(key, 0.0) + float(n * v)
    return out


def covariance(
    factors: Sequence[str],
    *,
    spot: float,
    atm_vol: float,
    t_years: Mapping[str, float],
    horizon_days: float,
    vol_of_vol_points_per_day: float,
    spot_vol_correlation: float,
    vega_term_decorrelation_years: float,
) -> FloatArray:
    """Covariance of the factors' moves over the horizon (USD per coin, vol points).

    Delta factors move with the spot (sd = S σ √(h/365)); vega factors with the implied vol
    (sd = vol-of-vol √h vol points), correlated across expiries as exp(−|T_i − T_j| / τ) and
    with the spot by ρ. Factors of different underlyings are taken as independent.
    """
    n = len(factors)
    sd = np.empty(n)
    kinds = []
    for i, f in enumerate(factors):
        if f.endswith(":delta"):
            sd[i] = spot * atm_vol * math.sqrt(horizon_days / 365.0)
            kinds.append(("d", factor_underlying(f), 0.0))
        else:
            sd[i] = vol_of_vol_points_per_day * math.sqrt(horizon_days)
            kinds.append(("v", factor_underlying(f), t_years.get(f, 0.0)))
    corr = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            ki, kj = kinds[i], kinds[j]
            if ki[1] != kj[1]:
                c = 0.0
            elif ki[0] == kj[0] == "v":
                c = math.exp(-abs(ki[2] - kj[2]) / vega_term_decorrelation_years)
            elif ki[0] != kj[0]:
                c = spot_vol_correlation
            else:
                c = 1.0
            corr[i, j] = corr[j, i] = c
    out: FloatArray = corr * np.outer(sd, sd)
    return out
