"""Label sets of the intent model: the message intents (an API contract) and the span tags.

The token head tags spans with BIO labels over :class:`Tag`. The tags are chosen so that the
deterministic normaliser (:mod:`ml.intent.normalise`) can assemble the canonical parse output
from the spans alone: every value the output needs is either the text of a span (numbers,
dates) or implied by which tag the model chose (structure family, option type, side).
"""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    """What a chat message asks for; the ``intent`` field of the canonical parse output."""

    RFQ = "rfq"
    ACCEPT = "accept"
    DECLINE = "decline"
    OTHER = "other"


class Tag(StrEnum):
    """Span types the token head recognises."""

    UNDERLYING = "UND"
    """The coin: "BTC", "eth", "bitcoin"."""
    QUANTITY = "QTY"
    """Number of structure units: "250", "250x", "x250", "1.5k"."""
    EXPIRY = "EXP"
    """One expiry: "Dec", "25DEC26", "2026-12-25", "weekly", "Mar27"."""
    STRIKE = "STK"
    """One strike: "70k", "70", "3.5k", "65000", "3,080"."""
    CALL = "CALL"
    """Option type call: "calls", "c", the "C" of "65000-C"."""
    PUT = "PUT"
    """Option type put: "puts", "p"."""
    HEDGE = "HEDGE"
    """Delta-hedge reference price: the number of "vs 64.5k", "ref 3,080"."""
    RATIO = "RATIO"
    """A ratio spread marker: "1x2", "1x3", "1:2", or the word "ratio"."""
    SPREAD = "SPREAD"
    """A vertical spread whose option type is stated apart: the "spread" of "call spread"."""
    CALL_SPREAD = "CS"
    """A call spread in one word: "CS", "c/s"."""
    PUT_SPREAD = "PS"
    """A put spread in one word: "PS", "p/s"."""
    STRADDLE = "STRADDLE"
    STRANGLE = "STRANGLE"
    RISK_REVERSAL = "RR"
    BUTTERFLY = "FLY"
    CONDOR = "CONDOR"
    CALENDAR = "CALENDAR"
    BUY = "BUY"
    """The client buys: "offer?", "we're buyers", "lift", "mine", "at your offer"."""
    SELL = "SELL"
    """The client sells: "bid?", "client sells", "hit", "yours", "at your bid"."""
    TWO_WAY = "TWO_WAY"
    """The client wants both sides: "2-way", "px", "market", "price"."""
    LEG_BUY = "LEG_BUY"
    """A bought leg of a custom structure: the "buy" of "buy Dec 70k calls and sell …"."""
    LEG_SELL = "LEG_SELL"
    """A sold leg of a custom structure."""


OUTSIDE = "O"

BIO_LABELS: tuple[str, ...] = (OUTSIDE, *(f"{p}-{t.value}" for t in Tag for p in ("B", "I")))
"""Token labels, in the order of the token head's outputs."""

INTENTS: tuple[Intent, ...] = tuple(Intent)
"""Intents, in the order of the sequence head's outputs."""


def split_label(label: str) -> tuple[str, Tag | None]:
    """Split a BIO label into its prefix (``"B"``, ``"I"`` or ``"O"``) and its tag."""
    if label == OUTSIDE:
        return OUTSIDE, None
    prefix, _, tag = label.partition("-")
    return prefix, Tag(tag)
