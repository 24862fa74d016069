"""Adapter for the public JSON format of the largest crypto options venue (Deribit API v2).

Parses ``public/get_book_summary_by_currency`` / ``public/get_book_summary_by_instrument``
entries, ``public/ticker`` results and WebSocket ``ticker.{instrument}.{interval}``
notifications into typed :class:`VenueOptionQuote` objects, fits a :class:`MarketSnapshot` to
them (:func:`snapshot_from_quotes`), and serves snapshots from the REST API
(:class:`DeribitFeed`).

Units of the venue (BTC/ETH options are inverse, coin-settled): option prices (``mark_price``,
bids, asks) are in the base coin per 1 coin of notional; ``underlying_price`` (the expiry's
future or ``SYN.`` synthetic forward), ``index_price``, ``estimated_delivery_price`` and the
greeks are in USD; ``mark_iv``, ``bid_iv``, ``ask_iv`` are in percent (this module returns
decimals); timestamps are ms since the Unix epoch. The venue's greeks are undiscounted Black-76
on ``underlying_price`` and ``mark_iv`` (:func:`app.quant.pricing.deribit_display_greeks`).

Quirks handled (see ``shared/data/venue/README.md``):

* book summaries before 2025 carry no ``mark_iv``: it is derived from the 8-decimal coin mark
  price with :func:`app.quant.pricing.implied_vol` (``mark_iv_source = "derived"``);
* ``estimated_delivery_price`` may be the string ``"expired"``; a ticker sent at or after the
  08:00 UTC expiry has all greeks 0 and meaningless IVs (``expired = True``);
* linear USDC-settled options (``XRP_USDC-21SEP26-1d25-C``, strike ``1d25`` = 1.25) are priced in
  USDC, not coin: they are skipped with that reason, as are futures and perpetuals;
* JSON-RPC envelope or bare ``result``, lists or single objects, WS notifications, and
  results keyed by instrument name are all accepted; zero bids/asks mean "none".

Ticker ``mark_price`` values are rounded to the 0.0001 coin tick, so an IV derived from them is
unreliable for cheap or deep in-the-money options; the venue's ``mark_iv`` is always preferred.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from app.domain.enums import OptionType
from app.domain.errors import DomainError
from app.domain.instruments import Instrument
from app.marketdata.errors import MarketDataError, UnknownUnderlying, VenueError, VenueUnavailable
from app.marketdata.snapshot import (
    ExpirySlice,
    FloatArray,
    MarketSnapshot,
    SviParams,
    year_fraction,
)
from app.quant.errors import QuantError
from app.quant.pricing import implied_vol

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DERIBIT_API",
    "DeribitFeed",
    "ParsedPayload",
    "SkippedEntry",
    "VenueOptionQuote",
    "fit_svi",
    "parse_book_summary",
    "parse_payload",
    "parse_quote",
    "parse_ticker",
    "snapshot_from_quotes",
]

DERIBIT_API = "https://www.deribit.com/api/v2"
"""Base URL of the venue's public REST API."""

MIN_SVI_POINTS = 5
"""Fewest distinct strikes for a full SVI fit; below, a near-linear smile in k is used."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LINEAR_MARKERS = ("_USDC", "_USDT")
QuoteKind = Literal["ticker", "book_summary"]
IvSource = Literal["venue", "derived", "none"]


# -------------------------------------------------------------------------------------------
# parsed quotes
# -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueOptionQuote:
    """One option's market data as the venue reported it.

    Parameters
    ----------
    instrument
        The option (underlying, expiry date, strike, call/put).
    timestamp
        Time of the data, UTC (ticker ``timestamp`` or summary ``creation_timestamp``).
    underlying_price
        Forward of the expiry (future or synthetic), USD.
    index_price
        Spot index, USD; ``None`` when absent (book summaries carry no index).
    mark_price_coin
        Mark price in coin per 1 coin of notional.
    mark_iv
        Mark implied vol as a decimal (0.55 = 55 %); the venue's, or derived from the mark price
        when the venue sent none (see ``mark_iv_source``); ``None`` when neither is possible.
    bid_coin, ask_coin
        Best bid / ask in coin; ``None`` when absent or 0.
    greeks
        The venue's display greeks (``delta``, ``gamma``, ``vega``, ``theta``, ``rho``; USD,
        per vol point and per day), or ``None`` (book summaries).
    bid_iv, ask_iv
        Bid / ask implied vols as decimals; ``None`` when absent or 0.
    underlying_index
        Name of the forward (``BTC-27SEP24``, ``SYN.BTC-10SEP25``), when given.
    interest_rate
        The venue's ``interest_rate`` field (0 on real payloads).
    open_interest
        Open interest in contracts, when given.
    estimated_delivery_price
        USD, or ``None`` when absent or ``"expired"``.
    expired
        True when the venue says ``"expired"`` or the timestamp is at or after 08:00 UTC of
        the expiry date (greeks then are all 0).
    mark_iv_source
        ``"venue"``, ``"derived"`` or ``"none"``.
    kind
        ``"ticker"`` or ``"book_summary"``.
    notes
        Anything odd met while parsing (e.g. why no IV could be derived).
    """

    instrument: Instrument
    timestamp: datetime
    underlying_price: float
    index_price: float | None
    mark_price_coin: float
    mark_iv: float | None
    bid_coin: float | None
    ask_coin: float | None
    greeks: dict[str, float] | None
    bid_iv: float | None = None
    ask_iv: float | None = None
    underlying_index: str | None = None
    interest_rate: float = 0.0
    open_interest: float | None = None
    estimated_delivery_price: float | None = None
    expired: bool = False
    mark_iv_source: IvSource = "venue"
    kind: QuoteKind = "ticker"
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Venue instrument name."""
        return self.instrument.name

    @property
    def strike(self) -> float:
        """Strike as a float (USD)."""
        return float(self.instrument.strike)

    @property
    def is_call(self) -> bool:
        """True for a call."""
        return self.instrument.option_type is OptionType.CALL

    @property
    def t_years(self) -> float:
        """ACT/365 years from ``timestamp`` to the 08:00 UTC expiry (≤ 0 once expired)."""
        return year_fraction(self.timestamp, self.instrument.expiry_at)

    @property
    def mark_price_usd(self) -> float:
        """Mark price in USD as the venue displays it: coin price × index (else forward)."""
        ref = self.index_price if self.index_price is not None else self.underlying_price
        return self.mark_price_coin * ref


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A payload entry that did not become a quote, and why."""

    name: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    """Result of :func:`parse_payload`: the quotes, and the entries skipped with reasons."""

    quotes: tuple[VenueOptionQuote, ...]
    skipped: tuple[SkippedEntry, ...]
    server_time: datetime | None = None


# -------------------------------------------------------------------------------------------
# field helpers
# -------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """Finite float, or ``None`` for null, strings (``"expired"``), booleans and NaN/inf."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0.0 else None


def _required(entry: Mapping[str, Any], key: str, name: str) -> float:
    number = _number(entry.get(key))
    if number is None:
        raise VenueError(f"{name}: missing or non-numeric {key!r} ({entry.get(key)!r})")
    return number


def _ms(value: Any, name: str, key: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise VenueError(f"{name}: missing or non-numeric {key!r} ({value!r})")
    return _EPOCH + timedelta(milliseconds=value)


def _percent(value: Any) -> float | None:
    number = _positive(value)
    return None if number is None else number / 100.0


def _instrument(name: Any) -> Instrument:
    """Instrument of a coin-settled option name, or a :class:`VenueError` saying why not."""
    if not isinstance(name, str) or not name:
        raise VenueError(f"entry without an instrument_name ({name!r})")
    parts = name.split("-")
    if len(parts) != 4 or parts[3].upper() not in ("C", "P"):
        raise VenueError(f"{name}: not an option (future, perpetual or combo); skipped")
    if any(marker in parts[0].upper() for marker in _LINEAR_MARKERS):
        strike = parts[2].lower().replace("d", ".")
        try:
            shown = f" (strike {Decimal(strike)})"
        except InvalidOperation:
            shown = ""
        raise VenueError(
            f"{name}: linear {parts[0].split('_')[1]}-settled option{shown}; its premium and "
            "greeks are in the settlement currency, not coin, so the coin-settled adapter "
            "skips it"
        )
    try:
        return Instrument.parse(name)
    except DomainError as error:
        raise VenueError(f"{name}: unreadable instrument name ({error.reason})") from None


def _greeks(raw: Any) -> dict[str, float] | None:
    if not isinstance(raw, Mapping):
        return None
    out = {key: _number(raw.get(key)) for key in ("delta", "gamma", "vega", "theta", "rho")}
    return {key: value for key, value in out.items() if value is not None} or None


def _derive_iv(
    instrument: Instrument, mark_coin: float, forward: float, t: float
) -> tuple[float | None, str | None]:
    """IV of the coin mark price: V_usd = c·F is undiscounted Black-76 (QUANT.md §4)."""
    if t <= 0.0:
        return None, "expired: no IV to derive"
    try:
        sigma = float(
            implied_vol(
                mark_coin * forward,
                forward,
                float(instrument.strike),
                t,
                instrument.option_type is OptionType.CALL,
            )
        )
    except QuantError as error:
        return None, f"mark_iv absent and not derivable from mark_price {mark_coin}: {error}"
    if sigma <= 0.0:
        return None, f"mark_iv absent and mark_price {mark_coin} has no time value"
    return sigma, None


def _build(entry: Mapping[str, Any], kind: QuoteKind) -> VenueOptionQuote:
    name = entry.get("instrument_name")
    instrument = _instrument(name)
    label = instrument.name
    stamp_key = "timestamp" if kind == "ticker" else "creation_timestamp"
    timestamp = _ms(entry.get(stamp_key), label, stamp_key)
    forward = _required(entry, "underlying_price", label)
    if forward <= 0.0:
        raise VenueError(f"{label}: underlying_price must be > 0, got {forward!r}")
    mark = _required(entry, "mark_price", label)
    if mark < 0.0:
        raise VenueError(f"{label}: mark_price must be >= 0, got {mark!r}")
    delivery_raw = entry.get("estimated_delivery_price")
    expired = delivery_raw == "expired" or timestamp >= instrument.expiry_at
    notes: list[str] = []
    if str(entry.get("quote_currency", instrument.underlying)) not in (instrument.underlying, ""):
        notes.append(f"quote_currency {entry.get('quote_currency')!r}: prices read as coin anyway")
    mark_iv = _percent(entry.get("mark_iv"))
    source: IvSource = "venue"
    if mark_iv is None:
        mark_iv, why = _derive_iv(
            instrument, mark, forward, year_fraction(timestamp, instrument.expiry_at)
        )
        source = "derived" if mark_iv is not None else "none"
        if why:
            notes.append(why)
    bid_key, ask_key = (
        ("best_bid_price", "best_ask_price") if kind == "ticker" else ("bid_price", "ask_price")
    )
    return VenueOptionQuote(
        instrument=instrument,
        timestamp=timestamp,
        underlying_price=forward,
        index_price=_positive(entry.get("index_price")),
        mark_price_coin=mark,
        mark_iv=mark_iv,
        bid_coin=_positive(entry.get(bid_key)),
        ask_coin=_positive(entry.get(ask_key)),
        greeks=_greeks(entry.get("greeks")),
        bid_iv=_percent(entry.get("bid_iv")),
        ask_iv=_percent(entry.get("ask_iv")),
        underlying_index=entry.get("underlying_index")
        if isinstance(entry.get("underlying_index"), str)
        else None,
        interest_rate=_number(entry.get("interest_rate")) or 0.0,
        open_interest=_number(entry.get("open_interest")),
        estimated_delivery_price=_positive(delivery_raw),
        expired=expired,
        mark_iv_source=source,
        kind=kind,
        notes=tuple(notes),
    )


# -------------------------------------------------------------------------------------------
# public parsers
# -------------------------------------------------------------------------------------------


def parse_ticker(data: Mapping[str, Any]) -> VenueOptionQuote:
    """Quote of one ``public/ticker`` result or WS ``ticker.*`` notification ``data`` object.

    Raises
    ------
    VenueError
        Not an option, a linear (USDC) option, or a required field missing; the message says
        which.
    """
    return _build(data, "ticker")


def parse_book_summary(entry: Mapping[str, Any]) -> VenueOptionQuote:
    """Quote of one ``get_book_summary_by_currency`` / ``_by_instrument`` entry.

    Raises
    ------
    VenueError
        As :func:`parse_ticker`.
    """
    return _build(entry, "book_summary")


def parse_quote(entry: Mapping[str, Any]) -> VenueOptionQuote:
    """Quote of a ticker or book-summary entry, told apart by their time field.

    Raises
    ------
    VenueError
        As :func:`parse_ticker`, or when the entry has neither ``timestamp`` nor
        ``creation_timestamp``.
    """
    if "creation_timestamp" in entry and "timestamp" not in entry:
        return parse_book_summary(entry)
    if "timestamp" in entry:
        return parse_ticker(entry)
    raise VenueError(
        f"{entry.get('instrument_name')!r}: neither a ticker (timestamp) nor a book summary "
        "(creation_timestamp)"
    )


def _entries(payload: Any) -> tuple[list[Any], datetime | None]:
    """The entry objects of any accepted payload shape, and the server time when known."""
    server_time = None
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if error is not None:
            raise VenueUnavailable(f"venue returned a JSON-RPC error: {error!r}")
        us_out = _number(payload.get("usOut"))
        if us_out is not None:
            server_time = _EPOCH + timedelta(microseconds=us_out)
        if "result" in payload:
            payload = payload["result"]
        elif isinstance(payload.get("params"), Mapping) and "data" in payload["params"]:
            payload = payload["params"]["data"]
    if isinstance(payload, Mapping):
        if "instrument_name" in payload:
            return [payload], server_time
        values = list(payload.values())
        if values and all(isinstance(v, Mapping) and "instrument_name" in v for v in values):
            return values, server_time  # results keyed by instrument name
        raise VenueError(f"unrecognised payload object with keys {sorted(payload)[:8]}")
    if isinstance(payload, list):
        return payload, server_time
    raise VenueError(f"unrecognised payload of type {type(payload).__name__}")


def parse_payload(payload: Any) -> ParsedPayload:
    """Every option quote in a decoded venue payload, plus the entries skipped and why.

    Parameters
    ----------
    payload
        Decoded JSON: a JSON-RPC response (``{"jsonrpc", "result", "usOut", ...}``), a bare
        ``result`` (list of book-summary entries, one ticker object, or tickers keyed by
        instrument name), or a WS subscription notification (``{"params": {"data": ...}}``).

    Returns
    -------
    ParsedPayload
        ``quotes`` in payload order; ``skipped`` with one reason per entry that is not a
        coin-settled option or lacks a required field; ``server_time`` from ``usOut``.

    Raises
    ------
    VenueUnavailable
        The payload is a JSON-RPC error.
    VenueError
        The payload has none of the accepted shapes.
    """
    entries, server_time = _entries(payload)
    quotes: list[VenueOptionQuote] = []
    skipped: list[SkippedEntry] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            skipped.append(SkippedEntry(None, f"entry is not an object: {entry!r:.60}"))
            continue
        try:
            quotes.append(parse_quote(entry))
        except VenueError as error:
            name = entry.get("instrument_name")
            skipped.append(SkippedEntry(name if isinstance(name, str) else None, str(error)))
    return ParsedPayload(tuple(quotes), tuple(skipped), server_time)


# -------------------------------------------------------------------------------------------
# SVI fit
# -------------------------------------------------------------------------------------------


def _linear_svi(k: FloatArray, w: FloatArray) -> SviParams:
    """Valid SVI that is (nearly) linear in k over the data: few points, or a failed fit.

    ``w ≈ c0 + c1 k`` by least squares (flat for one distinct strike), realised as
    ``b = 2|c1|, ρ = ±½, m = 0`` and a large ``σ`` (small curvature ``b/σ``) bounded so that the
    minimum total variance stays ≥ ``c0/2``; falls back to flat (``b = 0``) if that is not
    free of arbitrage.
    """
    w_min = float(np.min(w))
    c0, c1 = float(np.mean(w)), 0.0
    if np.unique(k).size >= 2:
        c1, c0 = (float(x) for x in np.polyfit(k, w, 1))
    c0 = max(c0, 0.5 * w_min)
    c1 = max(min(c1, 0.5), -0.5)
    flat = SviParams(a=c0, b=0.0, rho=0.0, m=0.0, sigma=1.0)
    if c1 == 0.0:
        return flat
    b, rho = 2.0 * abs(c1), math.copysign(0.5, c1)
    span = max(float(np.max(np.abs(k))), 0.05)
    sigma = min(10.0 * span, 0.5 * c0 / (b * (1.0 - math.sqrt(1.0 - rho * rho))))
    candidate = SviParams(a=c0 - b * sigma, b=b, rho=rho, m=0.0, sigma=sigma)
    return flat if candidate.arbitrage_violations() else candidate


def _svi_from_scaled(x: Sequence[float], k_scale: float, w_scale: float) -> SviParams:
    v, b, rho, m, sigma = (float(value) for value in x)
    root = math.sqrt(1.0 - rho * rho)
    a = v - b * sigma * root
    return SviParams(
        a=a * w_scale, b=b * w_scale / k_scale, rho=rho, m=m * k_scale, sigma=sigma * k_scale
    )


def fit_svi(k: npt.ArrayLike, w: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> SviParams:
    r"""Raw SVI fitted to total variances ``w`` at log-moneyness ``k`` (least squares).

    Parameters
    ----------
    k
        Log-moneyness ``ln(K/F)`` of the points.
    w
        Total implied variance ``σ² t`` of the points (> 0).
    weights
        Optional non-negative weight per point (default 1).

    Returns
    -------
    SviParams
        With at least :data:`MIN_SVI_POINTS` distinct ``k``: the best of several
        :func:`scipy.optimize.least_squares` fits (trust-region reflective, analytic
        Jacobian) that is free of butterfly arbitrage; when every such fit admits arbitrage,
        an SSVI slice fit (arbitrage-free by construction, :func:`_ssvi_fit`); with fewer
        points (or if that fails too) a near-linear smile in ``k`` that still is valid SVI
        (:func:`_linear_svi`).

    Notes
    -----
    The fit runs in scaled coordinates ``k/s``, ``w/W`` (SVI is closed under this scaling) and
    parametrises the minimum variance ``v = a + bσ√(1 − ρ²)`` directly, so that box bounds give
    ``v ≥ 0`` and, with ``b ≤ 1`` in original units, Lee's bound ``b(1 + |ρ|) ≤ 2``.
    """
    k_arr = np.asarray(k, dtype=np.float64).ravel()
    w_arr = np.asarray(w, dtype=np.float64).ravel()
    if k_arr.size == 0 or k_arr.shape != w_arr.shape:
        raise MarketDataError(
            f"fit_svi needs matching non-empty k and w, got {k_arr.size}, {w_arr.size}"
        )
    if not (np.all(np.isfinite(k_arr)) and np.all(np.isfinite(w_arr)) and np.all(w_arr > 0.0)):
        raise MarketDataError("fit_svi needs finite k and positive finite total variances")
    sw = (
        np.ones_like(w_arr)
        if weights is None
        else np.sqrt(np.clip(np.asarray(weights, dtype=np.float64).ravel(), 0.0, None))
    )
    if np.unique(k_arr).size < MIN_SVI_POINTS:
        return _linear_svi(k_arr, w_arr)
    k_scale = float(np.max(np.abs(k_arr)))
    w_scale = float(np.mean(w_arr))
    kk, ww = k_arr / k_scale, w_arr / w_scale
    b_max = k_scale / w_scale  # b ≤ 1 in original units

    def residuals(x: FloatArray) -> FloatArray:
        v, b, rho, m, sigma = x
        d = kk - m
        root = np.sqrt(d * d + sigma * sigma)
        model = v + b * (rho * d + root - sigma * math.sqrt(1.0 - rho * rho))
        out: FloatArray = sw * (model - ww)
        return out

    def jacobian(x: FloatArray) -> FloatArray:
        _, b, rho, m, sigma = x
        d = kk - m
        root = np.sqrt(d * d + sigma * sigma)
        q = math.sqrt(1.0 - rho * rho)
        cols = np.empty((kk.size, 5))
        cols[:, 0] = 1.0
        cols[:, 1] = rho * d + root - sigma * q
        cols[:, 2] = b * (d + sigma * rho / q)
        cols[:, 3] = b * (-rho - d / root)
        cols[:, 4] = b * (sigma / root - q)
        jac: FloatArray = cols * sw[:, None]
        return jac

    lower = [0.0, 0.0, -0.995, -3.0, 1e-3]
    upper = [float(np.max(ww)), b_max, 0.995, 3.0, 10.0]
    i_min = int(np.argmin(ww))
    best: tuple[float, SviParams] | None = None
    for rho0, sigma0 in ((-0.3, 0.3), (0.3, 0.3), (0.0, 1.0)):
        b0 = min(0.5 * b_max, 1.0)
        x0 = np.array([0.9 * float(ww[i_min]), b0, rho0, float(kk[i_min]), sigma0])
        x0 = np.clip(x0, np.array(lower) + 1e-12, np.array(upper) - 1e-12)
        try:
            fit = least_squares(
                residuals, x0, jac=jacobian, bounds=(lower, upper), method="trf", x_scale="jac"
            )
            svi = _svi_from_scaled(fit.x, k_scale, w_scale)
        except (ValueError, MarketDataError):
            continue
        if svi.arbitrage_violations():
            continue
        if best is None or fit.cost < best[0]:
            best = (float(fit.cost), svi)
    if best is not None:
        return best[1]
    ssvi = _ssvi_fit(k_arr, w_arr, sw)
    return ssvi if ssvi is not None else _linear_svi(k_arr, w_arr)


def _ssvi_fit(k: FloatArray, w: FloatArray, sw: FloatArray) -> SviParams | None:
    r"""One SSVI slice ``θ/2 (1 + ρφk + √((φk + ρ)² + 1 − ρ²))`` fitted to the points, with
    ``φ ≤ min(4/(θ(1 + |ρ|)), √(4/(θ(1 + |ρ|))))`` so that it is free of butterfly arbitrage
    by construction (Gatheral & Jacquier 2014, Theorem 4.2); ``None`` if the fit fails.
    """
    w_scale = float(np.mean(w))

    def unpack(x: FloatArray) -> tuple[float, float, float]:
        theta, rho, u = float(x[0]) * w_scale, float(x[1]), float(x[2])
        cap = 4.0 / (theta * (1.0 + abs(rho)))
        return theta, rho, u * min(cap * (1.0 - 1e-9), math.sqrt(cap))

    def residuals(x: FloatArray) -> FloatArray:
        theta, rho, phi = unpack(x)
        pk = phi * k
        model = 0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))
        out: FloatArray = sw * (model - w) / w_scale
        return out

    theta0 = float(np.interp(0.0, np.sort(k), w[np.argsort(k)])) / w_scale
    lower, upper = [1e-6, -0.99, 1e-6], [2.0 * float(np.max(w)) / w_scale, 0.99, 1.0]
    x0 = np.clip([theta0, -0.2, 0.5], np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    try:
        fit = least_squares(residuals, x0, bounds=(lower, upper), method="trf")
        theta, rho, phi = unpack(fit.x)
        q = math.sqrt(1.0 - rho * rho)
        svi = SviParams(
            a=0.5 * theta * q * q, b=0.5 * theta * phi, rho=rho, m=-rho / phi, sigma=q / phi
        )
    except (ValueError, MarketDataError):
        return None
    return None if svi.arbitrage_violations() else svi


# -------------------------------------------------------------------------------------------
# snapshot from quotes
# -------------------------------------------------------------------------------------------


def snapshot_from_quotes(
    underlying: str,
    quotes: Iterable[VenueOptionQuote],
    as_of: datetime,
    *,
    spot: float | None = None,
    source: str = "deribit",
) -> MarketSnapshot:
    """Fit a :class:`MarketSnapshot` to venue quotes of one underlying.

    Parameters
    ----------
    underlying
        Coin code; quotes of other underlyings are ignored.
    quotes
        Parsed quotes (tickers or book summaries).
    as_of
        Snapshot time (timezone-aware); expiries at or before it are dropped.
    spot
        Spot (index) price; default the median ``index_price`` (else
        ``estimated_delivery_price``) of the quotes, else the nearest expiry's forward.
    source
        Recorded as the snapshot's ``source``.

    Returns
    -------
    MarketSnapshot
        One slice per expiry with a usable quote: forward = median ``underlying_price`` of
        the expiry's quotes; smile = :func:`fit_svi` of ``(ln(K/F), mark_iv² t)`` over its
        distinct strikes (call and put IVs at one strike averaged), ``t`` from ``as_of``.

    Raises
    ------
    MarketDataError
        No quote of ``underlying`` with a mark IV and an expiry after ``as_of``.
    """
    if as_of.utcoffset() is None:
        raise MarketDataError(f"as_of must be timezone-aware, got {as_of!r}")
    as_of = as_of.astimezone(UTC)
    by_expiry: dict[date, list[tuple[VenueOptionQuote, float]]] = defaultdict(list)
    refs: list[float] = []
    for q in quotes:
        if q.instrument.underlying != underlying:
            continue
        ref = q.index_price if q.index_price is not None else q.estimated_delivery_price
        if ref is not None:
            refs.append(ref)
        if q.expired or q.mark_iv is None or q.instrument.expiry_at <= as_of:
            continue
        by_expiry[q.instrument.expiry].append((q, q.mark_iv))
    if not by_expiry:
        raise MarketDataError(
            f"no usable option quotes for {underlying} (need a mark IV and an expiry after "
            f"{as_of.isoformat()})"
        )
    slices = []
    for expiry in sorted(by_expiry):
        group = by_expiry[expiry]
        forward = statistics.median(q.underlying_price for q, _ in group)
        t = year_fraction(as_of, group[0][0].instrument.expiry_at)
        ivs: dict[float, list[float]] = defaultdict(list)
        for q, iv in group:
            ivs[q.strike].append(iv)
        strikes = np.array(sorted(ivs), dtype=np.float64)
        sigma = np.array([statistics.fmean(ivs[s]) for s in sorted(ivs)], dtype=np.float64)
        svi = fit_svi(np.log(strikes / forward), sigma * sigma * t)
        slices.append(ExpirySlice(expiry, t, forward, svi))
    if spot is None:
        spot = statistics.median(refs) if refs else slices[0].forward
    return MarketSnapshot(underlying, as_of, spot, source, tuple(slices))


# -------------------------------------------------------------------------------------------
# REST feed
# -------------------------------------------------------------------------------------------


class DeribitFeed:
    """:class:`~app.marketdata.feed.MarketDataFeed` on the venue's public REST API.

    One ``GET {base_url}/public/get_book_summary_by_currency?currency=BTC&kind=option`` per
    snapshot (the whole option chain with marks and mark IVs), fitted by
    :func:`snapshot_from_quotes` in a worker thread. Snapshots are cached for ``max_age``
    seconds per underlying; concurrent callers share one request.

    Parameters
    ----------
    client
        Shared ``httpx.AsyncClient`` (timeouts and limits are the caller's).
    base_url
        API root, default :data:`DERIBIT_API`.
    underlyings
        Currencies served (default BTC and ETH).
    max_age
        Seconds a snapshot is reused (0 disables the cache).
    monotonic
        Clock for the cache, default :func:`time.monotonic`.

    Raises
    ------
    UnknownUnderlying
        From :meth:`snapshot`, for a currency not in ``underlyings``.
    VenueUnavailable
        Transport error, HTTP status other than 200, undecodable JSON or a JSON-RPC error.
    MarketDataError
        The chain holds no usable quote.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str = DERIBIT_API,
        *,
        underlyings: frozenset[str] = frozenset({"BTC", "ETH"}),
        max_age: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.underlyings = underlyings
        self.max_age = max_age
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, MarketSnapshot]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def snapshot(self, underlying: str) -> MarketSnapshot:
        """Current snapshot of ``underlying`` (cached up to ``max_age`` seconds)."""
        if underlying not in self.underlyings:
            raise UnknownUnderlying(
                f"unknown underlying {underlying!r}; this feed serves {sorted(self.underlyings)}"
            )
        fresh = self._fresh(underlying)
        if fresh is not None:
            return fresh
        lock = self._locks.setdefault(underlying, asyncio.Lock())
        async with lock:
            fresh = self._fresh(underlying)
            if fresh is not None:
                return fresh
            payload = await self._get(
                "public/get_book_summary_by_currency", {"currency": underlying, "kind": "option"}
            )
            parsed = parse_payload(payload)
            snap = await asyncio.to_thread(_snapshot_of_chain, underlying, parsed)
            self._cache[underlying] = (self._monotonic(), snap)
            return snap

    def _fresh(self, underlying: str) -> MarketSnapshot | None:
        cached = self._cache.get(underlying)
        if cached is not None and self._monotonic() - cached[0] < self.max_age:
            return cached[1]
        return None

    async def _get(self, method: str, params: Mapping[str, str]) -> Any:
        import httpx  # the only network dependency of the package, kept to the feed

        url = f"{self.base_url}/{method}"
        try:
            response = await self.client.get(url, params=dict(params))
        except httpx.HTTPError as error:
            raise VenueUnavailable(f"GET {url} failed: {error!r}") from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            detail = body.get("error") if isinstance(body, Mapping) else response.text[:200]
            raise VenueUnavailable(f"GET {url} answered HTTP {response.status_code}: {detail!r}")
        if body is None:
            raise VenueUnavailable(f"GET {url} answered a body that is not JSON")
        return body


def _snapshot_of_chain(underlying: str, parsed: ParsedPayload) -> MarketSnapshot:
    if not parsed.quotes:
        raise MarketDataError(
            f"the venue returned no usable {underlying} option quotes "
            f"({len(parsed.skipped)} entries skipped)"
        )
    as_of = max(q.timestamp for q in parsed.quotes)
    return snapshot_from_quotes(underlying, parsed.quotes, as_of)
