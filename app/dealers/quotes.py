"""Dealer quotes: validated, stored whether accepted or refused, replaced or withdrawn."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import DealerSettings
from app.dealers.wire import DealerQuoteIn
from app.models import DealerQuote, DealerRequest, RfqLeg

OPEN_OUTCOMES = ("pending", "quoted")


class QuoteRefused(Exception):
    """A dealer quote that was logged as refused; the reason is its message."""


def package_prices(
    quote: DealerQuoteIn, legs: Sequence[RfqLeg]
) -> tuple[Decimal | None, Decimal | None]:
    """Package bid/ask (buyer's legs as written) from a package or a per-leg quote.

    Per leg: the package bid is what the dealer pays for the buyer's legs (bids of bought legs
    minus asks of sold legs); the ask is the converse. A side missing on any leg is missing.
    """
    if quote.legs is None:
        return quote.bid, quote.ask
    by_name = {leg.instrument: leg for leg in legs}
    quoted = {lq.instrument.upper(): lq for lq in quote.legs}
    if set(quoted) != set(by_name):
        raise QuoteRefused("per-leg quote must price exactly the request's legs")
    bid: Decimal | None = Decimal(0)
    ask: Decimal | None = Decimal(0)
    for name, leg in by_name.items():
        lq, r = quoted[name], Decimal(leg.ratio)
        buy = leg.direction == "buy"
        leg_bid, leg_ask = (lq.bid, lq.ask) if buy else (lq.ask, lq.bid)
        bid = (
            None if bid is None or leg_bid is None else bid + (r * leg_bid if buy else -r * leg_bid)
        )
        ask = (
            None if ask is None or leg_ask is None else ask + (r * leg_ask if buy else -r * leg_ask)
        )
    return bid, ask


async def record_quote(
    session: AsyncSession,
    request: DealerRequest,
    legs: Sequence[RfqLeg],
    quote: DealerQuoteIn,
    *,
    now: datetime,
    settings: DealerSettings,
    raw: dict[str, Any] | None = None,
    client_quoted: bool = False,
    flush: bool = True,
) -> DealerQuote:
    """Validate a quote and store it: live (replacing the dealer's previous one) or refused.

    ``client_quoted``: the desk has already quoted the client on this request's quotes; a new
    one would change the cover under that quote, so it is refused (the live one stays firm).
    ``flush=False`` leaves the row to the caller's next flush (several quotes in one)."""
    row = DealerQuote(
        dealer_request_id=request.id,
        rfq_id=request.rfq_id,
        dealer_id=request.dealer_id,
        received_at=now,
        size=quote.size,
        firm=quote.firm,
        legs=None,
        raw=raw,
    )
    try:
        bid, ask = package_prices(quote, legs)
        row.bid_coin, row.ask_coin = bid, ask
        if request.deadline_at is not None and now > request.deadline_at:
            raise QuoteRefused("deadline passed")
        if request.outcome not in OPEN_OUTCOMES:
            raise QuoteRefused(f"the request is closed ({request.outcome})")
        if client_quoted:
            raise QuoteRefused("the client has been quoted: the quote it rests on is firm")
        if bid is None and ask is None:
            raise QuoteRefused("no package price on either side")
        if bid is not None and ask is not None and bid > ask:
            raise QuoteRefused("package bid above ask")
        if request.theo_coin is not None:
            band = settings.price_band_coin
            for name, price in (("bid", bid), ("ask", ask)):
                if price is not None and abs(price - request.theo_coin) > band:
                    raise QuoteRefused(
                        f"{name} {price} is more than {band} from theo {request.theo_coin:.4f}"
                    )
        if not quote.firm:
            raise QuoteRefused("indicative quotes are logged but not tradeable")
    except QuoteRefused as exc:
        row.status, row.refusal_reason = "refused", str(exc)
        session.add(row)
        if flush:
            await session.flush()
        return row
    if request.outcome != "pending":
        # a request still pending has had no live quote (the first one makes it "quoted")
        await session.execute(
            update(DealerQuote)
            .where(DealerQuote.dealer_request_id == request.id, DealerQuote.status == "live")
            .values(status="replaced")
            .execution_options(synchronize_session=False)
        )
    row.status = "live"
    session.add(row)
    if request.outcome == "pending":
        request.outcome = "quoted"
        request.first_quote_at = now
    if flush:
        await session.flush()
    return row


async def withdraw(session: AsyncSession, request: DealerRequest, now: datetime) -> int:
    if request.deadline_at is not None and now > request.deadline_at:
        raise QuoteRefused("deadline passed: quotes are firm until the RFQ closes")
    result = await session.execute(
        update(DealerQuote)
        .where(DealerQuote.dealer_request_id == request.id, DealerQuote.status == "live")
        .values(status="withdrawn")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def live_quotes(session: AsyncSession, rfq_id: uuid.UUID) -> list[DealerQuote]:
    rows = await session.scalars(
        select(DealerQuote)
        .where(DealerQuote.rfq_id == rfq_id, DealerQuote.status == "live")
        .order_by(DealerQuote.received_at)
    )
    return list(rows.all())


def cover_price(
    quotes: Sequence[DealerQuote], quantity: Decimal, desk_buys: bool
) -> tuple[Decimal | None, Decimal]:
    """The worst price the desk pays (or gets) to cover ``quantity`` from the dealer quotes,
    best price first then earliest; and how much they cover in all."""
    side = [(q.ask_coin if desk_buys else q.bid_coin, q) for q in quotes]
    book = sorted(
        ((p, q) for p, q in side if p is not None),
        key=lambda pq: ((pq[0] if desk_buys else -pq[0]), pq[1].received_at),
    )
    left, worst = quantity, None
    covered = Decimal(0)
    for price, q in book:
        if left <= 0:
            break
        take = min(left, q.size or Decimal(0))
        left -= take
        covered += take
        worst = price
    return (worst if left <= 0 else None), covered
