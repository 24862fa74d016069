r"""Market snapshots: spot, forward curve and an SVI implied-volatility surface at one instant.

A :class:`MarketSnapshot` is what one quote is priced on and what it stores (``to_dict``) so that
it can be re-priced later. It is pure data plus interpolation: numpy only, no clock and no I/O.

Conventions
-----------
* Time: ACT/365 year fractions from ``as_of`` to 08:00 UTC of the expiry date
  (:func:`app.domain.expiry_datetime`), ``t = seconds / (365 × 86 400)``.
* Prices (``spot``, ``forward``, strikes) in USD per coin; volatilities are annual decimals
  (0.55 = 55 %); total implied variance ``w = σ² t``; log-moneyness ``k = ln(K / F(T))``.
* Each listed expiry carries a raw SVI smile in total variance (Gatheral 2004):

  .. math:: w(k) = a + b\,\bigl(ρ(k − m) + \sqrt{(k − m)^2 + σ^2}\bigr).

Interpolation
-------------
* Forward: ``ln F`` linear in ``t`` between listed expiries; before the first and after the last
  expiry the annualised basis ``ln(F_i/S)/t_i`` of the nearest slice is held flat.
* Volatility: at a listed expiry, its SVI. Between two listed expiries, total variance is linear
  in ``t`` at constant log-moneyness ``k = ln(K/F(T))`` (both neighbouring smiles are read at the
  same ``k``), which keeps the surface free of calendar arbitrage when the slices are. Before the
  first / after the last slice, total variance is scaled proportionally in ``t``:
  ``w(k, t) = w_1(k) t / t_1`` (constant implied vol at constant ``k``).

References
----------
Gatheral, J. (2004) "A parsimonious arbitrage-free implied volatility parameterization with
application to the valuation of volatility derivatives", Global Derivatives & Risk Management.
Gatheral, J. & Jacquier, A. (2014) "Arbitrage-free SVI volatility surfaces", Quant. Finance
14(1), 59–71 (Durrleman's butterfly condition, eq. 2.1; SSVI).
Lee, R. (2004) "The moment formula for implied volatility at extreme strikes", Math. Finance
14(3), 469–480.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from app.domain.expiries import expiry_datetime
from app.marketdata.errors import ExpiredExpiry, MarketDataError

__all__ = [
    "SNAPSHOT_FORMAT_VERSION",
    "YEAR_SECONDS",
    "ExpirySlice",
    "FloatArray",
    "MarketSnapshot",
    "SviParams",
    "year_fraction",
]

FloatArray = npt.NDArray[np.float64]

YEAR_SECONDS = 365.0 * 86_400.0
"""Seconds in an ACT/365 year."""

SNAPSHOT_FORMAT_VERSION = 1
"""Version of the :meth:`MarketSnapshot.to_dict` layout."""

LEE_MAX_WING_SLOPE = 2.0
"""Largest total-variance wing slope ``dw/d|k|`` allowed by Lee's moment formula."""

# Grid of log-moneyness on which the butterfly condition is checked: wide (deep wings of
# long-dated smiles) plus a fine grid around the SVI vertex, scaled by σ (added per smile).
_K_WIDE = np.linspace(-3.0, 3.0, 1201)
_K_LOCAL = np.linspace(-8.0, 8.0, 321)
_SMALL_BATCH = 16  # below this many legs the pure-Python path of vols() is faster than numpy


def year_fraction(start: datetime, end: datetime) -> float:
    """ACT/365 year fraction from ``start`` to ``end`` (negative when ``end`` is earlier).

    >>> from datetime import timedelta
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> year_fraction(t0, t0 + timedelta(days=73))
    0.2
    """
    return (end - start).total_seconds() / YEAR_SECONDS


def _finite(value: object, name: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MarketDataError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise MarketDataError(f"{name} must be finite, got {number!r}")
    return number


# -------------------------------------------------------------------------------------------
# SVI
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SviParams:
    r"""Raw SVI parameters of one smile in total implied variance (Gatheral 2004).

    .. math:: w(k) = a + b\,\bigl(ρ(k − m) + \sqrt{(k − m)^2 + σ^2}\bigr),\qquad k = \ln(K/F)

    Parameters
    ----------
    a
        Vertical level (total variance units, may be negative).
    b
        Wing angle, ``b ≥ 0``; the wing slopes are ``b(1 − ρ)`` (left) and ``b(1 + ρ)`` (right).
    rho
        Rotation / skew, ``−1 < ρ < 1``.
    m
        Horizontal translation (log-moneyness of the vertex).
    sigma
        ATM curvature, ``σ > 0``.

    Raises
    ------
    MarketDataError
        A parameter is not finite or out of range, or the minimum total variance
        ``a + bσ√(1 − ρ²)`` is negative (the smile would have no real implied vol).

    Notes
    -----
    Construction only guarantees a well-defined smile (``w ≥ 0`` everywhere). The full
    no-butterfly-arbitrage check is :meth:`arbitrage_violations`.

    Examples
    --------
    >>> flat = SviParams(a=0.04, b=0.0, rho=0.0, m=0.0, sigma=0.1)
    >>> flat.total_variance(0.3)
    0.04
    """

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def __post_init__(self) -> None:
        for name in ("a", "b", "rho", "m", "sigma"):
            object.__setattr__(self, name, _finite(getattr(self, name), f"SVI {name}"))
        if self.b < 0.0:
            raise MarketDataError(f"SVI b must be >= 0, got {self.b!r}")
        if not -1.0 < self.rho < 1.0:
            raise MarketDataError(f"SVI rho must be in (-1, 1), got {self.rho!r}")
        if self.sigma <= 0.0:
            raise MarketDataError(f"SVI sigma must be > 0, got {self.sigma!r}")
        if self.min_total_variance < 0.0:
            raise MarketDataError(
                "SVI minimum total variance a + b·sigma·sqrt(1 - rho²) = "
                f"{self.min_total_variance!r} is negative: {self}"
            )

    @property
    def min_total_variance(self) -> float:
        """Minimum of ``w(k)`` over all ``k``: ``a + bσ√(1 − ρ²)``."""
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)

    @property
    def wing_slopes(self) -> tuple[float, float]:
        """Asymptotic slopes ``|dw/dk|`` of the left and right wings: ``b(1 − ρ), b(1 + ρ)``."""
        return self.b * (1.0 - self.rho), self.b * (1.0 + self.rho)

    @overload
    def total_variance(self, k: float) -> float: ...

    @overload
    def total_variance(self, k: FloatArray) -> FloatArray: ...

    def total_variance(self, k: float | FloatArray) -> float | FloatArray:
        """Total implied variance ``w(k) = σ_imp² t`` at log-moneyness ``k = ln(K/F)``.

        Parameters
        ----------
        k
            A float or an array of log-moneyness.

        Returns
        -------
        float or numpy.ndarray
            ``w(k)``, same shape as ``k``.
        """
        if isinstance(k, float | int):
            x = k - self.m
            return self.a + self.b * (self.rho * x + math.sqrt(x * x + self.sigma * self.sigma))
        x_arr = np.asarray(k, dtype=np.float64) - self.m
        out: FloatArray = self.a + self.b * (
            self.rho * x_arr + np.sqrt(x_arr * x_arr + self.sigma * self.sigma)
        )
        return out

    def implied_vol(self, k: float, t_years: float) -> float:
        """Implied volatility ``√(w(k)/t)`` (annual decimal) for a smile of maturity ``t_years``."""
        return math.sqrt(max(self.total_variance(k), 0.0) / t_years)

    def butterfly_density(self, k: FloatArray) -> FloatArray:
        r"""Durrleman's function ``g(k)``; no butterfly arbitrage where ``g(k) ≥ 0``.

        .. math:: g(k) = \Bigl(1 − \frac{k w'}{2w}\Bigr)^2
                        − \frac{w'^2}{4}\Bigl(\frac1w + \frac14\Bigr) + \frac{w''}{2}

        (Gatheral & Jacquier 2014, eq. 2.1). The risk-neutral density of ``k`` is
        ``g(k)/√(2πw) · exp(−d_2²/2)``. ``NaN`` where ``w(k) = 0``.
        """
        x = np.asarray(k, dtype=np.float64) - self.m
        root = np.sqrt(x * x + self.sigma * self.sigma)
        w = self.a + self.b * (self.rho * x + root)
        w1 = self.b * (self.rho + x / root)
        w2 = self.b * self.sigma * self.sigma / (root * root * root)
        kk = np.asarray(k, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            g: FloatArray = (
                (1.0 - kk * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
            )
        return np.where(w > 0.0, g, np.nan)

    def arbitrage_violations(self, k: FloatArray | None = None) -> tuple[str, ...]:
        """Reasons this smile admits static (butterfly) arbitrage; empty when none is found.

        Parameters
        ----------
        k
            Log-moneyness grid for Durrleman's condition; default ``[−3, 3]`` (1 201 points)
            plus ``m ± 8σ`` (321 points).

        Returns
        -------
        tuple of str
            Checked: minimum total variance ``a + bσ√(1 − ρ²) ≥ 0``; Lee's moment bound on the
            wing slopes ``b(1 + |ρ|) ≤ 2`` (in total variance; Gatheral's ``4/T`` bound is the
            same kind of condition on implied *variance*, ``w/T``); Durrleman's ``g(k) ≥ 0``
            (up to −1e-9) and ``w(k) > 0`` on the grid.
        """
        problems: list[str] = []
        if self.min_total_variance < 0.0:
            problems.append(f"negative minimum total variance {self.min_total_variance:.3g}")
        steepest = self.b * (1.0 + abs(self.rho))
        if steepest > LEE_MAX_WING_SLOPE:
            problems.append(
                f"wing slope b(1+|rho|) = {steepest:.4g} exceeds Lee's bound {LEE_MAX_WING_SLOPE}"
            )
        grid = (
            np.concatenate([_K_WIDE, self.m + self.sigma * _K_LOCAL])
            if k is None
            else np.asarray(k, dtype=np.float64)
        )
        w = self.total_variance(grid)
        if np.any(w <= 0.0):
            problems.append(f"zero total variance at k = {float(grid[np.argmin(w)]):.4g}")
        g = self.butterfly_density(grid)
        bad = np.nan_to_num(g, nan=0.0) < -1e-9
        if np.any(bad):
            worst = int(np.argmin(np.where(bad, g, np.inf)))
            problems.append(
                f"butterfly arbitrage: Durrleman g(k) = {float(g[worst]):.3g} < 0 "
                f"at k = {float(grid[worst]):.4g}"
            )
        return tuple(problems)

    def check_no_arbitrage(self) -> None:
        """Raise :class:`MarketDataError` listing :meth:`arbitrage_violations`, if any."""
        problems = self.arbitrage_violations()
        if problems:
            raise MarketDataError(f"SVI smile {self} admits arbitrage: " + "; ".join(problems))

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        """``(a, b, rho, m, sigma)``."""
        return (self.a, self.b, self.rho, self.m, self.sigma)

    def to_dict(self) -> dict[str, float]:
        """JSON-safe ``{"a", "b", "rho", "m", "sigma"}``."""
        return {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SviParams:
        """Inverse of :meth:`to_dict` (validates)."""
        try:
            return cls(data["a"], data["b"], data["rho"], data["m"], data["sigma"])
        except (KeyError, TypeError) as error:
            raise MarketDataError(f"malformed SVI parameters {data!r}: {error!r}") from None


# -------------------------------------------------------------------------------------------
# slices and snapshot
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpirySlice:
    """One listed expiry: its time to expiry, forward and smile.

    Parameters
    ----------
    expiry
        Expiry date (options expire at 08:00 UTC).
    t_years
        ACT/365 years from the snapshot's ``as_of`` to the expiry, ``> 0``.
    forward
        Forward (future or synthetic) price of the expiry, USD per coin, ``> 0``.
    svi
        Smile in total variance against ``k = ln(K / forward)``.
    """

    expiry: date
    t_years: float
    forward: float
    svi: SviParams

    def __post_init__(self) -> None:
        if not isinstance(self.expiry, date) or isinstance(self.expiry, datetime):
            raise MarketDataError(f"slice expiry must be a date, got {self.expiry!r}")
        t = _finite(self.t_years, "slice t_years")
        if t <= 0.0:
            raise ExpiredExpiry(f"slice {self.expiry} has t_years = {t!r} <= 0 (expired)")
        f = _finite(self.forward, "slice forward")
        if f <= 0.0:
            raise MarketDataError(f"slice {self.expiry} forward must be > 0, got {f!r}")
        if not isinstance(self.svi, SviParams):
            raise MarketDataError(f"slice {self.expiry} svi must be SviParams, got {self.svi!r}")
        object.__setattr__(self, "t_years", t)
        object.__setattr__(self, "forward", f)

    def vol(self, strike: float) -> float:
        """Implied vol of this slice's smile at ``strike`` (no interpolation)."""
        return self.svi.implied_vol(math.log(strike / self.forward), self.t_years)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ISO expiry, floats, nested SVI."""
        return {
            "expiry": self.expiry.isoformat(),
            "t_years": self.t_years,
            "forward": self.forward,
            "svi": self.svi.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExpirySlice:
        """Inverse of :meth:`to_dict` (validates)."""
        try:
            expiry = date.fromisoformat(data["expiry"])
            return cls(expiry, data["t_years"], data["forward"], SviParams.from_dict(data["svi"]))
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, MarketDataError):
                raise
            raise MarketDataError(f"malformed expiry slice {data!r}: {error!r}") from None


_Params = tuple[float, float, float, float, float]


class _Lookup(NamedTuple):
    """Everything vol()/forward() need for one expiry: w = α·w_lo(k) + β·w_hi(k)."""

    t: float
    forward: float
    lo: int
    hi: int
    alpha: float
    beta: float
    p_lo: _Params
    p_hi: _Params


class _Grid(NamedTuple):
    """Per-snapshot index, built on first use; the node lists and array only when needed."""

    positions: dict[date, int]
    nodes: list[tuple[list[float], list[float]]]  # lazily [(t of slices, ln F of slices)]
    param_array: list[FloatArray]  # lazily [(n_slices, 5) array of a, b, rho, m, sigma]


def _params(svi: SviParams) -> _Params:
    return (svi.a, svi.b, svi.rho, svi.m, svi.sigma)


def _svi_w(p: _Params, k: float) -> float:
    a, b, rho, m, s = p
    x = k - m
    return a + b * (rho * x + math.sqrt(x * x + s * s))


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Spot, forward curve and SVI vol surface of one underlying at one instant.

    Parameters
    ----------
    underlying
        Coin code, e.g. ``"BTC"``.
    as_of
        Time of the snapshot, timezone-aware (normalised to UTC).
    spot
        Index (spot) price, USD per coin, ``> 0``.
    source
        Where the data came from, e.g. ``"simulated"`` or ``"deribit"``.
    slices
        Listed expiries, strictly increasing, all after ``as_of``; at least one.

    Raises
    ------
    MarketDataError
        Empty snapshot, naive ``as_of``, non-positive spot, unsorted or duplicate expiries, or a
        slice whose ``t_years`` disagrees with ``as_of`` by more than 1e-6 years (≈ 32 s).
    ExpiredExpiry
        A slice at or before ``as_of``.

    Notes
    -----
    See the module docstring for the interpolation rules. Per-expiry lookups (time, forward,
    bracketing slices and weights) are cached on the instance, so repeated :meth:`vol` /
    :meth:`vols` calls for the legs of a quote cost one dictionary hit per leg.
    """

    underlying: str
    as_of: datetime
    spot: float
    source: str
    slices: tuple[ExpirySlice, ...]
    _lookups: dict[date, _Lookup] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _grids: list[_Grid] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.underlying, str) or not self.underlying:
            raise MarketDataError(f"underlying must be a non-empty string, got {self.underlying!r}")
        if not isinstance(self.as_of, datetime) or self.as_of.utcoffset() is None:
            raise MarketDataError(f"as_of must be a timezone-aware datetime, got {self.as_of!r}")
        object.__setattr__(self, "as_of", self.as_of.astimezone(UTC))
        spot = _finite(self.spot, "spot")
        if spot <= 0.0:
            raise MarketDataError(f"spot must be > 0, got {spot!r}")
        object.__setattr__(self, "spot", spot)
        slices = tuple(self.slices)
        if not slices:
            raise MarketDataError(f"empty snapshot: no expiry slices for {self.underlying}")
        for previous, current in pairwise(slices):
            if current.expiry <= previous.expiry:
                raise MarketDataError(
                    f"slices must be sorted by expiry without duplicates: "
                    f"{previous.expiry} then {current.expiry}"
                )
        for s in slices:
            if not isinstance(s, ExpirySlice):
                raise MarketDataError(f"slices must be ExpirySlice, got {s!r}")
            expected = year_fraction(self.as_of, expiry_datetime(s.expiry))
            if expected <= 0.0:
                raise ExpiredExpiry(f"slice {s.expiry} expired at or before as_of {self.as_of}")
            if abs(s.t_years - expected) > 1e-6:
                raise MarketDataError(
                    f"slice {s.expiry} t_years = {s.t_years!r} but as_of {self.as_of} gives "
                    f"{expected!r}"
                )
        object.__setattr__(self, "slices", slices)

    @classmethod
    def _trusted(
        cls,
        underlying: str,
        as_of: datetime,
        spot: float,
        source: str,
        slices: tuple[ExpirySlice, ...],
    ) -> MarketSnapshot:
        """Build without validation (for producers that guarantee the invariants)."""
        obj = object.__new__(cls)
        setter = object.__setattr__
        setter(obj, "underlying", underlying)
        setter(obj, "as_of", as_of)
        setter(obj, "spot", spot)
        setter(obj, "source", source)
        setter(obj, "slices", slices)
        setter(obj, "_lookups", {})
        setter(obj, "_grids", [])
        return obj

    # ---------------------------------------------------------------------- lookups

    @property
    def expiries(self) -> tuple[date, ...]:
        """Listed expiry dates, increasing."""
        return tuple(s.expiry for s in self.slices)

    def slice_at(self, expiry: date) -> ExpirySlice | None:
        """The listed slice of ``expiry``, or ``None`` when it is not listed."""
        i = self._grid().positions.get(expiry)
        return None if i is None else self.slices[i]

    def _grid(self) -> _Grid:
        if self._grids:
            return self._grids[0]
        grid = _Grid({s.expiry: i for i, s in enumerate(self.slices)}, [], [])
        self._grids.append(grid)
        return grid

    def _param_array(self) -> FloatArray:
        grid = self._grid()
        if not grid.param_array:
            rows = [_params(s.svi) for s in self.slices]
            grid.param_array.append(np.array(rows, dtype=np.float64).reshape(-1, 5))
        return grid.param_array[0]

    def _lookup(self, expiry: date) -> _Lookup:
        found = self._lookups.get(expiry)
        if found is not None:
            return found
        grid = self._grid()
        i = grid.positions.get(expiry)
        slices = self.slices
        if i is not None:
            s = slices[i]
            p = _params(s.svi)
            found = _Lookup(s.t_years, s.forward, i, i, 1.0, 0.0, p, p)
        else:
            if not isinstance(expiry, date) or isinstance(expiry, datetime):
                raise MarketDataError(f"expiry must be a date, got {expiry!r}")
            t = year_fraction(self.as_of, expiry_datetime(expiry))
            if t <= 0.0:
                raise ExpiredExpiry(
                    f"expiry {expiry} (08:00 UTC) is not after the snapshot time "
                    f"{self.as_of.isoformat()}"
                )
            if not grid.nodes:
                grid.nodes.append(
                    ([s.t_years for s in slices], [math.log(s.forward) for s in slices])
                )
            ts, logf = grid.nodes[0]
            n = len(ts)
            j = bisect_left(ts, t)
            log_spot = math.log(self.spot)
            if j == 0 or j == n:
                # Outside the listed range: flat basis, total variance ∝ t at constant k.
                edge = 0 if j == 0 else n - 1
                basis = (logf[edge] - log_spot) / ts[edge]
                p = _params(slices[edge].svi)
                forward = math.exp(log_spot + basis * t)
                found = _Lookup(t, forward, edge, edge, t / ts[edge], 0.0, p, p)
            else:
                theta = (t - ts[j - 1]) / (ts[j] - ts[j - 1])
                log_f = (1.0 - theta) * logf[j - 1] + theta * logf[j]
                found = _Lookup(
                    t,
                    math.exp(log_f),
                    j - 1,
                    j,
                    1.0 - theta,
                    theta,
                    _params(slices[j - 1].svi),
                    _params(slices[j].svi),
                )
        self._lookups[expiry] = found
        return found

    def t_years(self, expiry: date) -> float:
        """ACT/365 years from ``as_of`` to 08:00 UTC on ``expiry`` (a listed slice's own value).

        Raises
        ------
        ExpiredExpiry
            ``expiry`` is at or before ``as_of``.
        """
        return self._lookup(expiry).t

    def forward(self, expiry: date) -> float:
        """Forward price of ``expiry`` (USD per coin), interpolated as in the module notes.

        Raises
        ------
        ExpiredExpiry
            ``expiry`` is at or before ``as_of``.
        """
        return self._lookup(expiry).forward

    def total_variance(self, expiry: date, strike: float) -> float:
        """Total implied variance ``σ² t`` at ``strike`` for ``expiry`` (see :meth:`vol`)."""
        lk = self._lookup(expiry)
        strike = _strike(strike)
        k = math.log(strike / lk.forward)
        w = lk.alpha * _svi_w(lk.p_lo, k)
        if lk.beta:
            w += lk.beta * _svi_w(lk.p_hi, k)
        return max(w, 0.0)

    def vol(self, expiry: date, strike: float) -> float:
        """Implied volatility (annual decimal) of ``strike`` for ``expiry``.

        Parameters
        ----------
        expiry
            Any date after ``as_of`` (listed or not).
        strike
            Strike, USD per coin, ``> 0``.

        Returns
        -------
        float
            ``√(w/t)``: a listed expiry's own SVI; between listed expiries, total variance
            linear in ``t`` at constant ``k = ln(K/F(T))``; outside, scaled proportionally in
            ``t``.

        Raises
        ------
        ExpiredExpiry
            ``expiry`` is at or before ``as_of``.
        MarketDataError
            ``strike`` is not a positive finite number.
        """
        lk = self._lookup(expiry)
        return math.sqrt(self.total_variance(expiry, strike) / lk.t)

    def atm_vol(self, expiry: date) -> float:
        """At-the-forward implied volatility of ``expiry`` (``k = 0``)."""
        return self.vol(expiry, self.forward(expiry))

    def forwards(self, expiries: Sequence[date]) -> FloatArray:
        """Forwards of several expiries (one per leg), as a float64 array."""
        lookups = self._lookups
        return np.array(
            [(lookups.get(e) or self._lookup(e)).forward for e in expiries], dtype=np.float64
        )

    def times(self, expiries: Sequence[date]) -> FloatArray:
        """Years to expiry of several expiries (one per leg), as a float64 array."""
        lookups = self._lookups
        return np.array([(lookups.get(e) or self._lookup(e)).t for e in expiries], dtype=np.float64)

    def vols(self, expiries: Sequence[date], strikes: npt.ArrayLike) -> FloatArray:
        """Implied vols of legs ``(expiries[i], strikes[i])``, vectorised.

        Parameters
        ----------
        expiries
            One expiry per leg, or a single expiry for all strikes.
        strikes
            One-dimensional array of strikes (USD per coin, ``> 0``).

        Returns
        -------
        numpy.ndarray
            float64 vols, same shape as ``strikes``; equal to :meth:`vol` leg by leg.

        Raises
        ------
        MarketDataError
            Lengths differ, or a strike is not positive and finite.
        ExpiredExpiry
            An expiry is at or before ``as_of``.
        """
        k_arr = np.asarray(strikes, dtype=np.float64)
        if k_arr.ndim != 1:
            raise MarketDataError(f"strikes must be one-dimensional, got shape {k_arr.shape}")
        n = k_arr.shape[0]
        if len(expiries) == 1 and n != 1:
            expiries = [expiries[0]] * n
        if len(expiries) != n:
            raise MarketDataError(f"{len(expiries)} expiries for {n} strikes")
        lookups = self._lookups
        if n <= _SMALL_BATCH:
            lks = [lookups.get(e) or self._lookup(e) for e in expiries]
            sqrt, log = math.sqrt, math.log
            out = []
            for lk, strike in zip(lks, k_arr.tolist(), strict=True):
                if not 0.0 < strike < math.inf:
                    raise MarketDataError(f"strikes must be positive and finite, got {strike!r}")
                k = log(strike / lk.forward)
                w = lk.alpha * _svi_w(lk.p_lo, k)
                if lk.beta:
                    w += lk.beta * _svi_w(lk.p_hi, k)
                out.append(sqrt(w / lk.t) if w > 0.0 else 0.0)
            return np.array(out, dtype=np.float64)
        if not bool(np.all((k_arr > 0.0) & (k_arr < np.inf))):
            raise MarketDataError(f"strikes must be positive and finite, got {k_arr.tolist()!r}")
        # Large batches: one lookup per distinct expiry, then gather by leg.
        distinct: dict[date, int] = {}
        leg = np.array([distinct.setdefault(e, len(distinct)) for e in expiries], dtype=np.intp)
        table = np.array(
            [
                (lk.t, lk.forward, lk.lo, lk.hi, lk.alpha, lk.beta)
                for lk in (lookups.get(e) or self._lookup(e) for e in distinct)
            ],
            dtype=np.float64,
        )[leg]
        t, fwd, alpha, beta = table[:, 0], table[:, 1], table[:, 4], table[:, 5]
        lo, hi = table[:, 2].astype(np.intp), table[:, 3].astype(np.intp)
        k_vec = np.log(k_arr / fwd)
        p = self._param_array()
        w_vec = alpha * _svi_array(p[lo], k_vec) + beta * _svi_array(p[hi], k_vec)
        vols: FloatArray = np.sqrt(np.maximum(w_vec, 0.0) / t)
        return vols

    def calendar_violations(self, k: FloatArray | None = None) -> tuple[str, ...]:
        """Where total variance decreases from one listed expiry to the next at fixed ``k``.

        Parameters
        ----------
        k
            Log-moneyness grid; default ``[−2, 2]`` (401 points).

        Returns
        -------
        tuple of str
            One reason per offending pair of consecutive slices (tolerance 1e-12); empty when
            the surface is free of calendar arbitrage on the grid.
        """
        grid = np.linspace(-2.0, 2.0, 401) if k is None else np.asarray(k, dtype=np.float64)
        problems = []
        for near, far in pairwise(self.slices):
            drop = near.svi.total_variance(grid) - far.svi.total_variance(grid)
            if np.any(drop > 1e-12):
                i = int(np.argmax(drop))
                problems.append(
                    f"total variance falls from {near.expiry} to {far.expiry} by "
                    f"{float(drop[i]):.3g} at k = {float(grid[i]):.3g}"
                )
        return tuple(problems)

    def arbitrage_violations(self) -> tuple[str, ...]:
        """Butterfly violations of every slice (prefixed by expiry) plus calendar violations."""
        problems = [
            f"{s.expiry}: {reason}" for s in self.slices for reason in s.svi.arbitrage_violations()
        ]
        return (*problems, *self.calendar_violations())

    # ---------------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (ISO dates, floats): what a quote stores to be re-priced later.

        :meth:`from_dict` of it, also after ``json.dumps``/``json.loads``, compares equal.
        """
        return {
            "version": SNAPSHOT_FORMAT_VERSION,
            "underlying": self.underlying,
            "as_of": self.as_of.isoformat(),
            "spot": self.spot,
            "source": self.source,
            "slices": [s.to_dict() for s in self.slices],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MarketSnapshot:
        """Inverse of :meth:`to_dict` (validates everything).

        Raises
        ------
        MarketDataError
            Unknown format version or malformed content.
        """
        try:
            version = data.get("version", SNAPSHOT_FORMAT_VERSION)
            if version != SNAPSHOT_FORMAT_VERSION:
                raise MarketDataError(f"unsupported snapshot format version {version!r}")
            slices: Iterable[Mapping[str, Any]] = data["slices"]
            return cls(
                underlying=data["underlying"],
                as_of=datetime.fromisoformat(data["as_of"]),
                spot=data["spot"],
                source=data["source"],
                slices=tuple(ExpirySlice.from_dict(s) for s in slices),
            )
        except MarketDataError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise MarketDataError(f"malformed market snapshot: {error!r}") from None


def _strike(strike: float) -> float:
    value = float(strike)
    if not (value > 0.0 and value < math.inf):
        raise MarketDataError(f"strike must be positive and finite, got {strike!r}")
    return value


def _svi_array(p: FloatArray, k: FloatArray) -> FloatArray:
    x = k - p[:, 3]
    w: FloatArray = p[:, 0] + p[:, 1] * (p[:, 2] * x + np.sqrt(x * x + p[:, 4] * p[:, 4]))
    return w


def _svi_unchecked(a: float, b: float, rho: float, m: float, sigma: float) -> SviParams:
    """SviParams without validation, for producers that guarantee a valid smile (package use)."""
    obj = object.__new__(SviParams)
    setter = object.__setattr__
    setter(obj, "a", a)
    setter(obj, "b", b)
    setter(obj, "rho", rho)
    setter(obj, "m", m)
    setter(obj, "sigma", sigma)
    return obj


def _slice_unchecked(expiry: date, t_years: float, forward: float, svi: SviParams) -> ExpirySlice:
    """ExpirySlice without validation (package use)."""
    obj = object.__new__(ExpirySlice)
    setter = object.__setattr__
    setter(obj, "expiry", expiry)
    setter(obj, "t_years", t_years)
    setter(obj, "forward", forward)
    setter(obj, "svi", svi)
    return obj
