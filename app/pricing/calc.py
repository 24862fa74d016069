"""The client quote, computed: theo, greeks, risk, optimal markups and their explanation.

Pure (numpy and the quant core): the service feeds it a market snapshot, the package and the
desk's inventory, and stores what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np

from app.domain.expiries import expiry_datetime
from app.marketdata.snapshot import MarketSnapshot
from app.pricing.hit import FloatArray, HitContext, HitCurve
from app.pricing.risk import covariance, factor_underlying, package_factors
from app.quant.pricing import price_package
from app.quant.quoting import inventory_skew, optimal_markups

MARKUP_GRID = np.concatenate([np.linspace(0.0, 0.5, 51)[:-1], np.linspace(0.5, 5.0, 91)])


@dataclass(frozen=True)
class LegSpec:
    expiry: date
    strike: float
    is_call: bool
    ratio: int
    sign: int  # +1 buy / −1 sell, for the structure's buyer


@dataclass(frozen=True)
class QuoteParams:
    risk_aversion_per_usd: float
    horizon_days: float
    vol_of_vol_points_per_day: float
    spot_vol_correlation: float
    vega_term_decorrelation_years: float
    tick_coin: Decimal
    max_abs_delta_coins: float
    max_abs_vega_usd: float


@dataclass(frozen=True)
class SideQuote:
    price_usd: float  # per structure unit
    price_coin: Decimal  # per structure unit, rounded to the tick away from the client
    markup_usd: float  # per structure unit
    hit_probability: float
    explanation: dict[str, Any]


@dataclass(frozen=True)
class QuoteCalc:
    theo_usd: float  # per structure unit
    theo_coin: float
    greeks: dict[str, Any]
    factors: dict[str, float]  # the buyer's exposures for the whole quantity
    bid: SideQuote | None
    ask: SideQuote | None
    refused: dict[str, str] = field(default_factory=dict)  # side -> why it was not quoted
    hit_context: HitContext | None = None


def _round(value_coin: float, tick: Decimal, up: bool) -> Decimal:
    steps = (Decimal(repr(value_coin)) / tick).to_integral_value(
        ROUND_CEILING if up else ROUND_FLOOR
    )
    return steps * tick


def compute_quote(
    snap: MarketSnapshot,
    legs: Sequence[LegSpec],
    *,
    quantity: float,
    side: str,
    hedge_reference: float | None,
    structure: str,
    client: str | None,
    inventory: Mapping[str, float],
    params: QuoteParams,
    hit: HitCurve,
) -> QuoteCalc:
    """Theo ± optimal markup for the requested side(s).

    Markups maximise f(δ)(δ − c) (Guéant's one-shot optimum) where f is the hit curve and c the
    marginal inventory cost of the trade (γ(qΣx + ½xΣx), ``inventory_skew``), both in gross-vega
    vol points. The explanation splits each markup into the base markup (c = 0), the size
    effect (the package's own risk, q = 0) and the inventory skew (the desk's current risk).
    """
    expiries = [leg.expiry for leg in legs]
    strikes = np.array([leg.strike for leg in legs])
    fwd = snap.forwards(expiries)
    t = np.array([snap.t_years(e) for e in expiries])
    sig = snap.vols(expiries, strikes)
    is_call = np.array([leg.is_call for leg in legs])
    n = np.array([leg.sign * leg.ratio * quantity for leg in legs], dtype=float)
    risk = price_package(
        fwd, strikes, t, sig, is_call, n, hedge_reference=hedge_reference, spot=snap.spot
    )
    vega_pt = risk.leg_vegas * 0.01
    gross_vega = float(np.abs(n) @ np.abs(vega_pt))
    scale = max(gross_vega, 1e-9)  # USD per gross-vega vol point of markup
    factors = package_factors(
        snap.underlying, expiries, n, risk.leg_deltas, vega_pt, hedged=hedge_reference is not None
    )
    # the desk's factors of this underlying, but the vega of expiries already past: those
    # options are gone (the inventory keeps the row until it is moved again)
    held = {
        k
        for k in inventory
        if factor_underlying(k) == snap.underlying and not _expired_vega(snap, k)
    }
    keys = sorted(set(factors) | held)
    x = np.array([factors.get(k, 0.0) for k in keys])
    q = np.array([inventory.get(k, 0.0) for k in keys])
    t_by_factor = {k: _factor_t(snap, k) for k in keys if ":vega:" in k}
    atm = float(np.mean(snap.vols(expiries[:1], np.array([float(fwd[0])]))))
    cov = covariance(
        keys,
        spot=snap.spot,
        atm_vol=atm,
        t_years=t_by_factor,
        horizon_days=params.horizon_days,
        vol_of_vol_points_per_day=params.vol_of_vol_points_per_day,
        spot_vol_correlation=params.spot_vol_correlation,
        vega_term_decorrelation_years=params.vega_term_decorrelation_years,
    )
    gamma = params.risk_aversion_per_usd
    zero = np.zeros_like(q)
    notional = float(np.abs(n).max() * snap.spot)
    tenor_days = float(t.max() * 365.0)
    theo_unit = risk.theo_usd / quantity
    spot = snap.spot

    def context(desk_buys: bool) -> HitContext:
        return HitContext(
            underlying=snap.underlying,
            structure=structure,
            side="sell" if desk_buys else "buy",
            quantity=quantity,
            notional_usd=notional,
            gross_vega_usd=gross_vega,
            tenor_days=tenor_days,
            client=client,
            extra={"rfq_side": side, "n_legs": len(legs)},
        )

    def quote_side(desk_buys: bool, probs: FloatArray) -> SideQuote:
        xd = x if desk_buys else -x  # what the desk acquires
        c_size = inventory_skew(xd, zero, cov, gamma) / scale
        c_total = inventory_skew(xd, q, cov, gamma) / scale

        base_, size_, result = optimal_markups(
            probs, (0.0, c_size, c_total), markup_grid=MARKUP_GRID
        )
        base, with_size = base_.markup, size_.markup
        markup_total = result.markup * scale / quantity
        price_usd = theo_unit - markup_total if desk_buys else theo_unit + markup_total
        coin = _round(price_usd / spot, params.tick_coin, up=not desk_buys)
        per_unit = scale / quantity
        return SideQuote(
            price_usd=price_usd,
            price_coin=coin,
            markup_usd=markup_total,
            hit_probability=result.hit_probability,
            explanation={
                "markup_usd": markup_total,
                "markup_vol_points": result.markup,
                "base_markup_usd": base * per_unit,
                "size_usd": (with_size - base) * per_unit,
                "inventory_skew_usd": (result.markup - with_size) * per_unit,
                "marginal_cost_usd": c_total * per_unit,
                "hit_probability": result.hit_probability,
                "expected_pnl_usd": result.expected_pnl * per_unit,
            },
        )

    # the sides asked for whose trade keeps the desk inside its limits; their hit curves
    # come from one model call
    refused: dict[str, str] = {}
    quoted: list[tuple[str, bool]] = []
    for name, desk_buys, asked in (
        ("bid", True, side in ("sell", "two_way")),
        ("ask", False, side in ("buy", "two_way")),
    ):
        if not asked:
            continue
        breach = _limit_breach(keys, q + (x if desk_buys else -x), params)
        if breach:
            refused[name] = breach
        else:
            quoted.append((name, desk_buys))
    curves = hit.curves(MARKUP_GRID, [context(desk_buys) for _, desk_buys in quoted])
    sides = {
        name: quote_side(desk_buys, probs)
        for (name, desk_buys), probs in zip(quoted, curves, strict=True)
    }
    bid, ask = sides.get("bid"), sides.get("ask")
    greeks = {
        "delta_coins": risk.delta,
        "gamma": risk.gamma,
        "vega_usd_per_vol_point": risk.vega * 0.01,
        "theta_usd_per_day": risk.theta / 365.0,
        "rho": risk.rho,
        "hedge_delta_coins": risk.hedge_delta,
        "hedge_adjustment_usd": risk.hedge_adjustment_usd,
        "gross_vega_usd_per_vol_point": gross_vega,
        "theo_usd_total": risk.theo_usd,
        "legs": [
            {
                "forward": float(f),
                "t_years": float(tt),
                "vol": float(s),
                "price_usd": float(p),
                "delta": float(d),
            }
            for f, tt, s, p, d in zip(
                fwd, t, sig, risk.leg_prices_usd, risk.leg_deltas, strict=True
            )
        ],
    }
    return QuoteCalc(
        theo_usd=theo_unit,
        theo_coin=theo_unit / spot,
        greeks=greeks,
        factors=factors,
        bid=bid,
        ask=ask,
        refused=refused,
    )


def _factor_t(snap: MarketSnapshot, factor: str) -> float:
    """Years to the expiry of a vega factor; 0 once it has expired (the risk is gone)."""
    expiry = date.fromisoformat(factor.rsplit(":", 1)[1])
    return snap.t_years(expiry) if expiry_datetime(expiry) > snap.as_of else 0.0


def _expired_vega(snap: MarketSnapshot, factor: str) -> bool:
    """Whether a factor is the vega of an expiry already past."""
    if ":vega:" not in factor:
        return False
    try:
        expiry = date.fromisoformat(factor.rsplit(":", 1)[1])
    except ValueError:
        return False
    return expiry_datetime(expiry) <= snap.as_of


def _limit_breach(keys: Sequence[str], after: FloatArray, params: QuoteParams) -> str | None:
    delta = sum(v for k, v in zip(keys, after, strict=True) if k.endswith(":delta"))
    vega = sum(v for k, v in zip(keys, after, strict=True) if ":vega:" in k)
    if abs(delta) > params.max_abs_delta_coins:
        return (
            f"desk delta would be {delta:,.1f} coins, over the limit of "
            f"{params.max_abs_delta_coins:,.0f}"
        )
    if abs(vega) > params.max_abs_vega_usd:
        return (
            f"desk vega would be {vega:,.0f} USD per vol point, over the limit of "
            f"{params.max_abs_vega_usd:,.0f}"
        )
    if not math.isfinite(delta) or not math.isfinite(vega):
        return "risk is not finite"
    return None
