r"""Lit venues: the adapter interface, and simulated venues (the embedded default).

A :class:`Venue` places immediate-or-cancel limit orders identified by the desk's
``client_order_id`` (placing one already seen returns that order and never trades again), cancels
them, shows its book and reports an order's fills.

The simulated venues share a :class:`SimulatedMarket`: per instrument, a mid price

.. math:: m_i(t) = m_i(0) + β_i W_u(t) + α_i t + γ Σ (\text{signed contracts traded on } i),

with ``W_u`` one Brownian factor per underlying (seeded), ``β_i`` the option's coin-price
sensitivity to it, ``α_i`` a drift and ``γ`` the permanent impact, which reaches every venue's
book after a propagation delay (so the orders of one slice, sent together, do not see each other's
permanent impact: the Almgren–Chriss discrete model, where slice k trades at S_{k−1}). Each
:class:`SimulatedVenue` quotes a linear book around the mid: half spread ``s``, ``D`` contracts per
side spread over a width ``w`` (impact slope ``k = w/D``). A purchase of ``q`` contracts when ``c``
were taken earlier costs on average ``m + s + k(c + q/2)`` plus the fee; ``c`` then grows by ``q``
and decays as ``e^{−Δt/ρ}`` (resilience ``ρ``): the temporary impact recovers. With ``ρ`` well below
the slice length the venues reproduce the Almgren–Chriss costs of
:func:`app.execution.planning.package_model`, so predicted costs can be checked against them.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

import numpy as np

from app.domain.enums import OptionType
from app.domain.instruments import Instrument
from app.execution.config import ExecutionSettings, VenueSettings
from app.marketdata.snapshot import YEAR_SECONDS, MarketSnapshot
from app.quant.pricing import black76

__all__ = [
    "BookLevel",
    "BookSnapshot",
    "FeedReference",
    "InstrumentReference",
    "OrderRequest",
    "ReferencePricer",
    "SimulatedMarket",
    "SimulatedVenue",
    "StaticReference",
    "Venue",
    "VenueFill",
    "VenueInfo",
    "VenueOrder",
    "build_simulated_venues",
]

_PRICE_Q = Decimal("1e-10")


# ------------------------------------------------------------------------------ interface
@dataclass(frozen=True, slots=True)
class VenueInfo:
    """A venue's trading terms."""

    name: str
    fee_coin_per_contract: float
    min_size: Decimal
    lot_size: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An immediate-or-cancel limit order (``limit_price`` None: a market order)."""

    client_order_id: str
    instrument: str
    side: str
    quantity: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One trade of an order."""

    trade_id: str
    client_order_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue knows it.

    ``state``: ``open`` (resting), ``filled``, ``partially_filled`` (the rest cancelled),
    ``cancelled`` (nothing filled) or ``rejected``.
    """

    venue: str
    client_order_id: str
    venue_order_id: str
    instrument: str
    side: str
    quantity: Decimal
    limit_price: Decimal | None
    state: str
    filled_quantity: Decimal
    avg_price: Decimal | None
    fills: tuple[VenueFill, ...]
    created_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Visible depth of one instrument, best levels first."""

    venue: str
    instrument: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    at: datetime

    def side_levels(self, side: str) -> list[tuple[float, float]]:
        """The levels a ``side`` order takes: the asks for a purchase, the bids for a sale."""
        levels = self.asks if side == "buy" else self.bids
        return [(float(lv.price), float(lv.size)) for lv in levels]


@runtime_checkable
class Venue(Protocol):
    """What the executor needs from a lit venue."""

    @property
    def info(self) -> VenueInfo: ...

    async def place(self, order: OrderRequest) -> VenueOrder:
        """Place ``order``; a ``client_order_id`` already seen returns that order unchanged."""
        ...

    async def cancel(self, client_order_id: str) -> VenueOrder | None:
        """Cancel what is left of an order; None if the venue never saw it."""
        ...

    async def book(self, instrument: str) -> BookSnapshot:
        """The visible book of ``instrument``."""
        ...

    async def order(self, client_order_id: str) -> VenueOrder | None:
        """The order with that ``client_order_id``, or None if the venue never saw it."""
        ...

    async def fills(self, client_order_id: str) -> tuple[VenueFill, ...]:
        """The trades of an order (empty if none, or unknown)."""
        ...


# ---------------------------------------------------------------------- reference prices
@dataclass(frozen=True, slots=True)
class InstrumentReference:
    """Where the simulated market starts an instrument: its mid (coin per contract) and its
    sensitivity β to the underlying's Brownian factor (coin per contract per √s)."""

    mid_coin: float
    beta_coin_per_sqrt_s: float


class ReferencePricer(Protocol):
    def reference(self, instrument: str) -> InstrumentReference: ...


@dataclass(frozen=True, slots=True)
class StaticReference:
    """Fixed references (tests, benchmarks); unknown instruments raise ``KeyError``."""

    prices: Mapping[str, InstrumentReference]

    def reference(self, instrument: str) -> InstrumentReference:
        return self.prices[instrument]


class SnapshotSource(Protocol):
    def snapshot_sync(self, underlying: str) -> MarketSnapshot: ...


@dataclass(frozen=True, slots=True)
class FeedReference:
    """References from a market-data feed (the simulated feed by default): Black-76 mid in coin,
    and β = (Δ·F/S − V/S)·σ/√(seconds per year), the coin price's move per unit of the
    underlying's Brownian factor (the implied vol standing in for the spot vol)."""

    feed: SnapshotSource

    def reference(self, instrument: str) -> InstrumentReference:
        inst = Instrument.parse(instrument)
        snap = self.feed.snapshot_sync(inst.underlying)
        fwd, t = snap.forward(inst.expiry), snap.t_years(inst.expiry)
        vol = snap.vol(inst.expiry, float(inst.strike))
        g = black76(fwd, float(inst.strike), t, vol, inst.option_type is OptionType.CALL)
        spot = float(snap.spot)
        mid = float(g.price) / spot
        beta = (float(g.delta) * fwd / spot - mid) * vol / math.sqrt(YEAR_SECONDS)
        return InstrumentReference(mid, beta)


# ------------------------------------------------------------------------ the simulation
@dataclass(slots=True)
class _Factor:
    rng: np.random.Generator
    t: float | None = None
    w: float = 0.0


@dataclass(slots=True)
class _Line:
    ref: InstrumentReference
    t0: float
    w0: float
    drift: float
    impacts: list[tuple[float, float]] = field(default_factory=list)


class SimulatedMarket:
    """The mids the simulated venues quote around (see the module docstring).

    Parameters
    ----------
    reference
        Where each instrument starts (looked up once, at its first use).
    seed
        Seed of the Brownian factors (one generator per underlying).
    permanent_impact
        γ, coin per contract the mid moves per contract traded.
    propagation_s
        Delay before a trade's permanent impact shows in the venues' books.
    drift
        α per instrument (coin per contract per second, signed: > 0 rises).
    """

    def __init__(
        self,
        reference: ReferencePricer,
        *,
        seed: int,
        permanent_impact: float = 0.0,
        propagation_s: float = 0.05,
        drift: Mapping[str, float] | None = None,
    ) -> None:
        self.reference = reference
        self.seed = seed
        self.permanent_impact = permanent_impact
        self.propagation_s = propagation_s
        self.drift = dict(drift or {})
        self._factors: dict[str, _Factor] = {}
        self._lines: dict[str, _Line] = {}

    def _factor(self, underlying: str, t: float) -> float:
        f = self._factors.get(underlying)
        if f is None:
            rng = np.random.default_rng([self.seed, zlib.crc32(underlying.encode())])
            f = self._factors[underlying] = _Factor(rng, t, 0.0)
        elif f.t is not None and t > f.t:
            f.w += math.sqrt(t - f.t) * float(f.rng.standard_normal())
            f.t = t
        return f.w

    def mid(self, instrument: str, at: datetime) -> float:
        """The instrument's mid at ``at`` (time never runs backwards: an earlier ``at`` reads
        the latest state)."""
        t = at.timestamp()
        w = self._factor(instrument.split("-", 1)[0], t)
        line = self._lines.get(instrument)
        if line is None:
            ref = self.reference.reference(instrument)
            line = self._lines[instrument] = _Line(ref, t, w, self.drift.get(instrument, 0.0))
        t_eff = max(t, line.t0)
        permanent = math.fsum(dq for when, dq in line.impacts if when <= t_eff)
        mid = (
            line.ref.mid_coin
            + line.ref.beta_coin_per_sqrt_s * (w - line.w0)
            + line.drift * (t_eff - line.t0)
            + permanent
        )
        return max(mid, 1e-8)

    def trade(self, instrument: str, signed_quantity: float, at: datetime) -> None:
        """Record a trade's permanent impact (it shows after the propagation delay)."""
        line = self._lines.get(instrument)
        if line is not None and self.permanent_impact:
            when = at.timestamp() + self.propagation_s
            line.impacts.append((when, self.permanent_impact * signed_quantity))


@dataclass(slots=True)
class _Taken:
    quantity: float = 0.0
    t: float = 0.0


class SimulatedVenue:
    """One simulated lit venue over a :class:`SimulatedMarket` (see the module docstring).

    Orders are immediate-or-cancel: they take the book at arrival (the clock plus the latency)
    up to their limit and cancel the rest. ``place_calls`` and ``executions`` count, per
    ``client_order_id``, the requests received and the times the order traded (at most once).
    """

    def __init__(
        self,
        config: VenueSettings,
        market: SimulatedMarket,
        clock: Callable[[], datetime],
        *,
        lot_size: Decimal = Decimal("0.1"),
        sleep_latency: bool = False,
    ) -> None:
        self.config = config
        self.market = market
        self.clock = clock
        self.sleep_latency = sleep_latency
        self._info = VenueInfo(config.name, config.fee_coin_per_contract, config.min_size, lot_size)
        self._taken: dict[tuple[str, str], _Taken] = {}
        self._orders: dict[str, VenueOrder] = {}
        self._seq = 0
        self.place_calls: Counter[str] = Counter()
        self.executions: Counter[str] = Counter()

    @property
    def info(self) -> VenueInfo:
        return self._info

    @property
    def orders(self) -> Mapping[str, VenueOrder]:
        """Every order the venue received, by client_order_id."""
        return self._orders

    def _taken_at(self, instrument: str, side: str, t: float) -> _Taken:
        taken = self._taken.setdefault((instrument, side), _Taken(0.0, t))
        if t > taken.t:
            taken.quantity *= math.exp(-(t - taken.t) / self.config.resilience_s)
            taken.t = t
        return taken

    async def book(self, instrument: str) -> BookSnapshot:
        now = self.clock()
        t = now.timestamp()
        mid = self.market.mid(instrument, now)
        cfg = self.config
        slope = cfg.impact_slope
        sides = {}
        for book_side, sign in (("asks", 1.0), ("bids", -1.0)):
            taken = self._taken_at(instrument, book_side, t).quantity
            left = max(0.0, cfg.depth_contracts - taken)
            step = left / cfg.book_levels
            touch = mid + sign * cfg.half_spread_coin
            sides[book_side] = tuple(
                BookLevel(
                    _dec(touch + sign * slope * (taken + (j + 0.5) * step)),
                    _dec(step),
                )
                for j in range(cfg.book_levels)
                if step > 0
            )
        return BookSnapshot(cfg.name, instrument, sides["bids"], sides["asks"], now)

    async def place(self, order: OrderRequest) -> VenueOrder:
        self.place_calls[order.client_order_id] += 1
        seen = self._orders.get(order.client_order_id)
        if seen is not None:
            return seen
        latency = self.config.latency_ms / 1000.0
        if self.sleep_latency and latency > 0:
            await asyncio.sleep(latency)
        seen = self._orders.get(order.client_order_id)  # a duplicate sent while we slept
        if seen is not None:
            return seen
        arrival = self.clock() + timedelta(seconds=0 if self.sleep_latency else latency)
        self._seq += 1
        result = self._match(order, arrival, f"{self.config.name}-{self._seq}")
        self._orders[order.client_order_id] = result
        if result.filled_quantity > 0:
            self.executions[order.client_order_id] += 1
        return result

    def _match(self, order: OrderRequest, at: datetime, venue_order_id: str) -> VenueOrder:
        cfg, lot = self.config, self._info.lot_size
        base = VenueOrder(
            venue=cfg.name,
            client_order_id=order.client_order_id,
            venue_order_id=venue_order_id,
            instrument=order.instrument,
            side=order.side,
            quantity=order.quantity,
            limit_price=order.limit_price,
            state="cancelled",
            filled_quantity=Decimal(0),
            avg_price=None,
            fills=(),
            created_at=at,
        )
        if order.side not in ("buy", "sell") or order.quantity <= 0:
            return replace(base, state="rejected", reason="invalid order")
        if order.quantity < cfg.min_size:
            return replace(base, state="rejected", reason=f"below the minimum {cfg.min_size}")
        try:
            mid = self.market.mid(order.instrument, at)
        except KeyError:
            return replace(base, state="rejected", reason="unknown instrument")
        sign = 1.0 if order.side == "buy" else -1.0
        taken = self._taken_at(order.instrument, "asks" if sign > 0 else "bids", at.timestamp())
        slope = cfg.impact_slope
        touch = mid + sign * cfg.half_spread_coin
        room = max(0.0, cfg.depth_contracts - taken.quantity)
        if order.limit_price is not None:
            # the marginal price touch + k(c + q) may not pass the limit
            edge = sign * (float(order.limit_price) - touch) / slope - taken.quantity
            room = min(room, max(0.0, edge))
        qty = min(order.quantity, _lots(room, lot))
        if qty <= 0:
            return replace(base, reason="no liquidity within the limit")
        q = float(qty)
        avg = touch + sign * slope * (taken.quantity + 0.5 * q)
        taken.quantity += q
        self.market.trade(order.instrument, sign * q, at)
        price = _dec(avg)
        fee = _dec(cfg.fee_coin_per_contract * q)
        fill = VenueFill(f"{venue_order_id}-1", order.client_order_id, qty, price, fee, at)
        state = "filled" if qty == order.quantity else "partially_filled"
        return replace(base, state=state, filled_quantity=qty, avg_price=price, fills=(fill,))

    async def cancel(self, client_order_id: str) -> VenueOrder | None:
        # immediate-or-cancel: nothing ever rests, so there is nothing left to cancel
        return self._orders.get(client_order_id)

    async def order(self, client_order_id: str) -> VenueOrder | None:
        return self._orders.get(client_order_id)

    async def fills(self, client_order_id: str) -> tuple[VenueFill, ...]:
        found = self._orders.get(client_order_id)
        return found.fills if found else ()


def build_simulated_venues(
    settings: ExecutionSettings,
    reference: ReferencePricer,
    clock: Callable[[], datetime],
    *,
    drift: Mapping[str, float] | None = None,
    seed: int | None = None,
) -> tuple[SimulatedMarket, list[SimulatedVenue]]:
    """The embedded default: one simulated market and its venues, as configured.

    Parameters
    ----------
    settings
        Execution settings (venues, permanent impact, seed, propagation, latency sleeping).
    reference
        Where instruments start, e.g. ``FeedReference(pricing.feed)``.
    clock
        The venues' clock.
    drift
        Optional drift per instrument (coin per contract per second).
    seed
        Overrides ``settings.sim_seed``.
    """
    market = SimulatedMarket(
        reference,
        seed=settings.sim_seed if seed is None else seed,
        permanent_impact=settings.permanent_impact_coin_per_contract,
        propagation_s=settings.sim_propagation_ms / 1000.0,
        drift=drift,
    )
    venues = [
        SimulatedVenue(
            cfg,
            market,
            clock,
            lot_size=settings.lot_size,
            sleep_latency=settings.sim_sleep_latency,
        )
        for cfg in settings.enabled_venues
    ]
    return market, venues


def venue_map(venues: Sequence[Venue]) -> dict[str, Venue]:
    """Venues by name (names must be unique)."""
    out: dict[str, Venue] = {}
    for v in venues:
        if v.info.name in out:
            raise ValueError(f"two venues are named {v.info.name!r}")
        out[v.info.name] = v
    return out


def _dec(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(_PRICE_Q)


def _lots(quantity: float, lot: Decimal) -> Decimal:
    """Whole lots in ``quantity`` (a hair of float noise below a lot still counts)."""
    if quantity <= 0:
        return Decimal(0)
    return Decimal(math.floor(quantity / float(lot) + 1e-9)) * lot
