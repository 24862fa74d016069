r"""Simulated market data: the embedded default feed (no venue, no network).

Each underlying has a seeded random state advanced by the clock time elapsed since its previous
snapshot:

* **Spot**: Merton jump diffusion (GBM plus compound-Poisson log-normal jumps), sampled exactly
  over any elapsed time ``Δt`` (years):

  .. math:: \ln\frac{S_{t+Δt}}{S_t} = (μ − ½σ^2 − λκ)Δt + σ\sqrt{Δt}\,Z + \sum_{j=1}^{N} Y_j,
            \quad N \sim \mathrm{Poisson}(λΔt),\ Y_j \sim \mathcal N(μ_J, σ_J^2),
            \ κ = e^{μ_J + σ_J^2/2} − 1,

  so ``E[S_{t+Δt}] = S_t e^{μΔt}``.
* **Vol level**: ``x = ln L`` (a multiplier of every implied vol) mean-reverts to 0 and moves
  against spot: ``x ← x e^{−κ_x Δt} + β (r − E[r]) + ξ\sqrt{(1 − e^{−2κ_xΔt})/(2κ_x)}\,Z'`` with
  ``β < 0`` (a spot drop, jumps included, lifts vols), clipped to ``level_bounds``.
* **Forward**: ``F(t) = S e^{\text{basis}·t}``.
* **Smile**: SSVI (Gatheral & Jacquier 2014, §4) per expiry, in log-moneyness ``k = ln(K/F)``
  so it moves with spot: ``w(k) = θ/2 (1 + ρφk + \sqrt{(φk + ρ)^2 + 1 − ρ^2})`` with ATM total
  variance ``θ(t) = L^2 [σ_∞^2 t + (σ_0^2 − σ_∞^2) τ (1 − e^{−t/τ})]`` (ATM vol ``σ_0`` at the
  short end, ``σ_∞`` at the long end, increasing in ``t``) and power-law
  ``φ(θ) = η θ^{−γ}(1 + θ)^{γ−1}``. With ``η(1 + |ρ|) ≤ 2`` and ``0 < γ ≤ ½`` the surface is
  free of static arbitrage (butterfly and calendar); each slice is exported as raw SVI:
  ``a = θ(1 − ρ^2)/2, b = θφ/2, m = −ρ/φ, σ = \sqrt{1 − ρ^2}/φ``.
* **Listed expiries** like the venue's, at 08:00 UTC: the next dailies, weeklies (Fridays),
  monthlies (last Fridays) and quarterlies (last Fridays of Mar/Jun/Sep/Dec) up to a horizon
  (:func:`listed_expiries`).

The same seed and the same sequence of clock readings per underlying give the same snapshots;
underlyings draw from independent generators, so interleaving calls does not matter.

References
----------
Merton, R. (1976) "Option pricing when underlying stock returns are discontinuous",
J. Fin. Econ. 3, 125–144. Gatheral, J. & Jacquier, A. (2014) "Arbitrage-free SVI volatility
surfaces", Quant. Finance 14(1), 59–71.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType

import numpy as np

from app.domain.expiries import EXPIRY_HOUR_UTC, expiry_datetime, last_friday
from app.marketdata.errors import MarketDataError, UnknownUnderlying
from app.marketdata.snapshot import (
    YEAR_SECONDS,
    ExpirySlice,
    FloatArray,
    MarketSnapshot,
    _slice_unchecked,
    _svi_unchecked,
)

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_SPOTS",
    "GENERIC_MODEL",
    "SimulatedFeed",
    "UnderlyingModel",
    "listed_expiries",
]

_FRIDAY = 4
_QUARTER_MONTHS = (3, 6, 9, 12)


@dataclass(frozen=True, slots=True)
class UnderlyingModel:
    """Dynamics and smile of one simulated underlying (annual units, decimals).

    Parameters
    ----------
    spot_vol
        σ, diffusion volatility of ln S.
    drift
        μ, expected return: ``E[S_t] = S_0 e^{μt}``.
    jump_intensity
        λ, expected jumps per year.
    jump_mean, jump_vol
        μ_J and σ_J of a log jump.
    atm_vol_short, atm_vol_long
        ATM implied vol σ_0 as ``t → 0`` and σ_∞ as ``t → ∞`` (at level multiplier 1).
    term_years
        τ, the time scale over which ATM variance moves from σ_0² to σ_∞².
    skew_rho
        SSVI ρ (negative: put skew), ``|ρ| < 1``.
    smile_eta, smile_gamma
        SSVI power-law η and γ; need ``η(1 + |ρ|) ≤ 2`` and ``0 < γ ≤ ½``.
    spot_vol_beta
        β, change of ln(vol level) per unit unexpected log return (negative).
    level_reversion
        κ_x, mean-reversion speed of the log vol level (per year).
    level_vol
        ξ, volatility of the log vol level (per √year).
    level_bounds
        Clip of the log vol level, ``(low, high)`` with ``low < 0 < high``.

    Raises
    ------
    MarketDataError
        A parameter out of range (including the SSVI no-arbitrage conditions).
    """

    spot_vol: float = 0.45
    drift: float = 0.0
    jump_intensity: float = 10.0
    jump_mean: float = -0.01
    jump_vol: float = 0.04
    atm_vol_short: float = 0.47
    atm_vol_long: float = 0.56
    term_years: float = 0.25
    skew_rho: float = -0.15
    smile_eta: float = 1.0
    smile_gamma: float = 0.5
    spot_vol_beta: float = -1.0
    level_reversion: float = 6.0
    level_vol: float = 0.4
    level_bounds: tuple[float, float] = (-0.6, 0.9)

    def __post_init__(self) -> None:
        positive = ("spot_vol", "atm_vol_short", "atm_vol_long", "term_years", "smile_eta")
        non_negative = ("jump_intensity", "jump_vol", "level_reversion", "level_vol")
        for name in (*positive, *non_negative, "drift", "jump_mean", "spot_vol_beta"):
            value = getattr(self, name)
            if not (isinstance(value, float | int) and math.isfinite(value)):
                raise MarketDataError(f"{name} must be a finite number, got {value!r}")
        for name in positive:
            if getattr(self, name) <= 0:
                raise MarketDataError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise MarketDataError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not -1.0 < self.skew_rho < 1.0:
            raise MarketDataError(f"skew_rho must be in (-1, 1), got {self.skew_rho!r}")
        if not 0.0 < self.smile_gamma <= 0.5:
            raise MarketDataError(f"smile_gamma must be in (0, 0.5], got {self.smile_gamma!r}")
        if self.smile_eta * (1.0 + abs(self.skew_rho)) > 2.0:
            raise MarketDataError(
                "SSVI needs smile_eta·(1 + |skew_rho|) <= 2 to be free of butterfly arbitrage"
            )
        low, high = self.level_bounds
        if not low < 0.0 < high:
            raise MarketDataError(f"level_bounds must satisfy low < 0 < high, got {(low, high)}")

    @property
    def jump_compensator(self) -> float:
        """κ = E[e^Y] − 1, the mean relative jump size."""
        return math.exp(self.jump_mean + 0.5 * self.jump_vol**2) - 1.0

    def log_return_mean(self, dt_years: float) -> float:
        """``E[ln S_{t+Δt}/S_t] = (μ − σ²/2 − λκ + λμ_J)Δt``."""
        lam = self.jump_intensity
        return (
            self.drift - 0.5 * self.spot_vol**2 - lam * self.jump_compensator + lam * self.jump_mean
        ) * dt_years

    def log_return_variance(self, dt_years: float) -> float:
        """``Var[ln S_{t+Δt}/S_t] = (σ² + λ(μ_J² + σ_J²))Δt``."""
        return (
            self.spot_vol**2 + self.jump_intensity * (self.jump_mean**2 + self.jump_vol**2)
        ) * dt_years

    def atm_total_variance(self, t_years: FloatArray, level: float = 1.0) -> FloatArray:
        """ATM total variance ``θ(t) = L²[σ_∞² t + (σ_0² − σ_∞²) τ (1 − e^{−t/τ})]``."""
        s0, s_inf, tau = self.atm_vol_short**2, self.atm_vol_long**2, self.term_years
        theta: FloatArray = (level * level) * (
            s_inf * t_years + (s0 - s_inf) * tau * -np.expm1(-t_years / tau)
        )
        return theta


DEFAULT_MODELS: Mapping[str, UnderlyingModel] = MappingProxyType(
    {
        "BTC": UnderlyingModel(),
        "ETH": UnderlyingModel(
            spot_vol=0.60,
            jump_intensity=12.0,
            jump_mean=-0.015,
            jump_vol=0.05,
            atm_vol_short=0.60,
            atm_vol_long=0.70,
            skew_rho=-0.2,
            smile_eta=1.1,
        ),
    }
)
"""Per-underlying defaults: BTC ATM vol ≈ 47 % (days) to 55 % (1 year), ETH ≈ 60 % to 68 %."""

GENERIC_MODEL = UnderlyingModel(
    spot_vol=0.75, atm_vol_short=0.75, atm_vol_long=0.80, jump_vol=0.06, skew_rho=-0.1
)
"""Model of an underlying in ``spots`` that has no entry in the models mapping."""

DEFAULT_SPOTS: Mapping[str, float] = MappingProxyType({"BTC": 65_000.0, "ETH": 3_000.0})
"""Initial spots of the default feed (USD)."""


def listed_expiries(
    as_of: datetime,
    *,
    dailies: int = 3,
    weeklies: int = 4,
    monthlies: int = 3,
    horizon_days: int = 366,
) -> tuple[date, ...]:
    """Expiries the venue would list at ``as_of`` (08:00 UTC each), increasing.

    Parameters
    ----------
    as_of
        Timezone-aware time; an expiry is live while its 08:00 UTC is after ``as_of``.
    dailies
        Number of consecutive live dates (every weekday) listed.
    weeklies
        Number of live Fridays listed.
    monthlies
        Number of live month-end expiries (last Friday of a month) listed.
    horizon_days
        Quarterlies (last Friday of March, June, September, December) are listed up to this
        many days after ``as_of``.

    Returns
    -------
    tuple of date
        Union of the four series, sorted. On 2025-05-08 after 08:00 this is the venue's own
        list for BTC: 9, 10, 11, 16, 23, 30 May, 27 Jun, 25 Jul, 26 Sep, 26 Dec, 27 Mar 2026.
    """
    first = as_of.astimezone(UTC).date()
    if expiry_datetime(first) <= as_of:
        first += timedelta(days=1)
    out = {first + timedelta(days=i) for i in range(dailies)}
    friday = first + timedelta(days=(_FRIDAY - first.weekday()) % 7)
    out.update(friday + timedelta(weeks=i) for i in range(weeklies))
    year, month = first.year, first.month
    ends: list[date] = []
    horizon = first + timedelta(days=horizon_days)
    while len(ends) < monthlies or (year, month) <= (horizon.year, horizon.month):
        end = last_friday(year, month)
        if end >= first:
            if len(ends) < monthlies:
                ends.append(end)
                out.add(end)
            elif month in _QUARTER_MONTHS and end <= horizon:
                out.add(end)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(sorted(out))


@dataclass(slots=True)
class _Listing:
    """Expiries live on one date-of-first-expiry, with their 08:00 UTC epoch seconds."""

    key: date
    expiries: tuple[date, ...]
    epoch_seconds: tuple[float, ...]


@dataclass(slots=True)
class _State:
    """Random state of one underlying."""

    model: UnderlyingModel
    basis: float
    rng: np.random.Generator
    spot: float
    log_level: float = 0.0
    last_ts: float | None = None
    listing: _Listing | None = None
    # Constants of the smile, precomputed once.
    rho: float = field(init=False)
    one_minus_rho2: float = field(init=False)
    sqrt_one_minus_rho2: float = field(init=False)

    def __post_init__(self) -> None:
        self.rho = self.model.skew_rho
        self.one_minus_rho2 = 1.0 - self.rho * self.rho
        self.sqrt_one_minus_rho2 = math.sqrt(self.one_minus_rho2)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimulatedFeed:
    """Seeded simulated market: spot with jumps, a basis forward curve and SSVI smiles.

    Parameters
    ----------
    seed
        Seed of the random generators (one independent stream per underlying).
    clock
        Returns the current time, timezone-aware. Each snapshot advances the underlying's
        state by the clock time elapsed since its previous snapshot (a clock that goes back
        moves nothing).
    spots
        Initial spot per underlying (USD); its keys are the feed's underlyings.
    basis
        Annualised continuously compounded basis of the forward curve, ``F = S e^{basis·t}``;
        one value for all underlyings or a mapping per underlying.
    models
        Per-underlying :class:`UnderlyingModel`; default :data:`DEFAULT_MODELS`, and
        :data:`GENERIC_MODEL` for an underlying without one.
    dailies, weeklies, monthlies, horizon_days
        Listing rules, see :func:`listed_expiries`.

    Notes
    -----
    :meth:`snapshot` is cheap (≈ 20–25 µs for the 11 listed expiries): the listing and its
    epoch times are cached until the next 08:00 UTC roll, the model constants are
    precomputed, and each call draws three or four random numbers, then evaluates the SSVI
    parameters of every expiry with float arithmetic (cheaper than numpy at this size) and
    builds the frozen slices without re-validating them (SSVI guarantees their validity).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> feed = SimulatedFeed(seed=7, clock=lambda: datetime(2026, 1, 5, 12, tzinfo=UTC))
    >>> snap = feed.snapshot_sync("BTC")
    >>> snap.spot, snap.source
    (65000.0, 'simulated')
    """

    def __init__(
        self,
        seed: int = 7,
        clock: Callable[[], datetime] = _utc_now,
        spots: Mapping[str, float] = DEFAULT_SPOTS,
        basis: float | Mapping[str, float] = 0.05,
        models: Mapping[str, UnderlyingModel] | None = None,
        *,
        dailies: int = 3,
        weeklies: int = 4,
        monthlies: int = 3,
        horizon_days: int = 366,
    ) -> None:
        if not spots:
            raise MarketDataError("a simulated feed needs at least one underlying in spots")
        self.seed = seed
        self.clock = clock
        self.underlyings: frozenset[str] = frozenset(spots)
        self._listing_rules = (dailies, weeklies, monthlies, horizon_days)
        chosen = DEFAULT_MODELS if models is None else models
        self._states: dict[str, _State] = {}
        for name, spot in spots.items():
            if not (isinstance(spot, float | int) and math.isfinite(spot) and spot > 0):
                raise MarketDataError(f"spot of {name} must be > 0, got {spot!r}")
            b = basis if isinstance(basis, float | int) else basis.get(name, 0.0)
            if not math.isfinite(b):
                raise MarketDataError(f"basis of {name} must be finite, got {b!r}")
            sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))
            self._states[name] = _State(
                model=chosen.get(name, GENERIC_MODEL),
                basis=float(b),
                rng=np.random.Generator(np.random.PCG64(sequence)),
                spot=float(spot),
            )

    def _state(self, underlying: str) -> _State:
        state = self._states.get(underlying)
        if state is None:
            raise UnknownUnderlying(
                f"unknown underlying {underlying!r}; the simulated feed has "
                f"{sorted(self.underlyings)}"
            )
        return state

    def spot(self, underlying: str) -> float:
        """Current simulated spot (as of the last snapshot), without advancing the clock."""
        return self._state(underlying).spot

    def vol_level(self, underlying: str) -> float:
        """Current vol level multiplier ``L = e^x`` (1 = the model's term structure)."""
        return math.exp(self._state(underlying).log_level)

    async def snapshot(self, underlying: str) -> MarketSnapshot:
        """Snapshot of ``underlying`` at the clock's current time (see :meth:`snapshot_sync`)."""
        return self.snapshot_sync(underlying)

    def snapshot_sync(self, underlying: str) -> MarketSnapshot:
        """Advance ``underlying`` to the clock's time and return its snapshot.

        Raises
        ------
        UnknownUnderlying
            ``underlying`` is not one of :attr:`underlyings`.
        MarketDataError
            The clock returned a naive datetime.
        """
        state = self._state(underlying)
        now = self.clock()
        if now.utcoffset() is None:
            raise MarketDataError(f"the clock must return timezone-aware datetimes, got {now!r}")
        now_ts = now.timestamp()
        if state.last_ts is None:
            state.last_ts = now_ts
        elif now_ts > state.last_ts:
            self._advance(state, (now_ts - state.last_ts) / YEAR_SECONDS)
            state.last_ts = now_ts
        return self._build(underlying, state, now.astimezone(UTC), now_ts)

    def _advance(self, state: _State, dt: float) -> None:
        model, rng = state.model, state.rng
        z_spot, z_level = rng.standard_normal(2).tolist()
        jumps = int(rng.poisson(model.jump_intensity * dt)) if model.jump_intensity else 0
        jump = 0.0
        if jumps:
            jump = jumps * model.jump_mean + math.sqrt(jumps) * model.jump_vol * float(
                rng.standard_normal()
            )
        drift = (
            model.drift - 0.5 * model.spot_vol**2 - model.jump_intensity * model.jump_compensator
        ) * dt
        log_return = drift + model.spot_vol * math.sqrt(dt) * z_spot + jump
        state.spot *= math.exp(log_return)
        surprise = log_return - model.log_return_mean(dt)
        kappa = model.level_reversion
        decay = math.exp(-kappa * dt)
        noise_sd = (
            model.level_vol * math.sqrt(-math.expm1(-2.0 * kappa * dt) / (2.0 * kappa))
            if kappa > 0
            else model.level_vol * math.sqrt(dt)
        )
        low, high = model.level_bounds
        x = state.log_level * decay + model.spot_vol_beta * surprise + noise_sd * z_level
        state.log_level = min(max(x, low), high)

    def _listing(self, state: _State, now: datetime) -> _Listing:
        key = now.date() + timedelta(days=1 if now.hour >= EXPIRY_HOUR_UTC else 0)
        listing = state.listing
        if listing is None or listing.key != key:
            dailies, weeklies, monthlies, horizon = self._listing_rules
            expiries = listed_expiries(
                now, dailies=dailies, weeklies=weeklies, monthlies=monthlies, horizon_days=horizon
            )
            epoch = tuple(expiry_datetime(e).timestamp() for e in expiries)
            listing = state.listing = _Listing(key, expiries, epoch)
        return listing

    def _build(
        self, underlying: str, state: _State, now: datetime, now_ts: float
    ) -> MarketSnapshot:
        # A plain loop: for ~11 expiries Python floats beat numpy's per-call overhead (the
        # smile constants are per listing and per model; only t, level and spot change).
        listing = self._listing(state, now)
        model = state.model
        level2 = math.exp(2.0 * state.log_level)
        var_long = model.atm_vol_long**2
        var_gap = (model.atm_vol_short**2 - var_long) * model.term_years
        tau, gamma, eta = model.term_years, model.smile_gamma, model.smile_eta
        rho, half_1mr2, sqrt_1mr2 = state.rho, 0.5 * state.one_minus_rho2, state.sqrt_one_minus_rho2
        spot, basis = state.spot, state.basis
        exp, expm1 = math.exp, math.expm1
        slices: list[ExpirySlice] = []
        append = slices.append
        for expiry, epoch in zip(listing.expiries, listing.epoch_seconds, strict=True):
            t = (epoch - now_ts) / YEAR_SECONDS
            theta = level2 * (var_long * t - var_gap * expm1(-t / tau))
            phi = eta / (theta**gamma * (1.0 + theta) ** (1.0 - gamma))
            svi = _svi_unchecked(
                half_1mr2 * theta, 0.5 * theta * phi, rho, -rho / phi, sqrt_1mr2 / phi
            )
            append(_slice_unchecked(expiry, t, spot * exp(basis * t), svi))
        return MarketSnapshot._trusted(underlying, now, spot, "simulated", tuple(slices))
