"""Shared pydantic building blocks for the API schemas."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


#: a decimal that travels as a JSON number (not a string) in responses
Num = Annotated[Decimal, PlainSerializer(_num, return_type=int | float, when_used="json")]


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
