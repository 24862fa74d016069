"""The RFQ's outcome for dealers: fills from the best quotes, then won/lost notifications."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import DealerSettings
from app.dealers.client import DealerClient
from app.dealers.quotes import live_quotes
from app.dealers.wire import OutcomeMessage
from app.domain.enums import Side
from app.events import after_commit
from app.models import ClientQuote, Dealer, DealerRequest, Fill, Rfq
from app.pricing.desk import DeskRiskRepository
from app.pricing.fills import desk_risk_change

if TYPE_CHECKING:
    from app.models_serving import TradingModels

log = structlog.get_logger(__name__)


class DealerFiller:
    """Fills an accepted RFQ from dealer quotes (price, then time), within the client's price.

    What dealers do not cover is the residual: under the principal policy the desk fills the
    client anyway and keeps the residual (its risk moves, and the execution plan works it);
    under back-to-back the client is filled only as far as dealers cover.
    """

    def __init__(
        self, settings: DealerSettings, client: DealerClient, models: TradingModels | None = None
    ) -> None:
        self.settings = settings
        self.client = client
        self.models = models

    async def fill(
        self,
        session: AsyncSession,
        rfq: Rfq,
        quote: ClientQuote,
        side: Side,
        quantity: Decimal,
        now: datetime,
    ) -> Decimal:
        desk_sells = side is Side.BUY
        client_price = quote.ask_coin if desk_sells else quote.bid_coin
        client_usd = quote.ask_usd if desk_sells else quote.bid_usd
        if client_price is None or client_usd is None:
            raise ValueError("no client price on that side")
        spot = float(quote.greeks.get("spot") or 0.0)
        book = [
            q
            for q in await live_quotes(session, rfq.id)
            if (q.ask_coin if desk_sells else q.bid_coin) is not None
        ]
        book.sort(key=lambda q: ((q.ask_coin if desk_sells else -q.bid_coin), q.received_at))  # type: ignore[operator]
        left = quantity
        wins: dict[object, Decimal] = {}
        won_quotes: set[object] = set()
        best_filled: Decimal | None = None  # the best price a dealer traded at: the cover
        for q in book:
            price = q.ask_coin if desk_sells else q.bid_coin
            assert price is not None  # noqa: S101 - filtered above
            within = price <= client_price if desk_sells else price >= client_price
            if left <= 0 or not within:
                continue
            take = min(left, q.size or Decimal(0))
            if take <= 0:
                continue
            left -= take
            q.status = "won"
            won_quotes.add(q.id)
            if best_filled is None:
                best_filled = price
            wins[q.dealer_request_id] = wins.get(q.dealer_request_id, Decimal(0)) + take
            session.add(
                Fill(
                    rfq_id=rfq.id,
                    filled_at=now,
                    counterparty="dealer",
                    dealer_id=q.dealer_id,
                    dealer_quote_id=q.id,
                    side="buy" if desk_sells else "sell",
                    quantity=take,
                    price_coin=price,
                    price_usd=Decimal(f"{float(price) * spot:.8f}"),
                )
            )
        dealer_filled = quantity - left
        client_filled = quantity if self.settings.cover_policy == "principal" else dealer_filled
        residual = client_filled - dealer_filled
        if client_filled > 0:
            session.add(
                Fill(
                    rfq_id=rfq.id,
                    filled_at=now,
                    counterparty="client",
                    side="sell" if desk_sells else "buy",
                    quantity=client_filled,
                    price_coin=client_price,
                    price_usd=client_usd,
                )
            )
        if residual > 0:
            await DeskRiskRepository(session).add(desk_risk_change(quote, rfq, side, residual))
        rfq.residual_quantity = residual
        await self._observe(
            session, rfq, quote, traded=True, wins=wins, desk_sells=desk_sells, now=now
        )
        # losers hear the price that traded; none when no dealer quote was within the client's
        # price (the desk kept it all: there is no dealer trade to report)
        await self._close_requests(session, rfq, wins, best_filled, won_quotes=won_quotes)
        await session.flush()
        log.info(
            "rfq_filled",
            rfq_id=str(rfq.id),
            client=str(client_filled),
            dealers=str(dealer_filled),
            residual=str(residual),
        )
        return client_filled

    async def close(
        self,
        session: AsyncSession,
        rfq: Rfq,
        result: str = "lost",
        quote: ClientQuote | None = None,
    ) -> None:
        """The RFQ ended without trading (passed, cancelled, expired): every quote lost."""
        await self._close_requests(session, rfq, {}, None, result=result)
        if quote is not None and result == "lost":
            await self._observe(
                session, rfq, quote, traded=False, wins={}, desk_sells=True, now=datetime.now(UTC)
            )

    async def _observe(
        self,
        session: AsyncSession,
        rfq: Rfq,
        quote: ClientQuote,
        *,
        traded: bool,
        wins: dict[object, Decimal],
        desk_sells: bool,
        now: datetime,
    ) -> None:
        """Feed the outcome to the trailing statistics the models read (after commit)."""
        if self.models is None:
            return
        store = self.models.store
        markups = [
            side["markup_vol_points"]
            for side in (quote.explanation.get("bid"), quote.explanation.get("ask"))
            if side
        ]
        markup = sum(markups) / len(markups) if markups else 0.0
        vega_unit = float(quote.greeks.get("vega_usd_per_vol_point", 0.0)) / float(rfq.quantity)
        client, underlying = rfq.client or "", rfq.underlying
        rows = (
            []
            if not traded
            else (
                await session.execute(
                    select(DealerRequest.id, Dealer.name)
                    .join(Dealer, Dealer.id == DealerRequest.dealer_id)
                    .where(DealerRequest.rfq_id == rfq.id, DealerRequest.selected.is_(True))
                )
            ).all()
        )

        async def _update() -> None:
            store.observe_client_result(client, now, traded, markup)
            for req_id, name in rows:
                store.observe_dealer_result(name, now, req_id in wins)
                # the quantities filled in this transaction (not yet in the database)
                if qty := wins.get(req_id):
                    sign = -1.0 if desk_sells else 1.0  # the dealer sold (bought) the package
                    store.observe_dealer_fill(name, underlying, now, sign * vega_unit * float(qty))

        after_commit(session, _update)

    async def _close_requests(
        self,
        session: AsyncSession,
        rfq: Rfq,
        wins: dict[object, Decimal],
        cover: Decimal | None,
        result: str = "lost",
        won_quotes: set[object] | None = None,
    ) -> None:
        """Every quote still live and not filled is lost; each request that quoted hears
        whether it won (with its quantity) or lost (with the cover, if shared)."""
        rows = (
            await session.execute(
                select(DealerRequest, Dealer)
                .join(Dealer, Dealer.id == DealerRequest.dealer_id)
                .where(DealerRequest.rfq_id == rfq.id)
            )
        ).all()
        for q in await live_quotes(session, rfq.id):
            if q.id not in (won_quotes or ()):  # still "live" in the database until the flush
                q.status = "lost"
        messages = []
        for req, dealer in rows:
            if req.id in wins:
                req.outcome, req.fill_quantity = "won", wins[req.id]
                msg = OutcomeMessage(
                    request_id=req.id, rfq_id=rfq.id, result="won", fill_quantity=wins[req.id]
                )
            elif req.outcome == "quoted":
                req.outcome = "lost"
                share = cover if self.settings.notify_lost_with_cover else None
                msg = OutcomeMessage(
                    request_id=req.id,
                    rfq_id=rfq.id,
                    result="lost" if result == "lost" else "cancelled",
                    cover_price=share,
                )
            else:
                continue
            messages.append(
                (dealer.endpoint_url, dealer.webhook_secret, msg.model_dump(mode="json"))
            )

        self._notify_after_commit(session, messages)

    async def tell_lost(self, session: AsyncSession, request_ids: list[uuid.UUID]) -> None:
        """Tell the dealers of these requests (they had quoted; the RFQ expired) that they
        lost, once the transaction commits: their quotes were firm until then."""
        rows = (
            await session.execute(
                select(DealerRequest.id, DealerRequest.rfq_id, Dealer)
                .join(Dealer, Dealer.id == DealerRequest.dealer_id)
                .where(DealerRequest.id.in_(request_ids))
            )
        ).all()
        messages = [
            (
                dealer.endpoint_url,
                dealer.webhook_secret,
                OutcomeMessage(request_id=req_id, rfq_id=rfq_id, result="lost").model_dump(
                    mode="json"
                ),
            )
            for req_id, rfq_id, dealer in rows
        ]
        self._notify_after_commit(session, messages)

    def _notify_after_commit(
        self, session: AsyncSession, messages: list[tuple[str, str, dict[str, Any]]]
    ) -> None:
        async def _notify() -> None:
            await asyncio.gather(
                *(
                    self.client.notify(url, secret, body, self.settings.request_timeout_s)
                    for url, secret, body in messages
                )
            )

        if messages:
            after_commit(session, _notify)
