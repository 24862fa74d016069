"""Asking dealers: choose who, send signed quote requests concurrently, collect what comes back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import Cache, CacheUnavailable
from app.config import DealerSettings
from app.dealers.client import CallResult, DealerClient
from app.dealers.quotes import record_quote
from app.dealers.wire import QuoteRequestMessage, WireLeg
from app.metrics import DEALER_OUTCOMES, STAGE_LATENCY
from app.models import Dealer, DealerRequest, Rfq
from app.models._mixins import new_id

log = structlog.get_logger(__name__)


def quotes_channel(rfq_id: uuid.UUID) -> str:
    return f"dealer-quotes:{rfq_id}"


@dataclass(frozen=True)
class PlannedRequest:
    request_id: uuid.UUID
    dealer_id: uuid.UUID
    dealer_name: str
    url: str
    secret: str
    message: dict[str, Any]


class DealerFanout:
    def __init__(self, settings: DealerSettings, client: DealerClient, cache: Cache) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache

    async def plan(
        self, session: AsyncSession, rfq: Rfq, theo_coin: float, now: datetime
    ) -> list[PlannedRequest]:
        """Log a request per eligible dealer (skipped ones too) and return those to send."""
        dealers = (
            await session.scalars(
                select(Dealer).where(Dealer.enabled.is_(True)).order_by(Dealer.name)
            )
        ).all()
        eligible = [d for d in dealers if rfq.underlying in d.underlyings][
            : self.settings.max_dealers
        ]
        deadline = now + timedelta(milliseconds=self.settings.deadline_ms)
        side = rfq.side if self.settings.side_disclosure == "disclosed" else "two_way"
        planned = []
        for rank, dealer in enumerate(eligible, start=1):
            req = DealerRequest(
                id=new_id(),
                rfq_id=rfq.id,
                dealer_id=dealer.id,
                created_at=now,
                rank=rank,
                selected=True,
                disclosed_side=side,
                theo_coin=Decimal(f"{theo_coin:.8f}"),
            )
            if self.client.breakers.is_open(dealer.id):
                req.selected, req.outcome, req.error = (
                    False,
                    "skipped",
                    "circuit open after repeated failures",
                )
                log.warning(
                    "dealer_skipped", dealer=dealer.name, reason=req.error, rfq_id=str(rfq.id)
                )
                session.add(req)
                continue
            req.sent_at, req.deadline_at = now, deadline
            session.add(req)
            msg = QuoteRequestMessage(
                request_id=req.id,
                rfq_id=rfq.id,
                underlying=rfq.underlying,
                structure=rfq.structure,
                legs=[
                    WireLeg(instrument=leg.instrument, ratio=leg.ratio, direction=leg.direction)
                    for leg in rfq.legs
                ],
                quantity=rfq.quantity,
                side=side,
                hedge_reference=rfq.hedge_reference,
                deadline=deadline,
                quote_url=f"/v1/dealer/quote-requests/{req.id}/quotes",
            )
            planned.append(
                PlannedRequest(
                    req.id,
                    dealer.id,
                    dealer.name,
                    dealer.endpoint_url,
                    dealer.webhook_secret,
                    msg.model_dump(mode="json"),
                )
            )
        await session.flush()
        return planned

    async def fan_out(
        self, rfq_id: uuid.UUID, planned: list[PlannedRequest], deadline: datetime
    ) -> dict[uuid.UUID, CallResult]:
        """Send every request at once; wait for asynchronous answers until the deadline."""
        if not planned:
            return {}
        started = time.perf_counter()
        timeout_s = max(0.001, (deadline - datetime.now(deadline.tzinfo)).total_seconds())
        answered: set[str] = set()
        changed = asyncio.Event()
        listener = asyncio.create_task(self._listen(rfq_id, answered, changed))
        try:
            calls = [
                self.client.send(p.dealer_id, p.url, p.secret, p.message, timeout_s)
                for p in planned
            ]
            results = dict(
                zip([p.request_id for p in planned], await asyncio.gather(*calls), strict=True)
            )
            pending = {str(rid) for rid, r in results.items() if r.status == "pending"}
            while pending - answered:
                left = (deadline - datetime.now(deadline.tzinfo)).total_seconds()
                if left <= 0:
                    break
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        STAGE_LATENCY.labels("fanout").observe(time.perf_counter() - started)
        return results

    async def _listen(self, rfq_id: uuid.UUID, answered: set[str], changed: asyncio.Event) -> None:
        try:
            async for message in self.cache.subscribe(quotes_channel(rfq_id)):
                answered.add(message)
                changed.set()
        except CacheUnavailable:
            return  # the deadline still bounds the wait

    async def collect(
        self, session: AsyncSession, rfq: Rfq, results: dict[uuid.UUID, CallResult], now: datetime
    ) -> None:
        """Record every synchronous answer, and close requests that never answered."""
        requests = (
            await session.scalars(
                select(DealerRequest).where(DealerRequest.rfq_id == rfq.id).with_for_update()
            )
        ).all()
        for req in requests:
            result = results.get(req.id)
            if result is None:
                continue
            if result.status == "answered" and result.answer and result.answer.quote:
                await record_quote(
                    session,
                    req,
                    rfq.legs,
                    result.answer.quote,
                    now=result.received_at,
                    settings=self.settings,
                    raw=result.raw,
                )
            elif result.status == "declined":
                req.outcome = "declined"
            elif result.status == "error":
                req.outcome, req.error = "error", result.error
            if req.outcome == "pending":  # timed out, or promised an answer that never came
                req.outcome = "no_response"
                req.error = result.error or "no quote by the deadline"
            DEALER_OUTCOMES.labels(req.outcome).inc()
        await session.flush()
