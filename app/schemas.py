"""Shared pydantic building blocks for the API schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, field_validator


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


#: a decimal that travels as a JSON number (not a string) in responses
Num = Annotated[Decimal, PlainSerializer(_num, return_type=int | float, when_used="json")]


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class StrictInput(BaseModel):
    """Request bodies: unknown fields refused, text trimmed, NUL characters refused (no
    database stores them faithfully)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value
