"""Request and response bodies of the RFQ API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from app.dealers.wire import DealerQuoteRead, DealerRequestRead
from app.domain.enums import Direction, OptionType, Side, Structure
from app.rfq.lifecycle import RfqState
from app.schemas import Num, ReadModel, StrictInput

PositiveDecimal = Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=8)]


class LegCreate(StrictInput):
    instrument: str = Field(
        min_length=5,
        max_length=64,
        examples=["BTC-25DEC26-70000-C"],
        description="Venue instrument name UNDERLYING-DMMMYY-STRIKE-C|P",
    )
    ratio: int = Field(1, ge=1, le=100)
    direction: Direction = Field(description="Direction of this leg for the structure's buyer")


class RfqCreate(StrictInput):
    """A block RFQ, either from a structure template or as explicit legs."""

    underlying: str = Field(min_length=2, max_length=10, pattern=r"^[A-Za-z]+$", examples=["BTC"])
    side: Side = Field(description="What the client does: buy, sell, or two_way (both prices)")
    quantity: PositiveDecimal = Field(
        description="Number of structure units (contracts per ratio 1)"
    )
    structure: Structure | None = Field(None, description="Template; omit when giving legs")
    strikes: list[PositiveDecimal] | None = Field(None, min_length=1, max_length=4)
    expiries: list[date] | None = Field(None, min_length=1, max_length=2)
    ratio: int | None = Field(None, ge=2, le=10, description="N of a 1xN call_ratio / put_ratio")
    legs: list[LegCreate] | None = Field(None, min_length=1, max_length=64)
    hedge_reference: PositiveDecimal | None = Field(
        None, description="Price at which the package's delta is exchanged; null for live"
    )
    client: str | None = Field(None, max_length=120)
    expires_in_ms: int | None = Field(None, ge=1000, le=3_600_000)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        template = self.strikes is not None or self.expiries is not None or self.ratio is not None
        if self.legs is not None and template:
            raise ValueError("give either legs, or structure with strikes and expiries, not both")
        if self.legs is None:
            missing = [n for n in ("structure", "strikes", "expiries") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"template form needs {', '.join(missing)} (or give legs)")
        return self

    model_config = StrictInput.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "underlying": "BTC",
                    "structure": "call_spread",
                    "strikes": [70000, 80000],
                    "expiries": ["2026-12-25"],
                    "side": "buy",
                    "quantity": 250,
                    "hedge_reference": 64500,
                },
                {
                    "underlying": "ETH",
                    "side": "sell",
                    "quantity": 500,
                    "legs": [
                        {"instrument": "ETH-25DEC26-3000-P", "ratio": 1, "direction": "buy"},
                        {"instrument": "ETH-25DEC26-4000-C", "ratio": 1, "direction": "sell"},
                    ],
                },
            ]
        }
    }


class LegRead(ReadModel):
    instrument: str
    expiry: date
    strike: Num
    option_type: OptionType
    ratio: int
    direction: Direction


class EventRead(ReadModel):
    at: datetime
    from_state: RfqState | None
    to_state: RfqState
    reason: str | None
    actor: str | None


class ClientQuoteRead(ReadModel):
    id: uuid.UUID
    created_at: datetime
    valid_until: datetime
    status: str
    theo_usd: Num
    theo_coin: Num
    bid_coin: Num | None
    ask_coin: Num | None
    bid_usd: Num | None
    ask_usd: Num | None
    p_hit_bid: float | None
    p_hit_ask: float | None
    model_version: str | None
    snapshot_id: uuid.UUID | None
    greeks: dict[str, Any]
    explanation: dict[str, Any]


class RfqSummary(ReadModel):
    id: uuid.UUID
    state: RfqState
    created_at: datetime
    expires_at: datetime
    underlying: str
    structure: Structure
    side: Side
    quantity: Num
    hedge_reference: Num | None
    client: str | None
    channel: str
    state_reason: str | None
    accepted_side: Side | None = None
    filled_quantity: Num | None


class RfqRead(RfqSummary):
    legs: list[LegRead]
    events: list[EventRead]
    quotes: list[ClientQuoteRead] = Field(default_factory=list)
    dealer_requests: list[DealerRequestRead] = Field(default_factory=list)
    dealer_quotes: list[DealerQuoteRead] = Field(default_factory=list)
    residual_quantity: Num | None = None


class RfqPage(ReadModel):
    items: list[RfqSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null at the end"
    )


class AcceptBody(StrictInput):
    side: Side = Field(
        description="The client's side: buy (lifts the offer) or sell (hits the bid)"
    )
    quantity: PositiveDecimal | None = Field(None, description="Defaults to the whole RFQ quantity")


class ReasonBody(StrictInput):
    reason: str | None = Field(None, max_length=500)
