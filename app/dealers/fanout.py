"""Asking dealers: choose who, send signed quote requests concurrently, collect what comes back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import Cache
from app.config import DealerSettings, MlSettings
from app.dealers.answers import AnswerWatch
from app.dealers.client import CallResult, DealerClient
from app.dealers.quotes import record_quote
from app.dealers.selection import Candidate, Selection, SelectionParams, choose_dealers
from app.dealers.wire import SKIPPED, QuoteRequestMessage, WireLeg
from app.metrics import DEALER_OUTCOMES, STAGE_LATENCY
from app.models import Dealer, DealerRequest, Rfq
from app.models._mixins import new_id
from app.staging import stage
from ml.features import rfq_context

if TYPE_CHECKING:
    from app.models_serving import TradingModels

log = structlog.get_logger(__name__)


def _prob(p: float | None) -> float | None:
    return None if p is None or p != p else float(p)  # NaN: no model


@dataclass(frozen=True)
class PlannedRequest:
    request_id: uuid.UUID
    dealer_id: uuid.UUID
    dealer_name: str
    url: str
    secret: str
    message: dict[str, Any]


class DealerFanout:
    def __init__(
        self,
        settings: DealerSettings,
        client: DealerClient,
        cache: Cache,
        models: TradingModels | None = None,
        ml: MlSettings | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.answers = AnswerWatch(cache)
        self.models = models
        self._dealers: tuple[float, list[Dealer]] | None = None
        self.selection = SelectionParams(
            leak_cost=ml.leak_cost if ml else 0.04,
            min_dealers=ml.min_dealers if ml else 1,
            max_dealers=min(ml.max_dealers if ml else settings.max_dealers, settings.max_dealers),
        )

    def rank(
        self, rfq: Rfq, dealers: list[Dealer], greeks: dict[str, Any], spot: float
    ) -> Selection:
        """Rank the dealers by predicted fill (the fill model) and choose how many to ask:
        each extra dealer must add more expected fill than its information-leakage cost.
        Without a model every eligible dealer is asked, in name order."""
        candidates = [
            Candidate(
                str(d.id),
                d.name,
                eligible=not self.client.breakers.is_open(d.id),
                reason=None
                if not self.client.breakers.is_open(d.id)
                else "circuit open after repeated failures",
            )
            for d in dealers
        ]
        if self.models is None:
            n = sum(c.eligible for c in candidates)
            flat = np.ones(n)  # no model: equal odds, so the name order stands
            return choose_dealers(
                candidates,
                lambda _k: (flat, flat),
                self.selection,
                k=min(n, self.selection.max_dealers),
            )
        started = time.perf_counter()
        ctx = rfq_context(
            at=rfq.created_at,
            underlying=rfq.underlying,
            structure=rfq.structure,
            side=rfq.side,
            quantity=float(rfq.quantity),
            client=rfq.client,
            hedge_reference=float(rfq.hedge_reference) if rfq.hedge_reference else None,
            legs=rfq.legs,
            greeks=greeks,
            spot=spot,
        )
        fill = self.models.fill.model
        names = [c.name for c in candidates if c.eligible]
        selection = choose_dealers(
            candidates,
            fill.predictor(ctx, names, self.models.store),
            self.selection,
            model_version=f"fill/{self.models.fill.version}",
        )
        STAGE_LATENCY.labels("rank").observe(time.perf_counter() - started)
        return selection

    async def _enabled_dealers(self, session: AsyncSession) -> list[Dealer]:
        """Enabled dealers, cached for ``dealer_cache_s`` (the registry changes rarely; a
        dealer switched off stops being asked within that time)."""
        now = time.monotonic()
        if self._dealers is None or now - self._dealers[0] > self.settings.dealer_cache_s:
            rows = await session.scalars(
                select(Dealer).where(Dealer.enabled.is_(True)).order_by(Dealer.name)
            )
            dealers = list(rows.all())
            for d in dealers:
                session.expunge(d)  # detached copies: read-only outside this session
            self._dealers = (now, dealers)
        return self._dealers[1]

    async def plan(
        self,
        session: AsyncSession,
        rfq: Rfq,
        theo_coin: float,
        now: datetime,
        greeks: dict[str, Any] | None = None,
        spot: float = 0.0,
    ) -> tuple[list[PlannedRequest], Selection | None]:
        """Log a request per dealer considered (those not asked too, with why) and return
        the ones to send with the ranking."""
        dealers = [
            d for d in await self._enabled_dealers(session) if rfq.underlying in d.underlyings
        ]
        if not dealers:
            return [], None
        selection = self.rank(rfq, list(dealers), greeks or {}, spot)
        by_id = {str(d.id): d for d in dealers}
        deadline = now + timedelta(milliseconds=self.settings.deadline_ms)
        side = rfq.side if self.settings.side_disclosure == "disclosed" else "two_way"
        planned = []
        for ranked in selection.dealers:
            dealer = by_id[ranked.dealer_id]
            req = DealerRequest(
                id=new_id(),
                rfq_id=rfq.id,
                dealer_id=dealer.id,
                created_at=now,
                rank=ranked.rank,
                selected=ranked.selected,
                disclosed_side=side,
                theo_coin=Decimal(f"{theo_coin:.8f}"),
                p_answer=_prob(ranked.p_answer) if selection.model_version else None,
                p_win=_prob(ranked.p_win) if selection.model_version else None,
                model_version=selection.model_version or None,
            )
            if not ranked.selected:
                req.outcome, req.error = SKIPPED, ranked.reason
                stage(session, req)
                continue
            req.sent_at, req.deadline_at = now, deadline
            stage(session, req)
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
        return planned, selection

    async def fan_out(
        self, rfq_id: uuid.UUID, planned: list[PlannedRequest], deadline: datetime
    ) -> dict[uuid.UUID, CallResult]:
        """Send every request at once; wait for asynchronous answers until the deadline."""
        if not planned:
            return {}
        started = time.perf_counter()
        async with self.answers.watching(rfq_id) as watch:
            # after the watch is set up (the first one may wait for the subscription); none
            # left: the requests are not sent (DealerClient.send)
            timeout_s = max(0.0, (deadline - datetime.now(deadline.tzinfo)).total_seconds())
            calls = [
                self.client.send(p.dealer_id, p.url, p.secret, p.message, timeout_s)
                for p in planned
            ]
            results = dict(
                zip([p.request_id for p in planned], await asyncio.gather(*calls), strict=True)
            )
            pending = {str(rid) for rid, r in results.items() if r.status == "pending"}
            while pending - watch.answered:
                left = (deadline - datetime.now(deadline.tzinfo)).total_seconds()
                if left <= 0:
                    break
                watch.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.changed.wait(), left)
        STAGE_LATENCY.labels("fanout").observe(time.perf_counter() - started)
        return results

    async def close(self) -> None:
        await self.answers.close()

    async def collect(
        self, session: AsyncSession, rfq: Rfq, results: dict[uuid.UUID, CallResult], now: datetime
    ) -> list[DealerRequest]:
        """Record every synchronous answer, and close requests that never answered; returns
        the RFQ's requests (locked, by rank), as written."""
        requests = (
            await session.scalars(
                select(DealerRequest)
                .where(DealerRequest.rfq_id == rfq.id)
                .order_by(DealerRequest.rank)
                .with_for_update()
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
                    flush=False,  # all of them in the flush below
                )
            elif req.outcome != "pending":
                # decided meanwhile (a quote posted back, which stands and may cover the client
                # quote, or closed with the RFQ): a failed or declining reply does not undo it
                pass
            elif result.status == "not_sent":  # the desk was late: the dealer was never asked
                req.outcome, req.error, req.sent_at = SKIPPED, result.error, None
            elif result.status == "declined":
                req.outcome = "declined"
            elif result.status == "error":
                req.outcome, req.error = "error", result.error
            if req.outcome == "pending":  # timed out, or promised an answer that never came
                req.outcome = "no_response"
                req.error = result.error or "no quote by the deadline"
            DEALER_OUTCOMES.labels(req.outcome).inc()
        if self.models is not None:
            names = await self._names(session, {r.dealer_id for r in requests})
            for req in requests:
                if req.id in results and results[req.id].status != "not_sent":
                    answered = req.outcome == "quoted"
                    latency = results[req.id].latency_ms / 1000 if answered else None
                    self.models.store.observe_dealer_response(
                        names[req.dealer_id], rfq.underlying, rfq.structure, now, answered, latency
                    )
        await session.flush()
        return list(requests)

    async def _names(self, session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Dealer names by id: from the registry cache, the database for any not in it."""
        cached = {d.id: d.name for d in (self._dealers[1] if self._dealers else ())}
        names = {i: cached[i] for i in ids if i in cached}
        if missing := ids - names.keys():
            query = select(Dealer.id, Dealer.name).where(Dealer.id.in_(missing))
            names.update((await session.execute(query)).tuples().all())
        return names
