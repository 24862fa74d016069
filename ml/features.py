"""Features of the dealer-fill and client-hit models: ONE definition for training and serving.

Both paths call the same functions:

* :func:`rfq_context` turns an RFQ, its legs and the pricing greeks (``client_quote.greeks`` in
  the log, ``QuoteCalc.greeks`` in the service) into an :class:`RfqContext`;
* :class:`FeatureStore` keeps trailing statistics (exponentially decayed, so updates and
  queries are O(1)) of every dealer's answers, wins, latency and inventory, and of every
  client's hit ratio. The service seeds it from the log at start-up (:func:`build_store`) and
  updates it as events happen; training replays the log through the same store
  (:func:`replay`) and reads each RFQ's features before applying any event known at or after
  the RFQ's creation, so features are point-in-time correct;
* :meth:`FillFeatures.matrix` and :func:`hit_matrix` assemble the model inputs in the order of
  :data:`FILL_FEATURES` / :data:`HIT_FEATURES` (:data:`FEATURE_NAMES`), which every artifact's
  manifest must repeat.

Units: sizes in contracts (coins), USD notional = largest leg size × spot, vega in USD per vol
point (``gross`` = Σ|legs|), tenor in days to the last expiry, ``vol_level`` the mean implied
vol of the legs (decimal), markups in gross-vega vol points (markup USD × quantity / gross
vega), times in seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from app.domain import Structure

__all__ = [
    "CATEGORICAL",
    "FEATURE_NAMES",
    "FILL_FEATURES",
    "HIT_FEATURES",
    "RFQ_FEATURES",
    "FeatureStore",
    "FillFeatures",
    "HitQuery",
    "RfqContext",
    "RfqRecord",
    "build_store",
    "hit_matrix",
    "replay",
    "rfq_context",
]

FloatArray = npt.NDArray[np.float64]

UNDERLYINGS: tuple[str, ...] = ("BTC", "ETH")
STRUCTURES: tuple[str, ...] = tuple(s.value for s in Structure)
SIDES: tuple[str, ...] = ("buy", "sell", "two_way")
_UND = {u: float(i) for i, u in enumerate(UNDERLYINGS)}
_STRUCT = {s: float(i) for i, s in enumerate(STRUCTURES)}
_SIDE = {s: float(i) for i, s in enumerate(SIDES)}
NAN = float("nan")

#: legs of each template (custom: unknown), for hit queries that do not say
TEMPLATE_LEGS: dict[str, int] = {
    "call": 1,
    "put": 1,
    "call_spread": 2,
    "put_spread": 2,
    "straddle": 2,
    "strangle": 2,
    "risk_reversal": 2,
    "call_butterfly": 3,
    "put_butterfly": 3,
    "call_condor": 4,
    "call_calendar": 2,
    "put_calendar": 2,
    "call_ratio": 2,
    "put_ratio": 2,
}

RFQ_FEATURES: tuple[str, ...] = (
    "underlying",
    "structure",
    "side",
    "n_legs",
    "log_contracts",
    "log_notional_usd",
    "log_gross_vega_usd",
    "vega_sign",
    "tenor_days",
    "log_moneyness",
    "abs_delta",
    "vol_level",
    "hour_utc",
    "hedged",
)
DEALER_FEATURES: tuple[str, ...] = (
    "n_dealers_asked",
    "dealer",
    "d_answer_rate",
    "d_win_rate",
    "d_latency_s",
    "d_log_count",
    "d_answer_rate_underlying",
    "d_answer_rate_structure",
    "d_inventory_kusd",
)
FILL_FEATURES: tuple[str, ...] = RFQ_FEATURES + DEALER_FEATURES
HIT_FEATURES: tuple[str, ...] = (
    "markup_vp",
    "underlying",
    "structure",
    "side",
    "two_way",
    "n_legs",
    "log_quantity",
    "log_notional_usd",
    "log_gross_vega_usd",
    "tenor_days",
    "c_hit_rate",
    "c_log_count",
    "c_mean_markup_vp",
)
FEATURE_NAMES: dict[str, tuple[str, ...]] = {"fill": FILL_FEATURES, "hit": HIT_FEATURES}
"""Model name → its input columns, in order. Artifacts must list exactly these."""
CATEGORICAL: frozenset[str] = frozenset({"underlying", "structure", "side", "dealer"})

# trailing statistics: half-lives and priors (part of the feature definition)
DAY = 86_400.0
DEALER_HALF_LIFE_DAYS = 3.0
INVENTORY_HALF_LIFE_DAYS = 2.0
CLIENT_HALF_LIFE_DAYS = 10.0
PRIOR_WEIGHT = 3.0
PRIOR_ANSWER, PRIOR_WIN, PRIOR_LATENCY_S = 0.45, 0.25, 1.0
PRIOR_HIT, PRIOR_MARKUP_VP = 0.35, 0.8
FINAL_RFQ_STATES = frozenset(
    {"filled", "partially_filled", "passed", "expired", "cancelled", "rejected"}
)
TRADED_STATES = frozenset({"filled", "partially_filled"})
ANSWERED = frozenset({"quoted", "won", "lost"})
RESOLVED = frozenset({"quoted", "won", "lost", "no_response", "declined", "error"})


def feature_types(name: str) -> list[str]:
    """xgboost feature types of a model's inputs (``c`` categorical, ``q`` numeric)."""
    return ["c" if f in CATEGORICAL else "q" for f in FEATURE_NAMES[name]]


# --------------------------------------------------------------------------- RFQ context


@dataclass(frozen=True, slots=True)
class RfqContext:
    """What the models know about an RFQ once it is priced (no outcome information)."""

    at: float
    underlying: str
    structure: str
    side: str
    client: str | None
    n_legs: int
    quantity: float
    contracts: float
    notional_usd: float
    gross_vega_usd: float
    vega_usd: float
    tenor_days: float
    log_moneyness: float
    abs_delta: float
    vol_level: float
    hour_utc: int
    hedged: bool

    @property
    def dealer_direction(self) -> float:
        """Sign of the vega a dealer takes on by trading this RFQ (it sells what the client
        buys); 0 for a two-way request, whose direction is not known."""
        s = 1.0 if self.vega_usd > 0 else -1.0 if self.vega_usd < 0 else 0.0
        return -s if self.side == "buy" else s if self.side == "sell" else 0.0

    def static_row(self) -> list[float]:
        """Values of :data:`RFQ_FEATURES`."""
        return [
            _UND.get(self.underlying, NAN),
            _STRUCT.get(self.structure, NAN),
            _SIDE.get(self.side, NAN),
            float(self.n_legs),
            math.log(max(self.contracts, 1e-9)),
            math.log(max(self.notional_usd, 1.0)),
            math.log(max(self.gross_vega_usd, 1.0)),
            1.0 if self.vega_usd > 0 else -1.0 if self.vega_usd < 0 else 0.0,
            self.tenor_days,
            self.log_moneyness,
            self.abs_delta,
            self.vol_level,
            float(self.hour_utc),
            1.0 if self.hedged else 0.0,
        ]


def _get(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


def _epoch(at: datetime | float) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("naive datetime: give UTC-aware times")
        return at.timestamp()
    return float(at)


def rfq_context(
    *,
    at: datetime | float,
    underlying: str,
    structure: str,
    side: str,
    quantity: float,
    client: str | None,
    hedge_reference: float | None,
    legs: Sequence[Any],
    greeks: Mapping[str, Any],
    spot: float | None = None,
) -> RfqContext:
    """The :class:`RfqContext` of a priced RFQ.

    Parameters
    ----------
    at
        When the RFQ was created (UTC datetime or epoch seconds).
    underlying, structure, side, quantity, client, hedge_reference
        The RFQ's fields (side is the client's: buy, sell or two_way).
    legs
        The RFQ's legs in leg order, objects or mappings with ``strike``, ``ratio`` and
        ``direction`` (``rfq_leg`` rows or :class:`app.models.RfqLeg`).
    greeks
        The pricing greeks of the whole package for its buyer, as the service stores them in
        ``client_quote.greeks``: ``vega_usd_per_vol_point``, ``gross_vega_usd_per_vol_point``,
        ``legs`` (per leg, same order: ``forward``, ``t_years``, ``vol``, ``delta``) and
        ``spot``.
    spot
        Index price, when ``greeks`` has no ``spot``.
    """
    g_legs = greeks["legs"]
    if len(g_legs) != len(legs):
        raise ValueError(f"{len(legs)} legs but greeks for {len(g_legs)}")
    s = float(greeks.get("spot", spot) if greeks.get("spot") is not None else spot or NAN)
    ratios = [float(_get(leg, "ratio")) for leg in legs]
    signs = [1.0 if str(_get(leg, "direction")) == "buy" else -1.0 for leg in legs]
    strikes = [float(_get(leg, "strike")) for leg in legs]
    q = float(quantity)
    delta = sum(
        sg * r * float(gl["delta"]) for sg, r, gl in zip(signs, ratios, g_legs, strict=True)
    )
    log_m = sum(
        math.log(k / float(gl["forward"])) for k, gl in zip(strikes, g_legs, strict=True)
    ) / len(legs)
    return RfqContext(
        at=_epoch(at),
        underlying=underlying,
        structure=structure,
        side=side,
        client=client,
        n_legs=len(legs),
        quantity=q,
        contracts=q * sum(ratios),
        notional_usd=q * max(ratios) * s,
        gross_vega_usd=float(greeks["gross_vega_usd_per_vol_point"]),
        vega_usd=float(greeks["vega_usd_per_vol_point"]),
        tenor_days=max(float(gl["t_years"]) for gl in g_legs) * 365.0,
        log_moneyness=log_m,
        abs_delta=abs(delta),
        vol_level=sum(float(gl["vol"]) for gl in g_legs) / len(g_legs),
        hour_utc=int((_epoch(at) % DAY) // 3600),
        hedged=hedge_reference is not None,
    )


# --------------------------------------------------------------------------- store


class _Decayed:
    """Σ wᵢ yᵢ and Σ wᵢ with weights halving every ``half_life`` seconds."""

    __slots__ = ("sw", "sy", "t")

    def __init__(self) -> None:
        self.sw = 0.0
        self.sy = 0.0
        self.t = -math.inf

    def add(self, t: float, y: float, half_life: float) -> None:
        if t >= self.t:
            f = 2.0 ** (-(t - self.t) / half_life) if self.sw or self.sy else 0.0
            self.sw = self.sw * f + 1.0
            self.sy = self.sy * f + y
            self.t = t
        else:  # arrived late: weigh it as of when it happened
            f = 2.0 ** (-(self.t - t) / half_life)
            self.sw += f
            self.sy += y * f

    def decay(self, t: float, half_life: float) -> float:
        return 2.0 ** (-(t - self.t) / half_life) if t > self.t else 1.0

    def rate(self, t: float, half_life: float, prior: float) -> float:
        f = self.decay(t, half_life)
        return (self.sy * f + prior * PRIOR_WEIGHT) / (self.sw * f + PRIOR_WEIGHT)

    def count(self, t: float, half_life: float) -> float:
        return self.sw * self.decay(t, half_life)

    def total(self, t: float, half_life: float) -> float:
        return self.sy * self.decay(t, half_life)


class _Sum:
    """Σ yᵢ with weights halving every ``half_life`` seconds (inventory)."""

    __slots__ = ("s", "t")

    def __init__(self) -> None:
        self.s = 0.0
        self.t = -math.inf

    def add(self, t: float, y: float, half_life: float) -> None:
        if t >= self.t:
            self.s = (self.s * 2.0 ** (-(t - self.t) / half_life) if self.s else 0.0) + y
            self.t = t
        else:
            self.s += y * 2.0 ** (-(self.t - t) / half_life)

    def value(self, t: float, half_life: float) -> float:
        return self.s * 2.0 ** (-(t - self.t) / half_life) if self.s and t > self.t else self.s


class FeatureStore:
    """Trailing statistics of dealers and clients, updated event by event.

    All ``observe_*`` methods take the time the event became known (``at``, epoch seconds
    or aware datetime); queries take the time of the RFQ being scored and must only be asked
    after every event known before it was observed (the service does so naturally; training
    does so through :func:`replay`).
    """

    def __init__(self) -> None:
        hl = DEALER_HALF_LIFE_DAYS * DAY
        self._hl_dealer = hl
        self._hl_inv = INVENTORY_HALF_LIFE_DAYS * DAY
        self._hl_client = CLIENT_HALF_LIFE_DAYS * DAY
        self._answer: defaultdict[str, _Decayed] = defaultdict(_Decayed)
        self._answer_und: defaultdict[tuple[str, str], _Decayed] = defaultdict(_Decayed)
        self._answer_struct: defaultdict[tuple[str, str], _Decayed] = defaultdict(_Decayed)
        self._latency: defaultdict[str, _Decayed] = defaultdict(_Decayed)
        self._win: defaultdict[str, _Decayed] = defaultdict(_Decayed)
        self._inventory: defaultdict[tuple[str, str], _Sum] = defaultdict(_Sum)
        self._hit: defaultdict[str, _Decayed] = defaultdict(_Decayed)
        self._markup: defaultdict[str, _Decayed] = defaultdict(_Decayed)
        self.last_event_at = -math.inf

    def _seen(self, at: float) -> None:
        if at > self.last_event_at:
            self.last_event_at = at

    # -- updates
    def observe_dealer_response(
        self,
        dealer: str,
        underlying: str,
        structure: str,
        at: datetime | float,
        answered: bool,
        latency_s: float | None = None,
    ) -> None:
        """A dealer request was resolved: answered with a tradeable quote, or not
        (declined, no response by the deadline, transport error)."""
        t = _epoch(at)
        y = 1.0 if answered else 0.0
        hl = self._hl_dealer
        self._answer[dealer].add(t, y, hl)
        self._answer_und[(dealer, underlying)].add(t, y, hl)
        self._answer_struct[(dealer, structure)].add(t, y, hl)
        if answered and latency_s is not None:
            self._latency[dealer].add(t, latency_s, hl)
        self._seen(t)

    def observe_dealer_result(self, dealer: str, at: datetime | float, won: bool) -> None:
        """The client traded an RFQ this dealer was asked about; it won (was filled) or not."""
        t = _epoch(at)
        self._win[dealer].add(t, 1.0 if won else 0.0, self._hl_dealer)
        self._seen(t)

    def observe_dealer_fill(
        self, dealer: str, underlying: str, at: datetime | float, dealer_vega_usd: float
    ) -> None:
        """The desk traded with the dealer: ``dealer_vega_usd`` is the vega the dealer took
        on (USD per vol point, positive when it bought vega)."""
        t = _epoch(at)
        self._inventory[(dealer, underlying)].add(t, dealer_vega_usd, self._hl_inv)
        self._seen(t)

    def observe_client_result(
        self, client: str, at: datetime | float, traded: bool, markup_vp: float
    ) -> None:
        """A client quote was resolved (traded, passed or expired); ``markup_vp`` is the mean
        markup shown (gross-vega vol points)."""
        t = _epoch(at)
        self._hit[client].add(t, 1.0 if traded else 0.0, self._hl_client)
        if math.isfinite(markup_vp):
            self._markup[client].add(t, markup_vp, self._hl_client)
        self._seen(t)

    # -- queries
    def dealer_row(
        self, dealer: str, underlying: str, structure: str, at: float, direction: float
    ) -> list[float]:
        """Values of the trailing dealer features (``d_*`` of :data:`DEALER_FEATURES`)."""
        hl = self._hl_dealer
        ans = self._answer.get(dealer)
        lat = self._latency.get(dealer)
        win = self._win.get(dealer)
        au = self._answer_und.get((dealer, underlying))
        ast = self._answer_struct.get((dealer, structure))
        inv = self._inventory.get((dealer, underlying))
        return [
            ans.rate(at, hl, PRIOR_ANSWER) if ans else PRIOR_ANSWER,
            win.rate(at, hl, PRIOR_WIN) if win else PRIOR_WIN,
            lat.rate(at, hl, PRIOR_LATENCY_S) if lat else PRIOR_LATENCY_S,
            math.log1p(ans.count(at, hl)) if ans else 0.0,
            au.rate(at, hl, PRIOR_ANSWER) if au else PRIOR_ANSWER,
            ast.rate(at, hl, PRIOR_ANSWER) if ast else PRIOR_ANSWER,
            (inv.value(at, self._hl_inv) * direction / 1000.0) if inv else 0.0,
        ]

    def client_row(self, client: str | None, at: float) -> list[float]:
        """Values of ``c_hit_rate``, ``c_log_count``, ``c_mean_markup_vp``."""
        if client is None:
            return [PRIOR_HIT, 0.0, PRIOR_MARKUP_VP]
        hl = self._hl_client
        hit = self._hit.get(client)
        mk = self._markup.get(client)
        return [
            hit.rate(at, hl, PRIOR_HIT) if hit else PRIOR_HIT,
            math.log1p(hit.count(at, hl)) if hit else 0.0,
            mk.rate(at, hl, PRIOR_MARKUP_VP) if mk else PRIOR_MARKUP_VP,
        ]

    def dealer_inventory(self, dealer: str, underlying: str, at: float) -> float:
        """Decayed vega (USD per vol point) the dealer has taken on from the desk."""
        inv = self._inventory.get((dealer, underlying))
        return inv.value(at, self._hl_inv) if inv else 0.0


# --------------------------------------------------------------------------- matrices


class FillFeatures:
    """Builds fill-model inputs; holds the dealer vocabulary of a trained model.

    Parameters
    ----------
    dealers
        Dealer names in the order of their category codes (from the artifact's manifest);
        a dealer not in it gets a missing category.
    """

    def __init__(self, dealers: Sequence[str]) -> None:
        self.dealers = tuple(dealers)
        self._code = {name: float(i) for i, name in enumerate(self.dealers)}

    def matrix(
        self,
        ctx: RfqContext,
        dealers: Sequence[str],
        n_asked: int,
        store: FeatureStore,
        out: FloatArray | None = None,
    ) -> FloatArray:
        """One row per dealer, columns :data:`FILL_FEATURES`."""
        n = len(dealers)
        x = out if out is not None else np.empty((n, len(FILL_FEATURES)))
        static = ctx.static_row()
        k = len(static)
        x[:, :k] = static
        x[:, k] = float(n_asked)
        direction = ctx.dealer_direction
        for i, name in enumerate(dealers):
            x[i, k + 1] = self._code.get(name, NAN)
            x[i, k + 2 :] = store.dealer_row(name, ctx.underlying, ctx.structure, ctx.at, direction)
        return x


class HitQuery(Protocol):
    """What the hit model reads from a quote request (``app.pricing.hit.HitContext``)."""

    @property
    def underlying(self) -> str: ...
    @property
    def structure(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def quantity(self) -> float: ...
    @property
    def notional_usd(self) -> float: ...
    @property
    def gross_vega_usd(self) -> float: ...
    @property
    def tenor_days(self) -> float: ...
    @property
    def client(self) -> str | None: ...
    @property
    def extra(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class HitRequest:
    """A concrete :class:`HitQuery` (training builds these from the log)."""

    underlying: str
    structure: str
    side: str
    quantity: float
    notional_usd: float
    gross_vega_usd: float
    tenor_days: float
    client: str | None
    extra: dict[str, Any] | None = None


def hit_matrix(
    q: HitQuery, markups: FloatArray, store: FeatureStore | None, at: float | None = None
) -> FloatArray:
    """One row per markup, columns :data:`HIT_FEATURES`.

    ``q.extra`` may carry ``rfq_side`` (the client's side of the request: a two-way request
    hits each side less often), ``n_legs`` and ``at`` (epoch seconds or datetime, the time
    the client trailing statistics are read at; default: the store's latest event).
    """
    extra = q.extra or {}
    rfq_side = str(extra.get("rfq_side", q.side))
    n_legs = extra.get("n_legs", TEMPLATE_LEGS.get(q.structure))
    when = at if at is not None else extra.get("at")
    t = _epoch(when) if when is not None else (store.last_event_at if store else 0.0)
    client = (
        store.client_row(q.client, t) if store is not None else [PRIOR_HIT, 0.0, PRIOR_MARKUP_VP]
    )
    row = [
        0.0,
        _UND.get(q.underlying, NAN),
        _STRUCT.get(q.structure, NAN),
        _SIDE.get(q.side, NAN),
        1.0 if rfq_side == "two_way" else 0.0,
        float(n_legs) if n_legs is not None else NAN,
        math.log(max(float(q.quantity), 1e-9)),
        math.log(max(float(q.notional_usd), 1.0)),
        math.log(max(float(q.gross_vega_usd), 1.0)),
        float(q.tenor_days),
        *client,
    ]
    x = np.tile(np.asarray(row, dtype=np.float64), (len(markups), 1))
    x[:, 0] = markups
    return x


# --------------------------------------------------------------------------- replay


@dataclass
class DealerAsk:
    """One dealer request of an RFQ, as logged."""

    id: str
    dealer: str
    outcome: str
    selected: bool


@dataclass
class RfqRecord:
    """One RFQ of the log, with what training needs (labels included)."""

    index: int
    id: str
    ctx: RfqContext
    state: str
    accepted_side: str | None
    resolved_at: float
    requests: list[DealerAsk] = field(default_factory=list)
    quote_id: str | None = None
    quote_status: str | None = None
    markup_bid_vp: float | None = None
    markup_ask_vp: float | None = None

    @property
    def traded(self) -> bool:
        return self.state in TRADED_STATES

    @property
    def n_asked(self) -> int:
        return sum(1 for r in self.requests if r.selected)

    def hit_request(self, side: str) -> HitRequest:
        c = self.ctx
        return HitRequest(
            underlying=c.underlying,
            structure=c.structure,
            side=side,
            quantity=c.quantity,
            notional_usd=c.notional_usd,
            gross_vega_usd=c.gross_vega_usd,
            tenor_days=c.tenor_days,
            client=c.client,
            extra={"rfq_side": c.side, "n_legs": c.n_legs, "at": c.at},
        )


# store events: (known at, sequence, kind, *arguments of the observe_* method)
_CLIENT, _RESPONSE, _RESULT, _FILL = 0, 1, 2, 3
_Event = tuple[Any, ...]


def _apply(store: FeatureStore, ev: _Event) -> None:
    kind = ev[2]
    if kind == _RESPONSE:
        store.observe_dealer_response(ev[3], ev[4], ev[5], ev[0], ev[6], ev[7])
    elif kind == _RESULT:
        store.observe_dealer_result(ev[3], ev[0], ev[4])
    elif kind == _FILL:
        store.observe_dealer_fill(ev[3], ev[4], ev[0], ev[5])
    else:
        store.observe_client_result(ev[3], ev[0], ev[4], ev[5])


def _markup(expl: Mapping[str, Any] | None, key: str) -> float | None:
    side = (expl or {}).get(key)
    if not side:
        return None
    value = side.get("markup_vol_points")
    return float(value) if value is not None else None


def load_records(log: Any) -> tuple[list[RfqRecord], list[_Event]]:
    """RFQ records (creation order) and store events (known-time order) of a
    :class:`ml.export.LogData`."""
    from ml.export import column_numpy

    tb = log.tables
    dealer_name = dict(
        zip(tb["dealer"]["id"].to_pylist(), tb["dealer"]["name"].to_pylist(), strict=True)
    )
    # legs by rfq
    legs_by: defaultdict[str, list[tuple[int, float, int, str]]] = defaultdict(list)
    lt = tb["rfq_leg"]
    for rid, idx, k, r, d in zip(
        lt["rfq_id"].to_pylist(),
        lt["leg_index"].to_pylist(),
        lt["strike"].to_pylist(),
        lt["ratio"].to_pylist(),
        lt["direction"].to_pylist(),
        strict=True,
    ):
        legs_by[rid].append((idx, k, r, d))
    # the first client quote of each RFQ carries the pricing the RFQ was ranked with; the
    # last one (a re-quote supersedes the earlier ones) is the one the client decided on
    cq = tb["client_quote"]
    quote_by: dict[str, tuple[float, str, str, str, str | None]] = {}
    last_by: dict[str, tuple[float, str, str, str, str | None]] = {}
    for qid, rid, created, status, greeks, expl in zip(
        cq["id"].to_pylist(),
        cq["rfq_id"].to_pylist(),
        column_numpy(cq, "created_at"),
        cq["status"].to_pylist(),
        cq["greeks"].to_pylist(),
        cq["explanation"].to_pylist(),
        strict=True,
    ):
        prev = quote_by.get(rid)
        if prev is None or created < prev[0]:
            quote_by[rid] = (created, qid, status, greeks, expl)
        later = last_by.get(rid)
        if later is None or created >= later[0]:
            last_by[rid] = (created, qid, status, greeks, expl)
    # resolution time of each RFQ: its final state event
    ev = tb["rfq_event"]
    resolved: dict[str, float] = {}
    for rid, at, to in zip(
        ev["rfq_id"].to_pylist(), column_numpy(ev, "at"), ev["to_state"].to_pylist(), strict=True
    ):
        if to in FINAL_RFQ_STATES:
            resolved[rid] = at
    rq = tb["rfq"]
    created = column_numpy(rq, "created_at")
    order = np.argsort(created, kind="stable")
    cols = {
        c: rq[c].to_pylist()
        for c in (
            "id",
            "underlying",
            "structure",
            "side",
            "quantity",
            "client",
            "hedge_reference",
            "state",
            "accepted_side",
        )
    }
    records: list[RfqRecord] = []
    by_id: dict[str, RfqRecord] = {}
    events: list[_Event] = []
    seq = 0
    for pos in order:
        rid = cols["id"][pos]
        quote = quote_by.get(rid)
        legs = sorted(legs_by.get(rid, []))
        if quote is None or not legs:
            continue  # never priced: nothing a model could have been asked about
        greeks = json.loads(quote[3]) if isinstance(quote[3], str) else quote[3]
        last = last_by[rid]
        expl = json.loads(last[4]) if isinstance(last[4], str) else last[4]
        ctx = rfq_context(
            at=float(created[pos]),
            underlying=cols["underlying"][pos],
            structure=cols["structure"][pos],
            side=cols["side"][pos],
            quantity=cols["quantity"][pos],
            client=cols["client"][pos],
            hedge_reference=cols["hedge_reference"][pos],
            legs=[{"strike": k, "ratio": r, "direction": d} for _, k, r, d in legs],
            greeks=greeks,
        )
        rec = RfqRecord(
            index=len(records),
            id=rid,
            ctx=ctx,
            state=cols["state"][pos],
            accepted_side=cols["accepted_side"][pos],
            resolved_at=resolved.get(rid, math.nan),
            quote_id=last[1],
            quote_status=last[2],
            markup_bid_vp=_markup(expl, "bid"),
            markup_ask_vp=_markup(expl, "ask"),
        )
        records.append(rec)
        by_id[rid] = rec
        if (
            rec.state in FINAL_RFQ_STATES
            and ctx.client is not None
            and math.isfinite(rec.resolved_at)
        ):
            shown = [m for m in (rec.markup_bid_vp, rec.markup_ask_vp) if m is not None]
            mk = sum(shown) / len(shown) if shown else math.nan
            events.append((rec.resolved_at, seq, _CLIENT, ctx.client, rec.traded, mk))
            seq += 1
    # dealer requests
    dr = tb["dealer_request"]
    sent = column_numpy(dr, "sent_at")
    made = column_numpy(dr, "created_at")
    deadline = column_numpy(dr, "deadline_at")
    first = column_numpy(dr, "first_quote_at")
    for j, (drid, rid, did, outcome, selected) in enumerate(
        zip(
            dr["id"].to_pylist(),
            dr["rfq_id"].to_pylist(),
            dr["dealer_id"].to_pylist(),
            dr["outcome"].to_pylist(),
            dr["selected"].to_pylist(),
            strict=True,
        )
    ):
        found = by_id.get(rid)
        if found is None:
            continue
        rec = found
        name = dealer_name.get(did, did)
        rec.requests.append(DealerAsk(drid, name, outcome, bool(selected)))
        if not selected or outcome not in RESOLVED:
            continue
        answered = outcome in ANSWERED
        if answered:
            known = first[j]
        elif outcome == "declined":  # the service keeps no first_quote_at for a decline
            known = next((v for v in (first[j], sent[j], made[j]) if math.isfinite(v)), math.nan)
        elif outcome == "error":
            known = sent[j] if math.isfinite(sent[j]) else made[j]
        else:
            known = deadline[j]
        if not math.isfinite(known):
            continue
        latency = first[j] - sent[j] if answered and math.isfinite(sent[j]) else None
        events.append(
            (known, seq, _RESPONSE, name, rec.ctx.underlying, rec.ctx.structure, answered, latency)
        )
        seq += 1
        if rec.traded and math.isfinite(rec.resolved_at):
            events.append((rec.resolved_at, seq, _RESULT, name, outcome == "won"))
            seq += 1
    # dealer fills move the dealer's inventory
    fl = tb["fill"]
    filled_at = column_numpy(fl, "filled_at")
    for j, (rid, cp, did, side, qty) in enumerate(
        zip(
            fl["rfq_id"].to_pylist(),
            fl["counterparty"].to_pylist(),
            fl["dealer_id"].to_pylist(),
            fl["side"].to_pylist(),
            fl["quantity"].to_pylist(),
            strict=True,
        )
    ):
        found = by_id.get(rid)
        if cp != "dealer" or found is None or did is None:
            continue
        rec = found
        vega_unit = rec.ctx.vega_usd / rec.ctx.quantity
        dv = (-1.0 if side == "buy" else 1.0) * vega_unit * float(qty)  # the dealer's side
        name = dealer_name.get(did, did)
        events.append((filled_at[j], seq, _FILL, name, rec.ctx.underlying, dv))
        seq += 1
    events.sort(key=lambda ev: (ev[0], ev[1]))
    return records, events


def replay(
    log: Any,
    visit: Callable[[RfqRecord, FeatureStore], None],
    store: FeatureStore | None = None,
) -> FeatureStore:
    """Walk the log in time order; call ``visit(record, store)`` for every priced RFQ with the
    store holding exactly the events known strictly before the RFQ was created.

    Returns the store after every event (what the service would hold now).
    """
    records, events = load_records(log)
    store = store or FeatureStore()
    e = 0
    n_events = len(events)
    for rec in records:
        t = rec.ctx.at
        while e < n_events and events[e][0] < t:
            _apply(store, events[e])
            e += 1
        visit(rec, store)
    while e < n_events:
        _apply(store, events[e])
        e += 1
    return store


def build_store(log: Any) -> FeatureStore:
    """A store holding every event of ``log`` (the service's start-up seed)."""
    return replay(log, lambda rec, store: None)


def iter_hit_sides(rec: RfqRecord) -> Iterable[tuple[str, float, bool]]:
    """(side of the price, markup, hit) for each side quoted to the client: ``buy`` is the
    client buying at the desk's ask."""
    for side, markup in (("buy", rec.markup_ask_vp), ("sell", rec.markup_bid_vp)):
        if markup is None:
            continue
        yield side, markup, rec.traded and rec.accepted_side == side


async def seed_store(
    database_url: str, days: float = 30.0, now: datetime | None = None
) -> FeatureStore:
    """The service's start-up store: replay the last ``days`` of the log in the database.

    Trailing statistics forget with half-lives of 2 to 10 days, so a month of history
    reproduces them to well under 0.1 % of an event's weight.
    """
    from datetime import UTC, timedelta

    from ml.export import read_log_db

    now = now or datetime.now(UTC)
    log = await read_log_db(database_url, since=now - timedelta(days=days))
    return build_store(log)
