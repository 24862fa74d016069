"""Enumerations of the RFQ domain: option types, leg directions, client sides, structures."""

from __future__ import annotations

from enum import StrEnum


class OptionType(StrEnum):
    """Call or put."""

    CALL = "call"
    PUT = "put"


class Direction(StrEnum):
    """Direction of one leg, as seen by the buyer of the structure."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """``+1`` for a bought leg, ``-1`` for a sold one."""
        return 1 if self is Direction.BUY else -1

    @property
    def opposite(self) -> Direction:
        """The other direction."""
        return Direction.SELL if self is Direction.BUY else Direction.BUY


class Side(StrEnum):
    """What the client wants to do with the structure: buy it, sell it, or see both prices."""

    BUY = "buy"
    SELL = "sell"
    TWO_WAY = "two_way"


class Structure(StrEnum):
    """Option structures the desk quotes; see ``app.domain.structures`` for their legs."""

    CALL = "call"
    PUT = "put"
    CALL_SPREAD = "call_spread"
    PUT_SPREAD = "put_spread"
    STRADDLE = "straddle"
    STRANGLE = "strangle"
    RISK_REVERSAL = "risk_reversal"
    CALL_BUTTERFLY = "call_butterfly"
    PUT_BUTTERFLY = "put_butterfly"
    CALL_CONDOR = "call_condor"
    CALL_CALENDAR = "call_calendar"
    PUT_CALENDAR = "put_calendar"
    CALL_RATIO = "call_ratio"
    PUT_RATIO = "put_ratio"
    CUSTOM = "custom"
