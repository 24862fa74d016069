from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from app.schemas import ReadModel, StrictInput

Underlyings = list[str]


def _upper(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    out = sorted({v.strip().upper() for v in values})
    if any(not v.isalpha() or not 2 <= len(v) <= 10 for v in out):
        raise ValueError("underlyings are coin codes such as BTC")
    return out


class DealerCreate(StrictInput):
    name: str = Field(min_length=1, max_length=120)
    endpoint_url: AnyHttpUrl = Field(description="Where quote requests are POSTed")
    underlyings: Underlyings = Field(min_length=1, max_length=20, examples=[["BTC", "ETH"]])
    enabled: bool = True
    webhook_secret: SecretStr = Field(
        min_length=16, max_length=200, description="Shared HMAC secret; write-only"
    )

    _norm = field_validator("underlyings")(classmethod(lambda cls, v: _upper(v)))


class DealerUpdate(StrictInput):
    endpoint_url: AnyHttpUrl | None = None
    underlyings: Underlyings | None = Field(None, min_length=1, max_length=20)
    enabled: bool | None = None
    webhook_secret: SecretStr | None = Field(None, min_length=16, max_length=200)

    _norm = field_validator("underlyings")(classmethod(lambda cls, v: _upper(v)))


class DealerRead(ReadModel):
    id: uuid.UUID
    name: str
    endpoint_url: str
    underlyings: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
