"""The RFQ as its readers see it: legs, history, quotes, dealer activity."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.dealers.wire import DealerQuoteRead, DealerRequestRead
from app.models import ClientQuote, DealerQuote, DealerRequest, Rfq
from app.rfq.repository import RfqRepository
from app.rfq.schemas import ClientQuoteRead, RfqRead
from app.rfq.service import RfqService


def rfq_view(
    rfq: Rfq,
    quotes: Sequence[ClientQuote],
    requests: Sequence[DealerRequest] = (),
    dealer_quotes: Sequence[DealerQuote] = (),
) -> RfqRead:
    out = RfqRead.model_validate(rfq)
    now = utcnow()
    out.quotes = [_as_of(ClientQuoteRead.model_validate(q), now) for q in quotes]
    out.dealer_requests = [DealerRequestRead.model_validate(r) for r in requests]
    out.dealer_quotes = [DealerQuoteRead.model_validate(q) for q in dealer_quotes]
    return out


def _as_of(quote: ClientQuoteRead, now: datetime) -> ClientQuoteRead:
    """A live quote past its ``valid_until`` is shown expired (accepting it is refused); the
    row keeps ``live`` until the RFQ ends, when its final state marks it."""
    if quote.status == "live" and quote.valid_until <= now:
        quote.status = "expired"
    return quote


async def read_rfq(service: RfqService, session: AsyncSession, rfq_id: uuid.UUID) -> RfqRead:
    rfq, quotes = await service.get(session, rfq_id)
    requests, dealer_quotes = await RfqRepository(session).dealer_activity(rfq_id)
    return rfq_view(rfq, quotes, requests, dealer_quotes)
