"""Messages exchanged with dealers (JSON over signed HTTP)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas import Num

Price = Decimal  # coin per structure unit (negative for credit packages)


class WireLeg(BaseModel):
    instrument: str
    ratio: int
    direction: Literal["buy", "sell"]


class QuoteRequestMessage(BaseModel):
    """What a dealer receives: the package, the size, the deadline, where to answer."""

    type: Literal["quote_request"] = "quote_request"
    request_id: uuid.UUID
    rfq_id: uuid.UUID
    underlying: str
    structure: str
    legs: list[WireLeg]
    quantity: Num
    side: Literal["buy", "sell", "two_way"] = Field(
        description="The client's side when disclosed; two_way when the desk hides it"
    )
    hedge_reference: Num | None
    deadline: datetime
    quote_url: str


class LegQuote(BaseModel):
    """One leg's prices (coin per unit of the option), within the package prices' limits: the
    package price computed from them is stored even when the quote is refused."""

    model_config = ConfigDict(extra="forbid")
    instrument: str = Field(max_length=64)
    bid: Decimal | None = Field(None, allow_inf_nan=False, max_digits=24, decimal_places=10)
    ask: Decimal | None = Field(None, allow_inf_nan=False, max_digits=24, decimal_places=10)


class DealerQuoteIn(BaseModel):
    """A dealer's answer: package bid/ask (coin per structure unit) or per-leg prices."""

    model_config = ConfigDict(extra="forbid")
    bid: Decimal | None = Field(None, allow_inf_nan=False, max_digits=24, decimal_places=10)
    ask: Decimal | None = Field(None, allow_inf_nan=False, max_digits=24, decimal_places=10)
    legs: list[LegQuote] | None = Field(None, max_length=20)
    size: Decimal = Field(gt=0, allow_inf_nan=False, max_digits=24, decimal_places=8)
    firm: bool = True

    @model_validator(mode="after")
    def _has_price(self) -> DealerQuoteIn:
        if self.legs is None and self.bid is None and self.ask is None:
            raise ValueError("a quote needs bid and/or ask, for the package or per leg")
        if self.legs is not None and (self.bid is not None or self.ask is not None):
            raise ValueError("give package bid/ask or per-leg prices, not both")
        # a crossed quote is a quote: logged as refused with its reason (app.dealers.quotes)
        return self


class DealerAnswer(BaseModel):
    """The body a dealer may return synchronously: a quote, a decline, or nothing (202)."""

    model_config = ConfigDict(extra="ignore")
    decline: bool = False
    quote: DealerQuoteIn | None = None


class OutcomeMessage(BaseModel):
    type: Literal["outcome"] = "outcome"
    request_id: uuid.UUID
    rfq_id: uuid.UUID
    result: Literal["won", "lost", "cancelled"]
    fill_quantity: Num | None = None
    fill_price: Num | None = None
    cover_price: Num | None = Field(None, description="The winning price, when the desk shares it")


class DealerQuoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    dealer_request_id: uuid.UUID
    received_at: datetime
    bid_coin: Num | None
    ask_coin: Num | None
    size: Num | None
    firm: bool
    status: str
    refusal_reason: str | None


#: the outcome of a request the dealer selection did not send
SKIPPED = "skipped"
#: what became of a quote request that was sent (a request the selection skipped never is)
SentOutcome = Literal["pending", "quoted", "declined", "error", "no_response", "won", "lost"]


class QuoteRequestView(BaseModel):
    """A quote request as its dealer sees it: what it was asked, by when, and what became of
    it. The desk's selection (rank, its fill-model scores and reasons, the dealers it skipped)
    stays with the desk: it is what the selection keeps from leaking."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    rfq_id: uuid.UUID
    dealer_id: uuid.UUID
    sent_at: datetime | None
    deadline_at: datetime | None
    outcome: str
    fill_quantity: Num | None


class DealerRequestRead(BaseModel):
    """A quote request as the desk sees it (the RFQ's view): with the selection's reasons."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    rfq_id: uuid.UUID
    dealer_id: uuid.UUID
    rank: int | None
    selected: bool
    p_answer: float | None
    p_win: float | None
    sent_at: datetime | None
    deadline_at: datetime | None
    outcome: str
    error: str | None
    fill_quantity: Num | None
