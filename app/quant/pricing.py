"""European option pricing: Black-76, Black–Scholes–Merton, coin-settled (inverse) options,
implied volatility and multi-leg package risk.

Conventions (QUANT.md §4)
-------------------------
* Inputs are floats or arrays that broadcast together; the leading axis is the leg axis.
* ``t_years`` is ACT/365 year fraction, ``sigma`` an annual volatility as a decimal (0.6 = 60 %),
  ``rate_cc`` a continuously compounded annual rate (0 is the crypto default).
* One option is on 1 coin of underlying. USD greeks are per 1 coin: ``delta`` in coins, ``gamma``
  in 1/USD, ``vega`` per 1.00 of vol (divide by 100 for a vol point), ``theta`` per year of
  calendar time (divide by 365 for a day), ``rho`` per 1.00 of rate (divide by 100 for 1 %).
* ``is_call`` is a bool or bool array (True = call, False = put).

Expiry and zero vol are handled without NaN: when σ√T = 0 the price is the discounted intrinsic
value, delta is the discounted indicator (½ exactly at the money), gamma = vega = 0.

References
----------
Black, F. (1976) "The pricing of commodity contracts", J. Fin. Econ. 3, 167–179.
Hull, J. *Options, Futures, and Other Derivatives* (Black-76, BSM greeks; QUANT.md A10–A12).
Alexander, C. & Imeraj, A. (2021) "Inverse options in a Black–Scholes world", arXiv:2107.12041.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from app.quant.errors import ImpliedVolNotFound, InvalidInput, NoConvergence
from app.quant.types import FloatArray, OptionGreeks, PackageRisk

__all__ = [
    "OptionGreeks",
    "PackageRisk",
    "black76",
    "bsm",
    "coin_option",
    "deribit_display_greeks",
    "implied_vol",
    "price_package",
]

ArrayLike = float | npt.ArrayLike
BoolLike = bool | npt.ArrayLike

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_DAYS_PER_YEAR = 365.0


class _Core(NamedTuple):
    """Undiscounted Black-76 quantities (price, greeks w.r.t. the forward)."""

    price: FloatArray  # ω[F N(ωd1) − K N(ωd2)]
    delta: FloatArray  # ω N(ωd1)
    gamma: FloatArray  # φ(d1) / (F σ√T)
    vega: FloatArray  # F φ(d1) √T
    theta_vol: FloatArray  # −F φ(d1) σ / (2√T)  (time decay at zero rate)
    d1: FloatArray
    d2: FloatArray


def _f64(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _omega(is_call: BoolLike) -> FloatArray:
    flags = np.asarray(is_call)
    if flags.dtype != np.bool_:
        raise InvalidInput("is_call must be a bool or an array of bools")
    return np.where(flags, 1.0, -1.0)


_SMALL = 64  # up to this many numbers, validate in Python: numpy's per-call overhead dominates


def _in_range(values: list[float], lower_open: bool) -> bool:
    if lower_open:
        return all(0.0 < v < math.inf for v in values)
    return all(0.0 <= v < math.inf for v in values)


def _check_market(
    forward: FloatArray, strike: FloatArray, t: FloatArray, sigma: FloatArray
) -> None:
    # Comparisons with NaN are False, so NaN fails; ±inf fails the `< inf` tests.
    if forward.size + strike.size + t.size + sigma.size <= _SMALL:
        ok = _in_range(forward.ravel().tolist() + strike.ravel().tolist(), True) and _in_range(
            t.ravel().tolist() + sigma.ravel().tolist(), False
        )
    else:
        inf = np.inf
        ok = bool(
            (
                (forward > 0.0)
                & (forward < inf)
                & (strike > 0.0)
                & (strike < inf)
                & (t >= 0.0)
                & (t < inf)
                & (sigma >= 0.0)
                & (sigma < inf)
            ).all()
        )
    if not ok:
        raise InvalidInput(
            "need 0 < forward < inf, 0 < strike < inf, 0 <= t_years < inf, 0 <= sigma < inf"
        )


def _check_rate(rate: FloatArray, name: str = "rate_cc") -> None:
    finite = (
        all(math.isfinite(v) for v in rate.ravel().tolist())
        if rate.size <= _SMALL
        else bool(np.isfinite(rate).all())
    )
    if not finite:
        raise InvalidInput(f"{name} must be finite")


def _core(
    forward: FloatArray, strike: FloatArray, t: FloatArray, sigma: FloatArray, omega: FloatArray
) -> _Core:
    sqrt_t = np.sqrt(t)
    s = sigma * sqrt_t
    ln_fk = np.log(forward / strike)
    if (s > 0.0).all():
        d1 = ln_fk / s + 0.5 * s
        d2 = d1 - s
        pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
        gamma = pdf / (forward * s)
        theta_vol = -0.5 * forward * pdf * sigma / sqrt_t
    else:
        # σ√T = 0 somewhere: the terminal payoff. d1 = d2 = ±inf (0 at the money), φ(d1) = 0.
        live = s > 0.0
        s_safe = np.where(live, s, 1.0)
        limit = np.where(ln_fk > 0.0, np.inf, np.where(ln_fk < 0.0, -np.inf, 0.0))
        d1 = np.where(live, ln_fk / s_safe + 0.5 * s, limit)
        d2 = np.where(live, d1 - s, limit)
        pdf = np.where(live, np.exp(-0.5 * np.where(live, d1, 0.0) ** 2) * _INV_SQRT_2PI, 0.0)
        gamma = pdf / (forward * s_safe)
        theta_vol = -0.5 * forward * pdf * sigma / np.where(t > 0.0, sqrt_t, 1.0)
    nd1 = ndtr(omega * d1)
    nd2 = ndtr(omega * d2)
    price = omega * (forward * nd1 - strike * nd2)
    return _Core(price, omega * nd1, gamma, forward * pdf * sqrt_t, theta_vol, d1, d2)


def _full(x: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    return x if x.shape == shape else np.broadcast_to(x, shape).copy()


def _greeks(
    shape: tuple[int, ...],
    price: FloatArray,
    delta: FloatArray,
    gamma: FloatArray,
    vega: FloatArray,
    theta: FloatArray,
    rho: FloatArray,
) -> OptionGreeks:
    return OptionGreeks(
        price=_full(price, shape),
        delta=_full(delta, shape),
        gamma=_full(gamma, shape),
        vega=_full(vega, shape),
        theta=_full(theta, shape),
        rho=_full(rho, shape),
    )


def black76(
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    sigma: ArrayLike,
    is_call: BoolLike,
    rate_cc: ArrayLike = 0.0,
) -> OptionGreeks:
    r"""Black-76 price and greeks of a European option on a forward/future (USD per 1 coin).

    Parameters
    ----------
    forward, strike
        Forward price F of the expiry and strike K (USD, > 0).
    t_years
        Time to expiry T in years (≥ 0).
    sigma
        Annual implied volatility σ (decimal, ≥ 0).
    is_call
        True for a call, False for a put.
    rate_cc
        Continuously compounded discount rate r (the premium is paid now, the payoff at T).

    Returns
    -------
    OptionGreeks
        ``price`` (USD); ``delta`` = ∂V/∂F; ``gamma`` = ∂²V/∂F²; ``vega`` = ∂V/∂σ (per 1.00);
        ``theta`` = ∂V/∂t (calendar time, per year; = −∂V/∂T); ``rho`` = ∂V/∂r with F held
        fixed (per 1.00).

    Notes
    -----
    With D = e^{−rT}, d1 = [ln(F/K) + ½σ²T]/(σ√T), d2 = d1 − σ√T, ω = ±1 (call/put):

    .. math::

        V = ωD[F N(ωd1) − K N(ωd2)],\quad Δ = ωD N(ωd1),\quad Γ = Dφ(d1)/(Fσ√T),\quad
        \mathcal V = DFφ(d1)\sqrt T,\quad Θ = −DFφ(d1)σ/(2\sqrt T) + rV,\quad ρ = −TV.

    Reference: Black (1976); Hull, crude-oil futures put example (QUANT.md A12).

    Examples
    --------
    >>> g = black76(20.0, 20.0, 4 / 12, 0.25, False, rate_cc=0.09)
    >>> round(float(g.price), 4)
    1.1166
    """
    f, k, t, sig, r = _f64(forward), _f64(strike), _f64(t_years), _f64(sigma), _f64(rate_cc)
    omega = _omega(is_call)
    _check_market(f, k, t, sig)
    _check_rate(r)
    shape = np.broadcast_shapes(f.shape, k.shape, t.shape, sig.shape, omega.shape, r.shape)
    c = _core(f, k, t, sig, omega)
    disc = np.exp(-r * t)
    price = disc * c.price
    return _greeks(
        shape,
        price,
        disc * c.delta,
        disc * c.gamma,
        disc * c.vega,
        disc * c.theta_vol + r * price,
        -t * price,
    )


def bsm(
    spot: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    sigma: ArrayLike,
    is_call: BoolLike,
    rate_cc: ArrayLike,
    div_cc: ArrayLike = 0.0,
) -> OptionGreeks:
    r"""Black–Scholes–Merton price and greeks on a spot with a continuous yield.

    Parameters
    ----------
    spot
        Spot price S (> 0).
    strike, t_years, sigma, is_call
        As in :func:`black76`.
    rate_cc
        Continuously compounded risk-free rate r.
    div_cc
        Continuous dividend / foreign / coin-lending yield q.

    Returns
    -------
    OptionGreeks
        ``delta`` = ∂V/∂S, ``gamma`` = ∂²V/∂S², ``vega`` per 1.00 vol, ``theta`` = ∂V/∂t per year
        (spot held fixed), ``rho`` = ∂V/∂r per 1.00 (spot and q held fixed).

    Notes
    -----
    Black-76 on F = S e^{(r−q)T} discounted at r. Call: C = Se^{−qT}N(d1) − Ke^{−rT}N(d2),
    Δ = e^{−qT}N(d1), Γ = e^{−qT}φ(d1)/(Sσ√T), vega = Se^{−qT}φ(d1)√T,
    Θ = −Se^{−qT}φ(d1)σ/(2√T) − rKe^{−rT}N(d2) + qSe^{−qT}N(d1), ρ = KTe^{−rT}N(d2).
    Reference: Hull, stock-option and "Greek letters" examples (QUANT.md A10, A11).

    Examples
    --------
    >>> round(float(bsm(42.0, 40.0, 0.5, 0.2, True, 0.1).price), 4)
    4.7594
    """
    s, k, t, sig = _f64(spot), _f64(strike), _f64(t_years), _f64(sigma)
    r, q = _f64(rate_cc), _f64(div_cc)
    omega = _omega(is_call)
    _check_market(s, k, t, sig)
    _check_rate(r)
    _check_rate(q, "div_cc")
    shape = np.broadcast_shapes(s.shape, k.shape, t.shape, sig.shape, omega.shape, r.shape, q.shape)
    growth = np.exp((r - q) * t)
    f = s * growth
    c = _core(f, k, t, sig, omega)
    disc = np.exp(-r * t)
    price = disc * c.price
    delta_f = disc * c.delta  # ∂V/∂F
    return _greeks(
        shape,
        price,
        delta_f * growth,
        disc * c.gamma * growth * growth,
        disc * c.vega,
        disc * c.theta_vol + r * price - (r - q) * f * delta_f,
        t * (f * delta_f - price),
    )


def coin_option(
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    sigma: ArrayLike,
    is_call: BoolLike,
    rate_cc: ArrayLike = 0.0,
) -> OptionGreeks:
    r"""Coin-settled (inverse, Deribit-style) option: premium and payoff in coin.

    Parameters
    ----------
    forward, strike, t_years, sigma, is_call
        As in :func:`black76` (forward and strike in USD per coin).
    rate_cc
        Continuously compounded *coin* rate r_c discounting the coin payoff (0 on Deribit).

    Returns
    -------
    OptionGreeks
        All in coin per 1 coin of notional:

        * ``price`` c (coin); USD value = c × spot;
        * ``delta`` = F ∂c/∂F = Δ_BS − c, Deribit's *net transaction delta* (coins): the
          Black–Scholes delta D N(d1) (call) / D(N(d1) − 1) (put) minus the coin premium, which
          already is c coins of long-coin exposure;
        * ``gamma`` = ∂delta/∂F = Γ_BS − delta/F (coin per USD), Γ_BS = Dφ(d1)/(Fσ√T);
        * ``vega`` = ∂c/∂σ = Dφ(d1)√T (coin per 1.00 vol) = undiscounted USD vega / F;
        * ``theta`` = ∂c/∂t = −Dφ(d1)σ/(2√T) + r_c c (coin per year) = USD theta / F at r = 0;
        * ``rho`` = ∂c/∂r_c = −T c (coin per 1.00 of coin rate).

        Deribit *displays* USD greeks instead (see :func:`deribit_display_greeks`).

    Notes
    -----
    With D = e^{−r_c T} (QUANT.md §4, Alexander & Imeraj 2021):

    .. math::

        c_{call} = D[N(d1) − (K/F)N(d2)],\qquad c_{put} = D[(K/F)N(−d2) − N(−d1)],
        \qquad F\,∂c/∂F = Δ_{BS} − c.

    Reference: QUANT.md A13 (F = K = 100 000, σ = 60 %, T = 30/365: c = 0.068539 BTC,
    Δ_BS = 0.53427, net delta 0.46573).

    Examples
    --------
    >>> g = coin_option(100_000.0, 100_000.0, 30 / 365, 0.6, True)
    >>> round(float(g.price), 6), round(float(g.delta), 5)
    (0.068539, 0.46573)
    """
    f, k, t, sig, r = _f64(forward), _f64(strike), _f64(t_years), _f64(sigma), _f64(rate_cc)
    omega = _omega(is_call)
    _check_market(f, k, t, sig)
    _check_rate(r)
    shape = np.broadcast_shapes(f.shape, k.shape, t.shape, sig.shape, omega.shape, r.shape)
    c = _core(f, k, t, sig, omega)
    disc = np.exp(-r * t)
    price = disc * c.price / f
    delta = disc * c.delta - price
    return _greeks(
        shape,
        price,
        delta,
        disc * c.gamma - delta / f,
        disc * c.vega / f,
        disc * c.theta_vol / f + r * price,
        -t * price,
    )


def deribit_display_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    sigma: ArrayLike,
    is_call: BoolLike,
) -> OptionGreeks:
    r"""The mark price and greeks as Deribit's ticker shows them for BTC/ETH options.

    Parameters
    ----------
    forward
        ``underlying_price`` (the expiry's future or synthetic forward, USD).
    strike, is_call
        From the instrument name.
    t_years
        (expiration 08:00 UTC − ticker ``timestamp``) / (365 × 86 400 s).
    sigma
        ``mark_iv`` / 100.

    Returns
    -------
    OptionGreeks
        ``price`` = ``mark_price`` in coin (c = N(d1) − (K/F)N(d2), zero coin rate);
        ``delta`` = Black–Scholes delta N(d1) / N(d1) − 1 (coins, *not* net of the premium);
        ``gamma`` (1/USD); ``vega`` (USD per 1 vol point); ``theta`` (USD per calendar day,
        floored at minus the remaining time value, Deribit's "minimum of 1-day theta and
        lifetime theta" when less than a day is left); ``rho`` = K T N(d2)/100 (call) or
        −K T N(−d2)/100 (put), USD per 1 % of USD rate with spot held fixed.

    Notes
    -----
    Undiscounted Black-76 on F with r = 0, per the venue fixtures' README (agrees to ~1e-4).
    Expired instruments (T = 0) are not special-cased here; Deribit then reports zeros.
    """
    f, k, t, sig = _f64(forward), _f64(strike), _f64(t_years), _f64(sigma)
    omega = _omega(is_call)
    _check_market(f, k, t, sig)
    shape = np.broadcast_shapes(f.shape, k.shape, t.shape, sig.shape, omega.shape)
    c = _core(f, k, t, sig, omega)
    time_value = c.price - np.maximum(omega * (f - k), 0.0)
    theta_day = c.theta_vol / _DAYS_PER_YEAR
    theta = np.where(t * _DAYS_PER_YEAR < 1.0, np.maximum(theta_day, -time_value), theta_day)
    rho = omega * k * t * ndtr(omega * c.d2) / 100.0
    return _greeks(shape, c.price / f, c.delta, c.gamma, c.vega / 100.0, theta, rho)


# ---------------------------------------------------------------------------------------------
# implied volatility
# ---------------------------------------------------------------------------------------------


def _otm_normalised(y: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Normalised out-of-the-money Black price b(y, s) and ∂b/∂s for y = −|ln(F/K)| ≤ 0.

    b = e^{y/2}N(y/s + s/2) − e^{−y/2}N(y/s − s/2) = (OTM undiscounted price)/√(FK).
    """
    d1 = y / s + 0.5 * s
    b = np.exp(0.5 * y) * ndtr(d1) - np.exp(-0.5 * y) * ndtr(d1 - s)
    db = np.exp(0.5 * y - 0.5 * d1 * d1) * _INV_SQRT_2PI
    return b, db


def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    is_call: BoolLike,
    rate_cc: ArrayLike = 0.0,
    *,
    max_iter: int = 100,
) -> FloatArray:
    r"""Black-76 implied volatility of discounted USD option prices (vectorised).

    Parameters
    ----------
    price
        Discounted Black-76 price V (USD per 1 coin), as returned by :func:`black76`.
    forward, strike, t_years, is_call, rate_cc
        As in :func:`black76`; ``t_years`` must be > 0.
    max_iter
        Iteration cap of the safeguarded Newton solver.

    Returns
    -------
    numpy.ndarray
        σ with the broadcast shape of the inputs. A price equal to the intrinsic value (no time
        value) gives σ = 0.

    Raises
    ------
    ImpliedVolNotFound
        Price below the lower no-arbitrage bound D·max(ω(F − K), 0), at or above the upper
        bound D·F (call) / D·K (put), non-finite, or t_years = 0.
    NoConvergence
        The solver failed its tolerance (not observed in tests).

    Notes
    -----
    The price is first checked against the no-arbitrage bounds, then mapped by put–call parity
    to the out-of-the-money option's normalised price b* = (V/D − intrinsic)/√(FK), with
    y = −|ln(F/K)|. We solve ln b(y, s) = ln b* for the total vol s = σ√T by Newton's method:
    ln b is concave in s, so from any start the iterates reach the left of the root after at
    most one step and then increase monotonically (quadratic convergence). Each step is kept
    inside a bracket [lo, hi] updated from the sign of the residual, falling back to bisection
    (a safeguarded Newton, "rtsafe", Numerical Recipes §9.4). Start: max(√(2|y|), the ATM
    inversion 2N⁻¹((1 + b*)/2)); √(2|y|) is the inflection point of b(s) (Jäckel 2015,
    "Let's be rational"). Round-trips :func:`black76` to better than 1e-9 in σ wherever a 1e-8
    change of σ moves the price by more than its rounding (tested with hypothesis).
    """
    p, f, k, t, r = _f64(price), _f64(forward), _f64(strike), _f64(t_years), _f64(rate_cc)
    omega = _omega(is_call)
    p, f, k, t, r, omega = np.broadcast_arrays(p, f, k, t, r, omega)
    shape = p.shape
    p, f, k, t, r, omega = (a.ravel() for a in (p, f, k, t, r, omega))
    if not (np.all((f > 0) & (f < np.inf)) and np.all((k > 0) & (k < np.inf))):
        raise InvalidInput("need 0 < forward < inf and 0 < strike < inf")
    _check_rate(r)

    def fail(mask: npt.NDArray[np.bool_], reason: str) -> None:
        if np.any(mask):
            raise ImpliedVolNotFound(reason, int(np.flatnonzero(mask)[0]))

    fail(~np.isfinite(p), "price is not finite")
    fail(~((t > 0) & (t < np.inf)), "t_years must be > 0 and finite (no time value to invert)")
    disc = np.exp(-r * t)
    undisc = p / disc
    intrinsic = np.maximum(omega * (f - k), 0.0)
    upper = np.where(omega > 0, f, k)
    scale = np.maximum(f, k)
    fail(
        undisc < intrinsic - 1e-13 * scale,
        "price below the lower no-arbitrage bound D·max(±(F − K), 0) (intrinsic value)",
    )
    fail(
        undisc >= upper * (1.0 - 1e-15),
        "price at or above the upper no-arbitrage bound D·F (call) / D·K (put)",
    )
    x = np.log(f / k)
    y = -np.abs(x)
    b_star = np.maximum(undisc - intrinsic, 0.0) / np.sqrt(f * k)
    # Parity can push an OTM-equivalent price over its own cap e^{y/2} by rounding only.
    fail(b_star >= np.exp(0.5 * y), "price at or above the upper no-arbitrage bound")
    sigma = np.zeros_like(p)
    live = b_star > 0.0
    if np.any(live):
        yl, bl = y[live], b_star[live]
        s_atm = 2.0 * ndtri(0.5 * (1.0 + bl))
        s = np.maximum(np.sqrt(2.0 * np.abs(yl)), s_atm)
        s = np.where(s > 0.0, s, 1e-8)
        lo = np.zeros_like(s)
        hi = np.full_like(s, np.inf)
        log_b_star = np.log(bl)
        active = np.ones(s.shape, dtype=bool)
        for _ in range(max_iter):
            b, db = _otm_normalised(yl[active], s[active])
            with np.errstate(divide="ignore"):
                g = np.log(b) - log_b_star[active]
            sa, loa, hia = s[active], lo[active], hi[active]
            below = g < 0.0
            loa = np.where(below, sa, loa)
            hia = np.where(below, hia, sa)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = g * b / db
            new = sa - step
            bad = ~np.isfinite(new) | (new < loa) | (new > hia)
            bisect = np.where(np.isfinite(hia), 0.5 * (loa + hia), 2.0 * sa)
            new = np.where(bad, bisect, new)
            # Converged: residual at rounding level, or a Newton step below 1e-12 relative
            # (quadratic convergence: the new iterate is then exact to rounding), or the
            # bracket closed.
            flat = np.abs(g) <= 1e-15
            done = flat | (np.abs(new - sa) <= 1e-12 * sa) | (hia - loa <= 1e-15 * loa)
            new = np.where(flat, sa, new)
            s[active], lo[active], hi[active] = new, loa, hia
            still = active.copy()
            still[active] = ~done
            active = still
            if not np.any(active):
                break
        else:
            raise NoConvergence(f"implied_vol: {int(active.sum())} element(s) not converged")
        sigma[live] = s / np.sqrt(t[live])
    return sigma.reshape(shape)


# ---------------------------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------------------------


def price_package(
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    sigma: ArrayLike,
    is_call: BoolLike,
    signed_size: ArrayLike,
    hedge_reference: float | None = None,
    spot: float | None = None,
    rate_cc: ArrayLike = 0.0,
) -> PackageRisk:
    r"""Theo and greeks of a multi-leg option package, optionally delta-hedged at a reference.

    Parameters
    ----------
    forward, strike, t_years, sigma, is_call, rate_cc
        Per-leg Black-76 inputs (arrays over legs, broadcastable; each leg uses the forward of
        its own expiry).
    signed_size
        Per leg: (+1 buy / −1 sell) × ratio × quantity, in coins, from the point of view of the
        party whose position is valued (normally the buyer of the structure as written).
    hedge_reference
        H: when given the package trades delta-neutral ("vs H"): the holder also trades
        −Δ_i coins of underlying at H for each leg i (Δ_i = signed_size_i × leg delta against
        the leg's own forward F_i), i.e. sells the package delta at H.
    spot
        Index price, used only to convert to coin: theo_coin = theo_usd / spot. When None each
        leg uses S_i = F_i e^{−r T_i} (zero coin rate), so a leg's coin value is
        N(d1) − (K/F)N(d2) (QUANT.md §4).

    Returns
    -------
    PackageRisk
        ``theo_usd`` = Σ n_i V_i + hedge_adjustment_usd; ``theo_coin`` its coin value;
        ``delta`` = package delta after the hedge (0 with a hedge reference, else Σ n_i Δ_i);
        ``gamma``, ``vega``, ``theta``, ``rho`` = Σ n_i × the :func:`black76` greeks (USD units
        as there); ``leg_prices_usd``, ``leg_deltas``, ``leg_vegas`` per 1 long unit of each leg;
        ``hedge_delta`` = −Σ n_i Δ_i, the coins traded in the hedge (0 without a reference);
        ``hedge_adjustment_usd`` = Σ n_i Δ_i (H − F_i).

    Notes
    -----
    Sign convention of the hedge: selling Δ coins at H while the market forward is F is worth
    Δ(H − F) to the holder (a gain when H > F), marked at the leg's forward without
    discounting (futures / perpetual hedge). Equivalently the adjustment is −Δ(F − H), the P&L
    of the −Δ hedge bought at H; to first order theo_usd equals the package value re-evaluated
    with every forward moved to H, which is what a "vs H" quote means.
    """
    f, k, t, sig, r = _f64(forward), _f64(strike), _f64(t_years), _f64(sigma), _f64(rate_cc)
    n = _f64(signed_size)
    omega = _omega(is_call)
    _check_market(f, k, t, sig)
    _check_rate(r)
    if not (f.ndim == 1 and f.shape == k.shape == t.shape == sig.shape == n.shape == omega.shape):
        f, k, t, sig, r, n, omega = np.broadcast_arrays(f, k, t, sig, r, n, omega)
        if f.ndim != 1:
            raise InvalidInput("package inputs must broadcast to one axis of legs")
    _check_rate(n, "signed_size")
    c = _core(f, k, t, sig, omega)
    if r.ndim == 0 and float(r) == 0.0:  # the crypto default: nothing to discount
        leg_price, leg_delta, leg_gamma = c.price, c.delta, c.gamma
        leg_vega, leg_theta, spot_legs = c.vega, c.theta_vol, f
    else:
        disc = np.exp(-r * t)
        leg_price, leg_delta, leg_gamma = disc * c.price, disc * c.delta, disc * c.gamma
        leg_vega, leg_theta = disc * c.vega, disc * c.theta_vol + r * leg_price
        spot_legs = f * disc  # S_i = F_i e^{−r T_i} (zero coin rate)
    # One matrix product for all signed sums (numpy's per-call overhead dominates at 4 legs).
    sums = np.array([leg_price, leg_delta, leg_gamma, leg_vega, leg_theta, t * leg_price]) @ n
    theo_options, option_delta, gamma, vega, theta, t_price = sums.tolist()
    if hedge_reference is None:
        hedge_adjustment, hedge_delta, delta = 0.0, 0.0, option_delta
        value_legs = leg_price
    else:
        if not (0.0 < hedge_reference < math.inf):
            raise InvalidInput("hedge_reference must be a positive finite price")
        adj_legs = leg_delta * (hedge_reference - f)
        hedge_adjustment = float(n @ adj_legs)
        hedge_delta, delta = -option_delta, 0.0
        value_legs = leg_price + adj_legs
    theo_usd = theo_options + hedge_adjustment
    if spot is None:
        theo_coin = float(n @ (value_legs / spot_legs))
    else:
        if not (0.0 < spot < math.inf):
            raise InvalidInput("spot must be a positive finite price")
        theo_coin = theo_usd / spot
    return PackageRisk(
        theo_usd=theo_usd,
        theo_coin=theo_coin,
        delta=delta,
        gamma=gamma,
        vega=vega,
        theta=theta,
        rho=-t_price,
        leg_prices_usd=leg_price,
        leg_deltas=leg_delta,
        leg_vegas=leg_vega,
        hedge_delta=hedge_delta,
        hedge_adjustment_usd=hedge_adjustment,
    )
