"""A small, deterministic RFQ log written with the ORM models: every outcome the analytics
distinguish occurs in it (traded, passed, expired, rejected, open RFQs; won, lost, quoted,
declined, no-response, error, skipped and pending dealer requests; replaced and refused
quotes; superseded client quotes; client, dealer and desk fills; markout snapshots present,
missing and straddling a horizon)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.expiries import format_expiry_code
from app.marketdata.simulated import SimulatedFeed
from app.marketdata.snapshot import MarketSnapshot as Snap
from app.models import (
    ClientQuote,
    Dealer,
    DealerQuote,
    DealerRequest,
    Fill,
    MarketSnapshot,
    Rfq,
    RfqLeg,
)
from app.models._mixins import new_id
from app.quant.pricing import price_package

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = T0 - timedelta(hours=1)
UNTIL = T0 + timedelta(days=2)
DEALERS = ("alpha", "bravo", "charlie")
CLIENTS = ("acme", "globex", None)
STEP = {"BTC": 1000.0, "ETH": 50.0}


def d(x: float) -> Decimal:
    return Decimal(f"{x:.8f}")


@dataclass
class Seeded:
    dealers: dict[str, Dealer]
    rfqs: list[Rfq] = field(default_factory=list)
    n_traded: int = 0


class _Feed:
    """Snapshots of both underlyings at given times, in time order (the feed only moves on)."""

    def __init__(self, times: dict[str, list[datetime]]) -> None:
        self.snaps: dict[tuple[str, datetime], Snap] = {}
        for u, ts in times.items():
            clock = [ts[0]]
            feed = SimulatedFeed(seed=11, clock=lambda c=clock: c[0], spots={u: _SPOT[u]})
            for t in sorted(set(ts)):
                clock[0] = t
                self.snaps[(u, t)] = feed.snapshot_sync(u)


_SPOT = {"BTC": 65_000.0, "ETH": 3_000.0}


def _row(snap: Snap) -> MarketSnapshot:
    return MarketSnapshot(
        id=new_id(),
        underlying=snap.underlying,
        taken_at=snap.as_of,
        source=snap.source,
        spot=d(snap.spot),
        data=snap.to_dict(),
    )


async def seed_log(session: AsyncSession, n: int = 36) -> Seeded:
    dealers = {
        name: Dealer(id=new_id(), name=name, endpoint_url=f"http://{name}.invalid",
                     underlyings=["BTC", "ETH"], webhook_secret="s" * 32)
        for name in DEALERS
    }  # fmt: skip
    pending: list[Any] = list(dealers.values())
    out = Seeded(dealers)
    # RFQ times: every 47 minutes over ~28 h, plus one before the window
    starts = [T0 + timedelta(minutes=47 * i, seconds=13 * i) for i in range(n)]
    starts.append(T0 - timedelta(days=3))
    unds = ["BTC" if i % 3 else "ETH" for i in range(len(starts))]
    traded_at = {i: t + timedelta(seconds=12) for i, t in enumerate(starts)}
    # later snapshots for markouts (+61 s, +305 s, +1810 s after the fill); for every fifth
    # traded RFQ none at +1 min, so that its markout there stays unpriced
    times: dict[str, list[datetime]] = {"BTC": [], "ETH": []}
    later: dict[int, list[datetime]] = {}
    for i, t in enumerate(starts):
        times[unds[i]].append(t)
        offs = (61, 305, 1810) if i % 5 else (305, 1810)
        later[i] = [traded_at[i] + timedelta(seconds=s) for s in offs]
        times[unds[i]].extend(later[i])
    feed = _Feed(times)
    stored: dict[tuple[str, datetime], MarketSnapshot] = {}

    def store(u: str, t: datetime) -> MarketSnapshot:
        if (u, t) not in stored:
            stored[(u, t)] = _row(feed.snaps[(u, t)])
            pending.append(stored[(u, t)])
        return stored[(u, t)]

    structures = ["call_spread", "straddle", "call", "put", "risk_reversal", "put_spread"]
    sides = ["buy", "sell", "two_way"]
    for i, t in enumerate(starts):
        u = unds[i]
        snap = feed.snaps[(u, t)]
        step = STEP[u]
        structure = structures[i % len(structures)]
        side = sides[i % 3]
        qty = [5, 30, 120, 400, 1500, 60][i % 6]
        hedge = round(snap.spot / 10) * 10 if i % 2 else None
        exp = [e for e in snap.expiries if snap.t_years(e) > 10 / 365][i % 4]
        fwd = snap.forward(exp)
        atm = round(fwd / step) * step
        w = step * (2 + i % 3)
        legs_spec = {
            "call_spread": [(atm, True, 1), (atm + w, True, -1)],
            "straddle": [(atm, True, 1), (atm, False, 1)],
            "call": [(atm + w, True, 1)],
            "put": [(atm - w, False, 1)],
            "risk_reversal": [(atm + w, True, 1), (atm - w, False, -1)],
            "put_spread": [(atm, False, 1), (atm - w, False, -1)],
        }[structure]
        # what happens to it
        kind = (
            "outside" if i == n else
            "open" if i == n - 1 else
            "rejected" if i % 11 == 7 else
            "traded" if i % 3 == 0 or i % 7 == 2 else
            "passed" if i % 2 else "expired"
        )  # fmt: skip
        rfq = Rfq(
            id=new_id(),
            created_at=t,
            updated_at=t,
            expires_at=t + timedelta(minutes=2),
            state="new",
            client=CLIENTS[i % 3],
            channel="chat" if i % 4 == 1 else "api",
            underlying=u,
            structure=structure,
            side=side,
            quantity=Decimal(qty),
            hedge_reference=None if hedge is None else Decimal(hedge),
        )
        rfq.legs = [
            RfqLeg(
                leg_index=j,
                instrument=f"{u}-{format_expiry_code(exp)}-{int(k)}-{'C' if c else 'P'}",
                expiry=exp,
                strike=Decimal(int(k)),
                option_type="call" if c else "put",
                ratio=1,
                direction="buy" if s > 0 else "sell",
            )
            for j, (k, c, s) in enumerate(legs_spec)
        ]
        pending.append(rfq)
        out.rfqs.append(rfq)
        if kind == "rejected":
            rfq.state = "rejected"
            continue
        # the client quote (an earlier, superseded one for every eighth RFQ)
        strikes = np.array([k for k, _, _ in legs_spec])
        pk = price_package(
            snap.forwards([exp] * len(legs_spec)),
            strikes,
            snap.times([exp] * len(legs_spec)),
            snap.vols([exp] * len(legs_spec), strikes),
            np.array([c for _, c, _ in legs_spec]),
            np.array([s * qty for _, _, s in legs_spec], dtype=float),
            hedge_reference=hedge,
            spot=snap.spot,
        )
        theo = pk.theo_usd / qty
        gross_vega = float(np.abs(pk.leg_vegas * 0.01 * qty).sum())
        vega_unit = gross_vega / qty
        mk_b, mk_a = 0.3 + 0.1 * (i % 5), 0.35 + 0.1 * (i % 4)
        bid_usd = theo - mk_b * vega_unit if side != "buy" else None
        ask_usd = theo + mk_a * vega_unit if side != "sell" else None
        snap_row = store(u, t)
        greeks: dict[str, object] = {
            "gross_vega_usd_per_vol_point": gross_vega,
            "spot": snap.spot,
            "delta_coins": pk.delta,
        }
        if i % 4 == 0:
            greeks["screen_mid_usd"] = theo + 0.05 * vega_unit
        if i % 8 == 3:
            pending.append(
                ClientQuote(rfq_id=rfq.id, snapshot_id=snap_row.id, created_at=t,
                            valid_until=t + timedelta(seconds=5), theo_usd=d(theo),
                            theo_coin=d(theo / snap.spot), bid_coin=d(1.0), ask_coin=d(9.0),
                            p_hit_bid=0.9, p_hit_ask=0.9, status="superseded",
                            greeks={"gross_vega_usd_per_vol_point": 1.0})
            )  # fmt: skip
        cq = ClientQuote(
            rfq_id=rfq.id,
            snapshot_id=snap_row.id,
            created_at=t + timedelta(seconds=2),
            valid_until=t + timedelta(seconds=30),
            theo_usd=d(theo),
            theo_coin=d(theo / snap.spot),
            bid_coin=None if bid_usd is None else d(bid_usd / snap.spot),
            ask_coin=None if ask_usd is None else d(ask_usd / snap.spot),
            bid_usd=None if bid_usd is None else d(bid_usd),
            ask_usd=None if ask_usd is None else d(ask_usd),
            p_hit_bid=None if bid_usd is None else round(0.55 - 0.1 * (i % 5), 4),
            p_hit_ask=None if ask_usd is None else round(0.62 - 0.09 * (i % 6), 4),
            status="live",
            greeks=greeks,
        )
        pending.append(cq)
        # dealer requests: each dealer answers, declines, times out, errs or is skipped
        client_buys = side == "buy" or (side == "two_way" and i % 2 == 0)
        requests = []
        for j, dealer in enumerate(dealers.values()):
            roll = (i * 7 + j * 3) % 10
            outcome = (
                "skipped" if roll == 9 else
                "error" if roll == 8 else
                "no_response" if roll == 7 else
                "declined" if roll == 6 else
                "quoted"
            )  # fmt: skip
            if kind == "open" and outcome == "quoted" and j == 2:
                outcome = "pending"
            sent = t + timedelta(milliseconds=5)
            req = DealerRequest(
                id=new_id(),
                rfq_id=rfq.id,
                dealer_id=dealer.id,
                created_at=sent,
                rank=j + 1,
                selected=outcome != "skipped",
                p_answer=round(0.2 + 0.07 * ((i + 3 * j) % 11), 4),
                p_win=round(0.05 + 0.04 * ((2 * i + j) % 9), 4),
                theo_coin=d(theo / snap.spot),
                sent_at=None if outcome == "skipped" else sent,
                deadline_at=None if outcome == "skipped" else sent + timedelta(seconds=1),
                outcome=outcome,
            )
            pending.append(req)
            bid = ask = None
            if outcome in ("quoted", "declined"):
                latency = timedelta(milliseconds=40 + 37 * ((i + 5 * j) % 13))
                if outcome == "quoted":
                    req.first_quote_at = sent + latency
                    half = vega_unit * (0.4 + 0.3 * j + 0.05 * (i % 3))
                    mid = theo + vega_unit * 0.1 * ((i + j) % 5 - 2)
                    two_sided = side == "two_way" or (i + j) % 3 != 0
                    if two_sided or side == "sell":
                        bid = round((mid - half) / snap.spot, 4)
                    if two_sided or side == "buy":
                        ask = round((mid + half) / snap.spot, 4)
                    if j == 1 and i % 5 == 0:
                        # a tie with the first dealer on both sides
                        prev = requests[0][1:]
                        bid, ask = (
                            prev if prev[0] is not None or prev[1] is not None else (bid, ask)
                        )
                    if (i + j) % 4 == 0:  # an earlier quote, replaced
                        pending.append(
                            DealerQuote(dealer_request_id=req.id, rfq_id=rfq.id,
                                        dealer_id=dealer.id, received_at=sent + latency,
                                        bid_coin=None if bid is None else d(bid - 0.001),
                                        ask_coin=None if ask is None else d(ask + 0.001),
                                        size=Decimal(qty), status="replaced")
                        )  # fmt: skip
                        latency += timedelta(milliseconds=50)
                    pending.append(
                        DealerQuote(dealer_request_id=req.id, rfq_id=rfq.id, dealer_id=dealer.id,
                                    received_at=sent + latency,
                                    bid_coin=None if bid is None else d(bid),
                                    ask_coin=None if ask is None else d(ask),
                                    size=Decimal(qty if j != 0 else max(1, qty // 2)),
                                    status="live")
                    )  # fmt: skip
                else:
                    pending.append(
                        DealerQuote(dealer_request_id=req.id, rfq_id=rfq.id, dealer_id=dealer.id,
                                    received_at=sent + latency, status="refused",
                                    firm=False, refusal_reason="no appetite")
                    )  # fmt: skip
            requests.append((req, bid, ask))
        # the outcome
        if kind == "open":
            rfq.state = "quoted"
            continue
        if kind == "outside":
            kind = "traded"
        if kind != "traded":
            rfq.state = kind
            cq.status = kind
            for req, _, _ in requests:
                if req.outcome == "quoted" and kind == "passed":
                    req.outcome = "lost"
            continue
        out.n_traded += 1
        at = traded_at[i]
        rfq.state = "filled" if i % 9 else "partially_filled"
        rfq.accepted_side = "buy" if client_buys else "sell"
        cq.status = "accepted"
        client_px = cq.ask_coin if client_buys else cq.bid_coin
        client_usd = cq.ask_usd if client_buys else cq.bid_usd
        if client_px is None:  # one-sided the other way: trade the side shown
            client_buys = not client_buys
            rfq.accepted_side = "buy" if client_buys else "sell"
            client_px = cq.ask_coin if client_buys else cq.bid_coin
            client_usd = cq.ask_usd if client_buys else cq.bid_usd
        assert client_px is not None
        assert client_usd is not None
        book = sorted(
            (
                (ask if client_buys else -bid, k, req)
                for k, (req, bid, ask) in enumerate(requests)
                if req.outcome == "quoted" and (ask if client_buys else bid) is not None
            ),
            key=lambda x: (x[0], x[1]),
        )
        left = Decimal(qty)
        for key, _, req in book[:2]:
            price = key if client_buys else -key
            take = min(left, Decimal(qty) if left == qty else left)
            if req.dealer_id == dealers["alpha"].id:
                take = min(take, Decimal(max(1, qty // 2)))
            if take <= 0:
                break
            left -= take
            req.outcome, req.fill_quantity = "won", take
            pending.append(
                Fill(rfq_id=rfq.id, filled_at=at, counterparty="dealer", dealer_id=req.dealer_id,
                     side="buy" if client_buys else "sell", quantity=take, price_coin=d(price),
                     price_usd=d(price * snap.spot))
            )  # fmt: skip
        for req, _, _ in requests:
            if req.outcome == "quoted":
                req.outcome = "lost"
        filled = Decimal(qty) if rfq.state == "filled" else Decimal(qty) - left
        rfq.filled_quantity = filled
        pending.append(
            Fill(rfq_id=rfq.id, filled_at=at, counterparty="client",
                 side="sell" if client_buys else "buy", quantity=filled, price_coin=client_px,
                 price_usd=client_usd)
        )  # fmt: skip
        if left > 0 and rfq.state == "filled":
            pending.append(
                Fill(rfq_id=rfq.id, filled_at=at, counterparty="desk",
                     side="buy" if client_buys else "sell", quantity=left,
                     price_coin=client_px, price_usd=client_usd)
            )  # fmt: skip
        for lt in later[i]:
            store(u, lt)
    # in the order of the foreign keys (the models declare no relationships between these)
    order = [Dealer, MarketSnapshot, Rfq, ClientQuote, DealerRequest, DealerQuote, Fill]
    for model in order:
        session.add_all(o for o in pending if type(o) is model)
        await session.flush()
    return out


def ms_between(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000.0


def isclose(a: float | None, b: float | None, rel: float = 1e-9, abs_: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
