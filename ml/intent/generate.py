"""Seeded synthetic chat lines for training and evaluating the intent model.

Every line is built from generating parameters (underlying, structure, strikes, expiries, size,
side, hedge) and rendered through a wide choice of trader phrasings: aliases of every
structure, sizes, strikes and expiries written every way, side cues before or after the
instrument, hedges, greetings and chatter, reordered components, noise words, typos and
casing. Each example carries its character spans with their tags, the intent, and the
expected canonical parse output computed from the parameters with :mod:`app.domain` (never
from the rendered text), together with its ``as_of`` date.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app.domain.enums import Direction, OptionType, Side, Structure
from app.domain.expiries import MONTH_CODES, format_expiry_code, last_friday, weekly_expiry
from app.domain.instruments import Instrument
from app.domain.structures import Leg, build_legs, recognise, structure_shape
from ml.intent.labels import Intent, Tag
from ml.intent.normalise import read_expiry, rfq_json

Piece = tuple[str, Tag | None]
Chunk = list[Piece]

_FIRST_AS_OF = date(2026, 1, 1)
_LAST_AS_OF = date(2027, 12, 31)
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class Span:
    """Characters ``[start, end)`` of a line carry ``tag``."""

    start: int
    end: int
    tag: Tag


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled chat line."""

    text: str
    as_of: date
    intent: Intent
    spans: tuple[Span, ...]
    expected: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """JSON object of the example (the dev set's keys, plus intent and spans)."""
        return {
            "text": self.text,
            "as_of": self.as_of.isoformat(),
            "intent": str(self.intent),
            "spans": [[s.start, s.end, str(s.tag)] for s in self.spans],
            "expected": self.expected,
        }


def generate(n: int, seed: int) -> list[Example]:
    """``n`` examples, the same for the same seed."""
    rng = random.Random(seed)
    return [_example(rng) for _ in range(n)]


# ------------------------------------------------------------------------------------------
# Rendering: chunks of pieces, joined into a line with its spans.


def _mark(template: str, tag: Tag | None) -> Chunk:
    """Pieces of a template where ``[...]`` marks the part tagged with ``tag``."""
    pieces: Chunk = []
    for i, part in enumerate(re.split(r"\[(.*?)\]", template)):
        if part:
            pieces.append((part, tag if i % 2 else None))
    return pieces


def _plain(text: str) -> Chunk:
    return [(text, None)] if text else []


def _render(chunks: Sequence[Chunk]) -> tuple[str, tuple[Span, ...]]:
    """Join chunks with single spaces (none before punctuation) and collect the spans."""
    text = ""
    spans: list[Span] = []
    for chunk in chunks:
        if not chunk:
            continue
        first = chunk[0][0]
        if text and not text.endswith((" ", "(", "/")) and not first.startswith(tuple(",.?!;:)")):
            text += " "
        for piece, tag in chunk:
            if tag is not None:
                spans.append(Span(len(text), len(text) + len(piece), tag))
            text += piece
    return text, tuple(spans)


_KEYBOARD_NEIGHBOURS = {
    "a": "sq",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "l": "k",
    "n": "bm",
    "d": "sf",
    "c": "xv",
    "p": "o",
}
_TYPO_TAGS = frozenset(
    {
        Tag.STRADDLE,
        Tag.STRANGLE,
        Tag.BUTTERFLY,
        Tag.CONDOR,
        Tag.CALENDAR,
        Tag.SPREAD,
        Tag.RISK_REVERSAL,
        Tag.BUY,
        Tag.SELL,
        Tag.TWO_WAY,
    }
)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    near = _KEYBOARD_NEIGHBOURS.get(word[i].lower())
    return word[:i] + rng.choice(near) + word[i + 1 :] if near else word


def _noisy(chunks: Sequence[Chunk], rng: random.Random, rate: float) -> list[Chunk]:
    """Typos in filler words and in the words of structure and side cues."""

    def words(text: str, p: float) -> str:
        return re.sub(
            r"[A-Za-z]{4,}", lambda m: _typo(m[0], rng) if rng.random() < p else m[0], text
        )

    return [
        [(words(text, rate) if tag is None or tag in _TYPO_TAGS else text, tag) for text, tag in c]
        for c in chunks
    ]


def _cased(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.25:
        return text.lower()
    if roll < 0.32:
        return text.upper()
    if roll < 0.40:
        return text[:1].upper() + text[1:]
    return text


def _finish(
    rng: random.Random,
    chunks: Sequence[Chunk],
    as_of: date,
    intent: Intent,
    expected: dict[str, Any],
) -> Example:
    text, spans = _render(_noisy(chunks, rng, rate=0.04 if rng.random() < 0.35 else 0.0))
    return Example(_cased(text, rng), as_of, intent, spans, expected)


# ------------------------------------------------------------------------------------------
# Phrase banks. "[...]" marks the words that carry the bank's tag.

_GREETINGS = (
    "gm", "gm,", "hi", "hi,", "hey", "hey team", "morning", "morning all", "hello", "yo",
    "hi there", "good morning", "afternoon", "hey guys", "hi desk", "evening", "hiya", "gm gm",
    "hey,", "ok", "ok so", "right,", "quick one:", "one for you:", "new one:", "hi again",
)  # fmt: skip
_CLOSINGS = (
    "please", "pls", "plz", "thanks", "thx", ", thanks", "cheers", "for a client",
    "for my client", "asap", "when you can", "if possible", "ty", "thx!", "?", "!",
    "in comp", "need it in 5 min", "by 3pm if you can", "- thanks", "lmk", "thanks in advance",
    "for a real client", ", cheers", "please and thanks", "quickly pls", "if you're around",
    "no rush", "firm", "indicative is fine", ":)",
)  # fmt: skip
_LIMITS = (
    "@ {p}", "at {p}", "limit {p}", "@ {v} vol", "at {v}v", "max {p}", "target {p}", "lvl {p}",
    "around {v} vol", "indicative {p}",
)  # fmt: skip
_NOISE = ("pls", "the", "so", "ok", "um", "just", "also", "again", "real", "quick", "size")

_SIDE_PREFIX: dict[Side, tuple[str, ...]] = {
    Side.BUY: (
        "[buy]", "[buying]", "[we buy]", "[i buy]", "[client buys]", "[looking to buy]",
        "[we're looking to buy]", "[we want to buy]", "[want to buy]", "[we'd buy]",
        "[interested in buying]", "[keen to buy]", "[need to buy]", "[client wants to buy]",
        "[we are buyers of]", "[we're buyers of]", "[buyer of]", "[buyers of]",
        "[client is a buyer of]", "[client buyer]", "can i get an [offer] in",
        "can i get an [offer] on", "[offer] on", "[offer] for", "any [offer] for",
        "where's your [offer] on", "what's your [offer] in", "[where would you sell]",
        "[where can i buy]", "[your offer] on", "[pls offer]", "[show me an offer] on",
        "[looking for an offer] on", "[need an offer] on", "[where do you offer]",
        "[what's the offer] on", "[offer side] on", "[we'd like to buy]", "[would buy]",
        "[client looking to buy]", "[have a buyer of]", "[got a buyer in]", "[ask] for",
        "[what's your ask] on", "[we're a buyer of]", "[lifting]", "[paying up for]",
        "[we'll buy]", "[bidding for]", "[client would buy]", "[rfq to buy]",
        "[what's your offer for]", "[client needs to buy]", "[where would you offer]",
        "[we bid]", "[i bid]", "[we're bidding]", "[we'd bid]", "[client bids]",
        "[we bid for]", "[happy to bid]",
    ),
    Side.SELL: (
        "[sell]", "[selling]", "[we sell]", "[i sell]", "[client sells]", "[looking to sell]",
        "[we're looking to sell]", "[we want to sell]", "[want to sell]", "[we'd sell]",
        "[need to sell]", "[client wants to sell]", "[we are sellers of]",
        "[we're sellers of]", "[seller of]", "[sellers of]", "[client is a seller of]",
        "[client seller]", "[bid for]", "[bid on]", "any [bid] for", "can i get a [bid] on",
        "can i get a [bid] in", "[what's your bid] on", "[where's your bid] on",
        "[where would you buy]", "[show me a bid] on", "[looking for a bid] on",
        "[need a bid] on", "[your bid] on", "[where do you bid]", "[what's the bid] on",
        "[bid side] on", "[we'd like to sell]", "[would sell]", "[client looking to sell]",
        "[have a seller of]", "[got a seller in]", "[we're a seller of]", "[we'll sell]",
        "[offering]", "[client would sell]", "[rfq to sell]", "[how much would you pay for]",
        "[what's your bid for]", "[client needs to sell]", "[how much would you bid for]",
        "[we offer]", "[i offer]", "[we'd offer]", "[client offers]", "[we can offer]",
        "[happy to offer]",
    ),
    Side.TWO_WAY: (
        "[2-way] in", "[2 way]", "[2way] on", "[two-way] in", "[two way price] on", "[px] on",
        "[px]", "[price] on", "[price]", "can i get a [price] on", "can i get a [market] in",
        "[need a market] on", "[market] on", "[mkt] in", "[mkt] for", "[levels] on",
        "[where are you] on", "[b/o] on", "[bid/offer] on", "[bid offer] in",
        "[both sides] on", "[make me a market] in", "[quote] me", "[pls quote]",
        "[show me a 2-way] in", "[what's the market] on", "[can you price]", "[pricing] on",
        "[can you make a market] in", "[could i get a 2-way] on", "[where's the market] in",
        "[need 2 way] on", "[2-way pls] on", "[how are you making]", "[what's your market] in",
        "[can you show a price] on", "[tight 2-way] in", "[ur px] on", "[rfq] for",
        "[request for quote] on", "[indication] on", "[price check] on", "[quote please] on",
        "[two sided] on", "[two-sided price] in", "[what's your level] on", "[where do you see]",
        "[your levels] on", "[show me your market] in", "[bid and offer] on",
    ),
}  # fmt: skip
_SIDE_SUFFIX: dict[Side, tuple[str, ...]] = {
    Side.BUY: (
        "[offer]?", "[offer] pls", "[where's your offer]?", "[offer side] only", ", [we buy]",
        ", [client is buyer]", "- [buyer]", "[buyers]", ", [we're buyers]",
        "[where would you sell]?", "[your offer]?", "[ask]?", "[offer] please", ", [we'd buy]",
        "- [client buys]", ", [looking to buy]", "[where can we buy]?", ", [buyer here]",
        "[offer only]", ", [what's your offer]?", "- [we're paying]", "[offer]",
        "[ask]", ", [buyer]",
    ),
    Side.SELL: (
        "[bid]?", "[bid] pls", "[where's your bid]?", "[bid side] only", ", [we sell]",
        ", [client is seller]", "- [seller]", "[sellers]", ", [we're sellers]",
        "[where would you buy]?", "[your bid]?", "[bid] please", ", [we'd sell]",
        "- [client sells]", ", [looking to sell]", "[where can we sell]?", ", [seller here]",
        "[bid only]", ", [what's your bid]?", "- [we're offering]", "[bid]",
        ", [seller]",
    ),
    Side.TWO_WAY: (
        "[2-way]?", "[2way] pls", "[px]?", "[px] pls", "[price]?", "[pls price]", "[mkt]?",
        "[market]?", "[both sides] please", "[b/o]?", "[bid/offer] pls", "[2-way] please",
        "[levels]?", "[where are you]?", "[2 way]", ", [2-way]", "- [px]", "[two-way] pls",
        ", [price] please", "[market] pls", "[2w]?", "[bid and offer]?", ", [your market]?",
        "[quote]?", "[mkt] please", "[price it]", "[px it]", "[show both sides]",
        "[two sided]?", "[levels] pls", "[what's your level]?", "[2-sided] pls", "[2-way]",
        "[px]", "[b/o]",
    ),
}  # fmt: skip

_RR_SIDES: dict[Side, tuple[str, ...]] = {
    Side.BUY: (
        ", [client buys the calls]", "[long the calls]", ", [we buy the call]",
        "- [client buys the upside]", ", [buying the calls]", "[calls for the client]",
    ),
    Side.SELL: (
        ", [client buys the puts]", "[long the puts]", ", [we buy the put]",
        "- [client buys the downside]", ", [buying the puts]", "[puts for the client]",
    ),
}  # fmt: skip
"""Direction of a risk reversal stated by the leg the client buys."""

_UNDERLYING_NAMES = {
    "BTC": ("BTC", "BTC", "BTC", "btc", "Bitcoin", "bitcoin", "XBT", "BTC", "Btc"),
    "ETH": ("ETH", "ETH", "ETH", "eth", "Ether", "ether", "Ethereum", "ETH", "Eth"),
}
_TYPE_WORDS = {
    OptionType.CALL: ("calls", "calls", "call", "c", "C", "Calls", "Call"),
    OptionType.PUT: ("puts", "puts", "put", "p", "P", "Puts", "Put"),
}
_SPREAD_WORDS = ("spread", "spread", "spreads", "sprd", "spd", "vertical", "spread")
_ONE_WORD_SPREAD = {
    OptionType.CALL: ("CS", "cs", "c/s", "C/S", "callspread", "call-spread", "CS"),
    OptionType.PUT: ("PS", "ps", "p/s", "P/S", "putspread", "put-spread", "PS"),
}
_FAMILY_WORDS = {
    Tag.STRADDLE: ("straddle", "straddles", "strad", "strads", "straddle", "stradd", "straddy"),
    Tag.STRANGLE: ("strangle", "strangles", "strang", "strangle", "strangl", "strangs"),
    Tag.RISK_REVERSAL: (
        "RR", "rr", "risk reversal", "risky", "risk-reversal", "risk rev", "riskie", "r/r",
        "RR", "reversal", "risk reversals", "riskies", "RRs",
    ),
    Tag.BUTTERFLY: ("fly", "fly", "butterfly", "flies", "bfly", "b/fly", "butterflies", "fly"),
    Tag.CONDOR: ("condor", "condor", "condors", "condor spread"),
    Tag.CALENDAR: (
        "calendar", "cal", "calendar spread", "cal spread", "calender", "calendars", "cal",
        "time spread", "calendar", "calendar sprd", "horizontal",
    ),
}  # fmt: skip

_HEDGE_PREFIXES = (
    "vs", "vs", "vs", "vs.", "v", "ref", "ref", "ref.", "reference", "delta hedged vs",
    "delta-hedged vs", "hedged vs", "delta vs", "d/h vs", "dh vs", "with delta vs",
    "w/ delta vs", "+ delta vs", "delta neutral vs", "spot ref", "fut ref", "ref spot",
    "against", "vs spot", "hedge vs", "hedge at", "delta at", "with hedge at", "ref:", "vs fut",
    "dn vs", "delta exchange vs", "hedged at",
)  # fmt: skip
_NO_HEDGE = ("live", "live", "outright", "no delta", "unhedged", "naked", "no hedge", "live pls")


def _one(rng: random.Random, options: Sequence[str]) -> str:
    return options[rng.randrange(len(options))]


# ------------------------------------------------------------------------------------------
# Values and how traders write them.


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _strike_text(strike: Decimal, underlying: str, style: str) -> str:
    """A strike written in a style: ``k`` (70k), ``bare`` (70), ``full`` (70000), ``comma``."""
    thousands = _number(strike / 1000)
    if style == "k":
        return f"{thousands}k"
    if style == "K":
        return f"{thousands}K"
    if style == "bare" and strike / 1000 < (1000 if underlying == "BTC" else 100):
        return thousands
    if style == "comma":
        return f"{strike:,f}".rstrip("0").rstrip(".") if strike % 1 else f"{int(strike):,}"
    return _number(strike)


def _strike_style(rng: random.Random, underlying: str) -> str:
    if underlying == "BTC":
        return rng.choices(("k", "bare", "full", "comma", "K"), (40, 30, 18, 7, 5))[0]
    return rng.choices(("k", "bare", "full", "comma", "K"), (20, 12, 55, 10, 3))[0]


def _strike_pieces(
    rng: random.Random, strikes: Sequence[Decimal], underlying: str, style: str | None = None
) -> Chunk:
    """Strikes written together: "70/80", "70k-80k", "2800 / 3200 / 3600"."""
    style = style or _strike_style(rng, underlying)
    joiner = rng.choices(("/", "-", " / ", " ", "/", " and "), (50, 18, 8, 8, 10, 3))[0]
    if len(strikes) > 2 and joiner == " and ":
        joiner = "/"
    if style == "bare" and len(strikes) == 1 and strikes[0] / 1000 <= 31:
        style = "k"  # "Feb 28 C" would read as a date
    texts = [_strike_text(k, underlying, style) for k in strikes]
    if style == "bare" and underlying == "BTC" and len(texts) > 1 and rng.random() < 0.25:
        texts[-1] += "k"
    pieces: Chunk = []
    for i, text in enumerate(texts):
        if i:
            pieces.append((joiner, None))
        pieces.append((text, Tag.STRIKE))
    return pieces


def _quantity_text(q: Decimal, rng: random.Random) -> str:
    if q >= 1000 and q % 100 == 0 and rng.random() < 0.45:
        return f"{_number(q / 1000)}k"
    if q >= 1000 and q % 1 == 0 and rng.random() < 0.3:
        return f"{int(q):,}"
    return _number(q)


def _quantity_chunk(
    rng: random.Random, q: Decimal, underlying: str | None, *, marked: bool = False
) -> Chunk:
    """A size, possibly naming the underlying ("250 btc"); UND-tagged when it does.

    ``marked`` sizes always carry a marker ("x", "lots"), for places where a bare number
    would read as something else ("30 Jan").
    """
    n = _quantity_text(q, rng)
    forms = [
        f"[{n}]", f"[{n}x]", f"[x{n}]", f"x [{n}]", f"[{n}] lots", f"[{n}] contracts",
        f"size [{n}]", f"qty [{n}]", f"for [{n}]", f"in [{n}]", f"[{n}]x", f"[{n}] lot",
        f"[{n}] cts", f"[{n}x]", f"[{n}] units", f"sz [{n}]", f"amount [{n}]", f"[{n}] of them",
    ]  # fmt: skip
    weights = [24, 18, 10, 4, 8, 5, 4, 2, 5, 4, 2, 1, 1, 6, 1, 1, 1, 1]
    if marked:
        forms = [f"[{n}x]", f"[{n}] lots", f"[{n}] contracts", f"[{n}x]", f"[{n}] cts"]
        weights = [4, 2, 2, 1, 1]
    if underlying is not None and not marked and rng.random() < 0.25:
        name = _one(rng, _UNDERLYING_NAMES[underlying])
        return [(n, Tag.QUANTITY), (" ", None), (name, Tag.UNDERLYING)]
    return _mark(rng.choices(forms, weights)[0], Tag.QUANTITY)


def _expiry_forms(d: date, as_of: date) -> list[str]:
    """Ways to write expiry ``d`` on ``as_of`` (some may read ambiguously; checked later)."""
    mon = MONTH_CODES[d.month - 1].title()
    full = _MONTH_NAMES[d.month - 1]
    yy = f"{d.year % 100:02d}"
    day = str(d.day)
    nth = day + (
        "th" if d.day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    )
    forms = [
        format_expiry_code(d), format_expiry_code(d).lower(), f"{day}{mon}{yy}",
        d.isoformat(), f"{day} {mon}", f"{day} {full}", f"{mon} {nth}", f"{day}-{mon}-{yy}",
        f"{day} {mon} {d.year}", f"{mon} {day} {d.year}", f"{nth} {mon}", f"{mon}-{day}",
    ]  # fmt: skip
    if d == last_friday(d.year, d.month):
        forms += [f"{mon}{yy}", f"{mon} {yy}", f"{full} {d.year}", f"{mon} {d.year}", f"{mon}-{yy}"]
        if read_expiry(mon, as_of) == [d]:
            forms += [mon] * 6 + [full, full.lower(), mon.upper()] * 2
    if d == weekly_expiry(as_of):
        forms += ["weekly"] * 6 + ["wkly"] * 2
    return forms


def _expiry_text(rng: random.Random, d: date, as_of: date) -> str:
    """An unambiguous way to write ``d`` as of ``as_of``."""
    forms = _expiry_forms(d, as_of)
    for _ in range(8):
        text = rng.choice(forms)
        if read_expiry(text, as_of) == [d]:
            return text
    return format_expiry_code(d)


def _expiry_chunk(rng: random.Random, text: str) -> Chunk:
    form = rng.choices(
        (
            "[{}]",
            "[{}] expiry",
            "the [{}]",
            "[{}] exp",
            "[{}] monthly",
            "exp [{}]",
            "[{}] expiries",
        ),
        (80, 6, 4, 3, 2, 3, 1),
    )[0]
    if text in ("weekly", "wkly"):
        form = rng.choice(("[{}]", "[{}]", "the [{}]", "this [{}]", "[{}] expiry"))
    return _mark(form.format(text), Tag.EXPIRY)


def _sample_expiry(rng: random.Random, as_of: date) -> date:
    roll = rng.random()
    if roll < 0.6:
        months = rng.choices(range(15), (9, 12, 12, 10, 8, 6, 5, 4, 3, 3, 2, 2, 2, 1, 1))[0]
        year, month = divmod(as_of.month - 1 + months, 12)
        d = last_friday(as_of.year + year, month + 1)
        if d < as_of:
            year, month = divmod(as_of.month + months, 12)
            d = last_friday(as_of.year + year, month + 1)
        return d
    if roll < 0.75:
        return weekly_expiry(as_of)
    if roll < 0.97:
        return weekly_expiry(as_of) + timedelta(weeks=rng.randrange(1, 12))
    return as_of + timedelta(days=rng.randrange(1, 6))


def _ambiguous_expiry(rng: random.Random, as_of: date) -> tuple[str, list[date]] | None:
    """A "Mon NN" expiry that reads both as a year and as a day, if one exists for as_of."""
    options = []
    for years in range(3):
        yy = (as_of.year + years) % 100
        for month in range(1, 13):
            text = f"{MONTH_CODES[month - 1].title()}{yy:02d}"
            readings = read_expiry(text, as_of)
            if len(readings) > 1:
                options.append((text, readings))
    return rng.choice(options) if options else None


def _sample_as_of(rng: random.Random) -> date:
    return _FIRST_AS_OF + timedelta(days=rng.randrange((_LAST_AS_OF - _FIRST_AS_OF).days + 1))


def _sample_quantity(rng: random.Random, underlying: str) -> Decimal:
    if rng.random() < 0.75:
        base = rng.choice(
            (1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 125, 150, 200, 250, 300,
             400, 500, 600, 750, 800, 1000, 1200, 1500, 2000, 2500, 3000, 5000)
        )  # fmt: skip
        q = Decimal(base * (10 if underlying == "ETH" and rng.random() < 0.6 else 1))
    else:
        q = Decimal(rng.randrange(1, 3000 if underlying == "BTC" else 30000))
    if rng.random() < 0.03:
        q += Decimal("0.5")
    return q


def _spot(rng: random.Random, underlying: str) -> Decimal:
    if underlying == "BTC":
        return Decimal(rng.randrange(300, 1500) * 100)
    return Decimal(rng.randrange(100, 800) * 10)


def _hedge_value(rng: random.Random, spot: Decimal, underlying: str) -> Decimal:
    step = rng.choice((50, 100, 500, 1000) if underlying == "BTC" else (5, 10, 50))
    return max(Decimal(step), (spot / step).quantize(Decimal(1)) * step)


def _hedge_text(rng: random.Random, value: Decimal, underlying: str) -> str:
    style = rng.choice(("k", "full", "full", "comma", "bare" if underlying == "BTC" else "k"))
    return _strike_text(value, underlying, style)


def _sample_strikes(rng: random.Random, spot: Decimal, underlying: str, n: int) -> list[Decimal]:
    if underlying == "BTC":
        step = rng.choices((500, 1000, 2000, 5000, 10000), (5, 35, 25, 28, 7))[0]
    else:
        step = rng.choices((25, 50, 100, 250, 500), (3, 20, 45, 22, 10))[0]
    base = int(spot * Decimal(rng.uniform(0.55, 1.45)) / step) * step
    base = max(base, step)
    width = step * rng.choices((1, 2, 3, 4, 5), (35, 30, 15, 12, 8))[0]
    strikes = [Decimal(base)]
    for i in range(1, n):
        gap = width
        if n == 4 and i == 2:
            gap = step * rng.randrange(1, 5)
        elif n == 3 and i == 2 and rng.random() < 0.15:
            gap = width + step
        strikes.append(strikes[-1] + gap)
    return strikes


# ------------------------------------------------------------------------------------------
# RFQs on the structure templates.


@dataclass
class _Rfq:
    """Generating parameters of an RFQ line."""

    underlying: str
    structure: Structure
    side: Side
    quantity: Decimal
    strikes: list[Decimal]
    expiries: list[date]
    ratio: int | None
    hedge: Decimal | None


_STRUCTURE_WEIGHTS = {
    Structure.CALL: 14,
    Structure.PUT: 12,
    Structure.CALL_SPREAD: 11,
    Structure.PUT_SPREAD: 10,
    Structure.STRADDLE: 7,
    Structure.STRANGLE: 7,
    Structure.RISK_REVERSAL: 8,
    Structure.CALL_BUTTERFLY: 5,
    Structure.PUT_BUTTERFLY: 4,
    Structure.CALL_CONDOR: 4,
    Structure.CALL_CALENDAR: 5,
    Structure.PUT_CALENDAR: 4,
    Structure.CALL_RATIO: 5,
    Structure.PUT_RATIO: 4,
}
_OPTION_TYPE = {
    Structure.CALL: OptionType.CALL,
    Structure.PUT: OptionType.PUT,
    Structure.CALL_SPREAD: OptionType.CALL,
    Structure.PUT_SPREAD: OptionType.PUT,
    Structure.CALL_BUTTERFLY: OptionType.CALL,
    Structure.PUT_BUTTERFLY: OptionType.PUT,
    Structure.CALL_CONDOR: OptionType.CALL,
    Structure.CALL_CALENDAR: OptionType.CALL,
    Structure.PUT_CALENDAR: OptionType.PUT,
    Structure.CALL_RATIO: OptionType.CALL,
    Structure.PUT_RATIO: OptionType.PUT,
}


def _sample_rfq(rng: random.Random, as_of: date) -> _Rfq:
    underlying = rng.choices(("BTC", "ETH"), (58, 42))[0]
    structure = rng.choices(list(_STRUCTURE_WEIGHTS), list(_STRUCTURE_WEIGHTS.values()))[0]
    shape = structure_shape(structure)
    spot = _spot(rng, underlying)
    expiries = sorted({_sample_expiry(rng, as_of) for _ in range(shape.expiries)})
    while len(expiries) < shape.expiries:
        expiries = sorted({*expiries, _sample_expiry(rng, as_of)})
    return _Rfq(
        underlying=underlying,
        structure=structure,
        side=rng.choices(list(Side), (38, 30, 32))[0],
        quantity=_sample_quantity(rng, underlying),
        strikes=_sample_strikes(rng, spot, underlying, shape.strikes),
        expiries=expiries,
        ratio=rng.choices((2, 3), (75, 25))[0] if shape.has_ratio else None,
        hedge=_hedge_value(rng, spot, underlying) if rng.random() < 0.35 else None,
    )


def _type_word(rng: random.Random, option_type: OptionType) -> Chunk:
    tag = Tag.CALL if option_type is OptionType.CALL else Tag.PUT
    return [(_one(rng, _TYPE_WORDS[option_type]), tag)]


def _ratio_chunk(rng: random.Random, n: int) -> Chunk:
    text = rng.choices((f"1x{n}", f"1X{n}", f"1:{n}", f"1 by {n}", f"1x{n}s"), (70, 5, 12, 5, 3))[0]
    return [(text, Tag.RATIO)]


def _body(rng: random.Random, rfq: _Rfq, omit_type: bool, omit_strikes: bool) -> list[Chunk]:
    """Strikes, option type and structure words, in one of several orders."""
    s = rfq.structure
    strikes = [] if omit_strikes else list(rfq.strikes)
    if s in (Structure.PUT_SPREAD, Structure.PUT_RATIO) and rng.random() < 0.35:
        strikes.reverse()
    option_type = _OPTION_TYPE.get(s)
    typ: Chunk = [] if omit_type or option_type is None else _type_word(rng, option_type)
    stk: Chunk = _strike_pieces(rng, strikes, rfq.underlying) if strikes else []
    if omit_strikes and rng.random() < 0.5:
        # Strikes named by delta or moneyness are no strikes: they are asked for.
        if s in (Structure.STRANGLE, Structure.RISK_REVERSAL):
            stk = _plain(_one(rng, ("25d", "25 delta", "10d", "25-delta", "10 delta", "15d")))
        elif s in (Structure.STRADDLE, Structure.CALL, Structure.PUT):
            stk = _plain(_one(rng, ("atm", "ATM", "at the money", "atmf")))
    if option_type is not None and s in (Structure.CALL, Structure.PUT):
        return _single_body(rng, rfq, option_type, typ, stk, strikes)
    one_word: Chunk = []
    if option_type is not None and not omit_type:
        one_word = [(_one(rng, _ONE_WORD_SPREAD[option_type]), _spread_tag(s))]
    if s in (Structure.CALL_SPREAD, Structure.PUT_SPREAD):
        word = _with_type(rng, typ, [(_one(rng, _SPREAD_WORDS), Tag.SPREAD)])
        if one_word and rng.random() < 0.4:
            word = one_word
        return [word, stk] if rng.random() < 0.2 else [stk, word]
    if s in (Structure.CALL_RATIO, Structure.PUT_RATIO):
        return _ratio_body(rng, rfq.ratio or 2, typ, stk, one_word)
    if s in (Structure.CALL_CALENDAR, Structure.PUT_CALENDAR):
        word = [(_one(rng, _FAMILY_WORDS[Tag.CALENDAR]), Tag.CALENDAR)]
        if typ and rng.random() < 0.2:
            word = [*word, (" ", None), *typ]
        else:
            word = _with_type(rng, typ, word)
        return [stk, word] if rng.random() < 0.8 else [word, stk]
    family = _FAMILIES[s]
    word = [(_one(rng, _FAMILY_WORDS[family]), family)]
    if family is not Tag.CONDOR or rng.random() < 0.5:
        word = _with_type(rng, typ, word)
    if s in (Structure.STRANGLE, Structure.RISK_REVERSAL) and strikes and rng.random() < 0.3:
        stk = _typed_strikes(rng, strikes, rfq.underlying)
    return [stk, word] if rng.random() < 0.85 else [word, stk]


_FAMILIES = {
    Structure.STRADDLE: Tag.STRADDLE,
    Structure.STRANGLE: Tag.STRANGLE,
    Structure.RISK_REVERSAL: Tag.RISK_REVERSAL,
    Structure.CALL_BUTTERFLY: Tag.BUTTERFLY,
    Structure.PUT_BUTTERFLY: Tag.BUTTERFLY,
    Structure.CALL_CONDOR: Tag.CONDOR,
}


def _with_type(rng: random.Random, typ: Chunk, word: Chunk) -> Chunk:
    """A structure word after its option type ("call spread"), when the type is stated."""
    return [*typ, (" ", None), *word] if typ else word


def _single_body(
    rng: random.Random,
    rfq: _Rfq,
    option_type: OptionType,
    typ: Chunk,
    stk: Chunk,
    strikes: Sequence[Decimal],
) -> list[Chunk]:
    if typ and strikes and rng.random() < 0.15:
        text = _strike_text(strikes[0], rfq.underlying, rng.choice(("full", "k", "full")))
        code = _one(rng, ("C", "c") if option_type is OptionType.CALL else ("P", "p"))
        sep = rng.choice(("-", "", " "))
        return [[(text, Tag.STRIKE), (sep, None), (code, typ[0][1])]]
    order = rng.choices(("st", "ts", "the"), (75, 12, 13))[0]
    if order == "ts":
        return [typ, stk]
    if order == "the":
        return [_plain("the"), stk, typ]
    return [stk, _plain("strike") if rng.random() < 0.05 else [], typ]


def _ratio_body(rng: random.Random, n: int, typ: Chunk, stk: Chunk, one_word: Chunk) -> list[Chunk]:
    ratio = _ratio_chunk(rng, n)
    word = _one(rng, ("spread", "ratio", "ratio spread", "spread", "ratio"))
    spread = _with_type(rng, typ, [(word, Tag.RATIO if word.startswith("ratio") else Tag.SPREAD)])
    if one_word and rng.random() < 0.25:
        spread = one_word
    orders = (
        [ratio, stk, spread],
        [stk, ratio, spread],
        [ratio, spread, stk],
        [spread, stk, ratio],
    )
    return rng.choice(orders)


def _typed_strikes(rng: random.Random, strikes: Sequence[Decimal], underlying: str) -> Chunk:
    """Strikes each with its type, as in "55p/75c", for strangles and risk reversals."""
    p_word, c_word = rng.choice((("p", "c"), ("P", "C"), ("put", "call"), ("p", "c")))
    gap = " " if len(p_word) > 1 or rng.random() < 0.2 else ""
    put: Chunk = [(_strike_text(strikes[0], underlying, "k"), Tag.STRIKE), (gap, None)]
    call: Chunk = [(_strike_text(strikes[1], underlying, "k"), Tag.STRIKE), (gap, None)]
    put.append((p_word, Tag.PUT))
    call.append((c_word, Tag.CALL))
    return [*put, ("/", None), *call] if rng.random() < 0.6 else [*call, ("/", None), *put]


def _spread_tag(structure: Structure) -> Tag:
    return Tag.CALL_SPREAD if _OPTION_TYPE[structure] is OptionType.CALL else Tag.PUT_SPREAD


def _hedge_chunk(rng: random.Random, rfq: _Rfq) -> Chunk:
    if rfq.hedge is None:
        return _plain(_one(rng, _NO_HEDGE)) if rng.random() < 0.25 else []
    text = _hedge_text(rng, rfq.hedge, rfq.underlying)
    return [(_one(rng, _HEDGE_PREFIXES) + " ", None), (text, Tag.HEDGE)]


@dataclass(frozen=True)
class _Omit:
    """Fields a line leaves out (or words ambiguously), making it ask for clarification."""

    quantity: bool = False
    expiry: bool = False
    underlying: bool = False
    option_type: bool = False
    strikes: bool = False
    side: bool = False
    ambiguous_expiry: tuple[str, list[date]] | None = None

    def fields(self) -> list[dict[str, Any]]:
        out = []
        if self.underlying:
            out.append({"field": "underlying", "candidates": ["BTC", "ETH"]})
        if self.side:
            out.append({"field": "side", "candidates": [str(s) for s in Side]})
        if self.quantity:
            out.append({"field": "quantity", "candidates": []})
        if self.expiry:
            out.append({"field": "expiry", "candidates": []})
        if self.ambiguous_expiry:
            dates = self.ambiguous_expiry[1]
            out.append({"field": "expiry", "candidates": [d.isoformat() for d in dates]})
        if self.strikes:
            out.append({"field": "strike", "candidates": []})
        if self.option_type:
            out.append({"field": "option_type", "candidates": ["call", "put"]})
        return out


def _sample_omit(rng: random.Random, rfq: _Rfq, as_of: date) -> _Omit:
    typed = rfq.structure in _OPTION_TYPE and rfq.structure is not Structure.CALL_CONDOR
    choices: list[str] = ["quantity", "quantity", "expiry", "expiry", "underlying", "strikes"]
    if typed:
        choices.append("option_type")
    if rfq.structure is Structure.RISK_REVERSAL:
        choices += ["side"] * 4
    if len(rfq.expiries) == 1:
        choices += ["ambiguous_expiry"] * 2
    picked = {rng.choice(choices) for _ in range(1 if rng.random() < 0.8 else 2)}
    ambiguous = None
    if "ambiguous_expiry" in picked:
        picked -= {"ambiguous_expiry", "expiry"}
        ambiguous = _ambiguous_expiry(rng, as_of)
        if ambiguous is None:
            picked.add("quantity")
    return _Omit(
        quantity="quantity" in picked,
        expiry="expiry" in picked,
        underlying="underlying" in picked,
        option_type="option_type" in picked,
        strikes="strikes" in picked,
        side="side" in picked,
        ambiguous_expiry=ambiguous,
    )


def _rfq_line(rng: random.Random, as_of: date, clarify: bool) -> Example:
    rfq = _sample_rfq(rng, as_of)
    omit = _sample_omit(rng, rfq, as_of) if clarify else _Omit()
    side: Side | None = rfq.side
    no_side_cue = omit.side or (rfq.structure is not Structure.RISK_REVERSAL and rng.random() < 0.1)
    if no_side_cue:
        side = None if rfq.structure is Structure.RISK_REVERSAL else Side.TWO_WAY

    und: Chunk = (
        [] if omit.underlying else [(_one(rng, _UNDERLYING_NAMES[rfq.underlying]), Tag.UNDERLYING)]
    )
    if omit.expiry:
        exp: Chunk = []
    elif omit.ambiguous_expiry:
        exp = _expiry_chunk(rng, omit.ambiguous_expiry[0])
    elif len(rfq.expiries) == 2:
        t1, t2 = (_expiry_text(rng, d, as_of) for d in rfq.expiries)
        if rng.random() < 0.2:
            t1, t2 = t2, t1
        joiner = rng.choice(("/", "/", "-", " vs ", " and ", " ", " / ", "-"))
        if joiner in ("-", " ") and re.search(r"\d", t1 + t2):
            joiner = rng.choice(("/", " / ", " and "))
        exp = [(t1, Tag.EXPIRY), (joiner, None), (t2, Tag.EXPIRY)]
    else:
        exp = _expiry_chunk(rng, _expiry_text(rng, rfq.expiries[0], as_of))
    body = _body(rng, rfq, omit.option_type, omit.strikes)

    order = rng.choices(("ueb", "eub", "ube", "bue", "ue_b"), (62, 14, 12, 4, 8))[0]
    core: list[Chunk]
    if order == "ueb":
        core = [und, exp, *body]
    elif order == "eub":
        core = [exp, und, *body]
    elif order == "ube":
        core = [und, *body, exp]
    elif order == "bue":
        core = [*body, und, exp]
    else:
        core = [und, exp, *body]
        if und and exp and rng.random() < 0.5:
            core = [[*und, ("-", None), *exp], *body]
    if rng.random() < 0.04:
        core.insert(rng.randrange(len(core) + 1), _plain(_one(rng, _NOISE)))
    core = [c for c in core if c]

    qty: Chunk = []
    if not omit.quantity:
        qty_at = rng.choices((0, len(core), 1), (50, 40, 10))[0]
        following = core[qty_at] if qty_at < len(core) else []
        # A bare number before an expiry or after a strike reads as a day or a strike.
        marked = (bool(exp) and following[:1] == exp[:1]) or (
            qty_at == len(core) and rng.random() < 0.5
        )
        qty = _quantity_chunk(
            rng, rfq.quantity, None if omit.underlying else rfq.underlying, marked=marked
        )
        if any(tag is Tag.UNDERLYING for _, tag in qty):
            core = [c for c in core if c is not und]
            qty_at = 0
        if qty_at < len(core):
            core.insert(qty_at, qty)
            qty = []

    prefix: Chunk = []
    suffix: Chunk = []
    rr = rfq.structure is Structure.RISK_REVERSAL
    if side is not None and side in _RR_SIDES and rr and rng.random() < 0.3:
        suffix = _mark(_one(rng, _RR_SIDES[side]), _side_tag(side))
    elif side is not None and not no_side_cue:
        if rng.random() < 0.68:
            prefix = _mark(_one(rng, _SIDE_PREFIX[side]), _side_tag(side))
        else:
            suffix = _mark(_one(rng, _SIDE_SUFFIX[side]), _side_tag(side))

    chunks: list[Chunk] = []
    if rng.random() < 0.25:
        chunks.append(_plain(_one(rng, _GREETINGS)))
    chunks += [prefix, *core]
    # After the instrument, a trailing size, the hedge and the side cue come in any order;
    # a size that does not come first carries a marker ("live 2,000" reads badly).
    tail = [c for c in (qty, _hedge_chunk(rng, rfq), suffix) if c]
    rng.shuffle(tail)
    if qty and tail[0] is not qty:
        tail[tail.index(qty)] = _quantity_chunk(rng, rfq.quantity, None, marked=True)
    for chunk in tail:
        if rng.random() < 0.3 and not chunk[0][0].startswith((",", "-")):
            chunks.append(_plain(","))
        chunks.append(chunk)
    if rng.random() < 0.07:
        chunks.append(_plain(_limit(rng)))
    if rng.random() < 0.25:
        chunks.append(_plain(_one(rng, _CLOSINGS)))

    expected = _expected_rfq(rfq, side, omit)
    return _finish(rng, chunks, as_of, Intent.RFQ, expected)


def _limit(rng: random.Random) -> str:
    """A price limit or level: numbers that are no strike, size or hedge."""
    price = rng.choice(
        (
            f"0.0{rng.randrange(10, 99)}",
            f"{rng.randrange(1, 20) * 25:,}",
            f"${rng.randrange(2, 90) * 50}",
            f"{rng.randrange(1, 9)}.{rng.randrange(0, 99):02d}",
        )
    )
    return _one(rng, _LIMITS).format(p=price, v=rng.randrange(30, 95))


def _side_tag(side: Side) -> Tag:
    return {Side.BUY: Tag.BUY, Side.SELL: Tag.SELL, Side.TWO_WAY: Tag.TWO_WAY}[side]


def _expected_rfq(rfq: _Rfq, side: Side | None, omit: _Omit) -> dict[str, Any]:
    questions = omit.fields()
    if questions:
        return {"intent": "rfq", "needs_clarification": questions}
    legs = build_legs(rfq.underlying, rfq.structure, rfq.strikes, rfq.expiries, rfq.ratio)
    return {
        "intent": "rfq",
        "rfq": rfq_json(rfq.underlying, rfq.structure, side, rfq.quantity, legs, rfq.hedge),
    }


# ------------------------------------------------------------------------------------------
# Custom structures: legs stated one by one.

_LEG_CUES = {
    Direction.BUY: ("buy", "buy", "buying", "long", "we buy", "bot", "purchase", "buy the"),
    Direction.SELL: ("sell", "sell", "selling", "short", "we sell", "sold", "write", "sell the"),
}
_LEG_JOINERS = ("and", ",", "/", ";", "&", ", and", "and", "+", ", then", "and also", "vs")
_CUSTOM_PREFIXES = (
    "client wants to", "we'd like to", "looking to", "we want to", "i'd like to", "need to",
    "can we", "want to", "would like to", "client would", "we're looking to", "interested to",
)  # fmt: skip


def _custom_line(rng: random.Random, as_of: date) -> Example:
    underlying = rng.choices(("BTC", "ETH"), (60, 40))[0]
    spot = _spot(rng, underlying)
    base = _sample_quantity(rng, underlying).to_integral_value() or Decimal(1)
    n_legs = rng.choices((2, 3), (82, 18))[0]
    expiries = [_sample_expiry(rng, as_of) for _ in range(2)]
    legs: list[tuple[Direction, Decimal, date, OptionType, Decimal]] = []
    while len(legs) < n_legs:
        direction = (
            Direction.BUY if not legs and rng.random() < 0.7 else rng.choice(list(Direction))
        )
        option_type = rng.choice(list(OptionType))
        strike = _sample_strikes(rng, spot, underlying, 1)[0]
        mult = rng.choices((1, 2, 3), (75, 18, 7))[0] if legs else 1
        leg = (direction, base * mult, rng.choice(expiries), option_type, strike)
        if all(leg[2:] != other[2:] for other in legs):
            legs.append(leg)
    same_size = len({size for _, size, _, _, _ in legs}) == 1
    size_once = same_size and rng.random() < 0.25

    chunks: list[Chunk] = []
    if rng.random() < 0.2:
        chunks.append(_plain(_one(rng, _GREETINGS)))
    prefixed = rng.random() < 0.35
    if prefixed:
        chunks.append(_plain(_one(rng, _CUSTOM_PREFIXES)))
    style = _strike_style(rng, underlying)
    previous_expiry: date | None = None
    for i, (direction, size, expiry, option_type, strike) in enumerate(legs):
        cue = _one(rng, _LEG_CUES[direction])
        if i == 0 and prefixed:
            cue = cue.removeprefix("we ")
        tag = Tag.LEG_BUY if direction is Direction.BUY else Tag.LEG_SELL
        if i:
            chunks.append(_plain(_one(rng, _LEG_JOINERS)))
        leg_chunks: list[Chunk] = [[(cue, tag)]]
        qty = [] if size_once else _quantity_chunk(rng, size, None)
        und: Chunk = (
            [(_one(rng, _UNDERLYING_NAMES[underlying]), Tag.UNDERLYING)]
            if i == 0 or rng.random() < 0.4
            else []
        )
        if rng.random() < 0.12 and und:
            code = "C" if option_type is OptionType.CALL else "P"
            name = [
                (underlying, Tag.UNDERLYING),
                ("-", None),
                (format_expiry_code(expiry), Tag.EXPIRY),
                ("-", None),
                (_number(strike), Tag.STRIKE),
                ("-", None),
                (code, Tag.CALL if option_type is OptionType.CALL else Tag.PUT),
            ]
            leg_chunks += [qty, name] if rng.random() < 0.6 else [name, qty]
        else:
            exp: Chunk = []
            if expiry != previous_expiry or rng.random() < 0.6:
                exp = [(_expiry_text(rng, expiry, as_of), Tag.EXPIRY)]
            leg_chunks += [
                qty,
                und,
                exp,
                [(_strike_text(strike, underlying, style), Tag.STRIKE)],
                _type_word(rng, option_type),
            ]
            if qty and rng.random() < 0.25:
                leg_chunks = [leg_chunks[0], *leg_chunks[2:], qty]
        previous_expiry = expiry
        chunks += leg_chunks
    if size_once:
        n = _quantity_text(base, rng)
        chunks.append(_mark(rng.choice((f"[{n}x] each", f"[{n}] each", f"x[{n}] each",
                                        f"[{n}] of each", f"size [{n}] each", f"[{n}] lots each")),
                            Tag.QUANTITY))  # fmt: skip
    if rng.random() < 0.2:
        chunks.append(_plain(_one(rng, _CLOSINGS)))
    return _finish(rng, chunks, as_of, Intent.RFQ, _expected_custom(underlying, legs))


def _expected_custom(
    underlying: str, stated: Sequence[tuple[Direction, Decimal, date, OptionType, Decimal]]
) -> dict[str, Any]:
    quantity = Decimal(math.gcd(*(int(size) for _, size, _, _, _ in stated)))
    legs = [
        Leg(Instrument(underlying, expiry, strike, option_type), int(size / quantity), direction)
        for direction, size, expiry, option_type, strike in stated
    ]
    found = recognise(legs)
    side = Side.BUY
    if found.orientation is Direction.SELL:
        side, legs = Side.SELL, [leg.flipped() for leg in legs]
    return {
        "intent": "rfq",
        "rfq": rfq_json(underlying, found.structure, side, quantity, legs, None),
    }


# ------------------------------------------------------------------------------------------
# Follow-ups and chatter.

_ACCEPT: dict[Side | None, tuple[str, ...]] = {
    Side.BUY: (
        "[mine]", "[mine]!", "[mine] thx", "[mine] ty", "ok [mine]", "[mine], thanks",
        "[mine] please", "[mine] at that", "[lift]", "[lifting]", "[lift] it", "[lift your offer]",
        "i [lift]", "we [lift]", "[lifted]", "done [at your offer]", "[we take your offer]",
        "i'll [take it]", "[take it]", "we'll [take it]", "[i buy]", "[we buy] it", "[buy it]",
        "[paid]", "[pay]", "[we pay]", "yes [we buy]", "deal, [we buy]", "confirm [we buy]",
        "[buying at your offer]", "[your offer works]", "[we take it]", "[we take the offer]",
        "happy [to pay] that", "[we'll pay that]", "ok [buy]", "[buy] them", "[mine] mate",
        "sure, [mine]", "[lift] pls", "[lifting your offer]", "we [pay] your offer", "[mine] 👍",
        "ok [we buy at your offer]", "[we'll lift]", "[happy to buy] there", "go [mine]",
        "trade, [we buy]", "yep [mine]", "[i'll pay] it", "[you sold]", "[mine] at {p}",
        "[lift] at {p}", "[we buy] at {p}", "done, [we pay] {p}", "[bought]", "[we bought]",
        "[i bought]", "[bought] thx", "ok [bought]", "[bought them]", "[bought it]",
    ),
    Side.SELL: (
        "[yours]", "[yours]!", "[yours] thx", "[yours] ty", "ok [yours]", "[yours], thanks",
        "[yours] please", "[yours] at that", "[hit]", "[hitting]", "[hit] it", "[hit your bid]",
        "i [hit]", "we [hit]", "done [at your bid]", "[we hit your bid]", "[i sell]",
        "[we sell] it", "[sell it] to you", "[sold]", "yes [we sell]", "deal, [we sell]",
        "confirm [we sell]", "[selling at your bid]", "[your bid works]", "[we'll sell] there",
        "[happy to sell] there", "[given]", "[we give]", "ok [sell]", "[sell] them",
        "[yours] mate", "sure, [yours]", "[hit] pls", "[hitting your bid]", "[yours] 👍",
        "ok [we sell to your bid]", "[we'll hit]", "go [yours]", "trade, [we sell]", "yep [yours]",
        "[you bought]", "[give] it", "[yours] at {p}", "[hit] at {p}", "[we sell] at {p}",
        "done, [we sell] at {p}", "[we sold]", "[i sold]", "[sold] thx", "ok [sold]",
        "[sold them]", "[sold it]",
    ),
    None: (
        "done", "done!", "ok done", "deal", "trade", "let's trade", "confirmed", "agreed, done",
        "we'll do it", "let's do it", "book it", "do it", "good, done", "yes done", "done done",
        "that works, done", "deal thanks", "we trade", "ok let's trade", "confirm", "go ahead",
        "works for us, done", "yes please, done", "done at {p}", "ok done at {p}", "deal at {p}",
    ),
}  # fmt: skip
_ACCEPT_TAILS = ("", "", "", " thanks", " thx", ", thanks", " cheers", " ty", "!", " 🙏", " pls")
_ACCEPT_HEADS = ("", "", "", "", "ok ", "ok, ", "great, ", "perfect, ", "cool ", "nice, ")

_DECLINE = (
    "pass", "pass thx", "pass for now", "we pass", "i'll pass", "will pass", "nothing done",
    "nothing done thx", "nd", "cxl", "cxl thx", "cancel", "cancel that", "pls cancel",
    "no thanks", "not for us", "too wide", "too wide, pass", "out", "we're out", "i'm out",
    "leave it", "no trade", "nvm", "never mind", "let's leave it", "we'll leave it",
    "not interested", "no interest", "we're good, thanks", "off", "all off", "kill it",
    "pull it", "withdraw", "cancel the rfq", "scratch that", "forget it", "no go",
    "doesn't work for us", "can't do that level", "not there", "we'll stay out", "pass on it",
    "we'll pass this time", "nothing doing", "too expensive, pass", "no deal", "we're off",
    "cancel pls", "cxl the request", "client passed", "client's out", "client says no",
    "miss", "not today", "pass, too far off", "no bid, thx", "will leave it", "drop it",
)  # fmt: skip
_DECLINE_TAILS = ("", "", "", ", thanks", " ty", ", cheers", " for now", ", maybe later", " sorry")

_OTHER = (
    "thanks", "thx", "ty", "cheers", "great, thanks", "appreciate it", "np", "sure", "ok",
    "ok cool", "one sec", "give me a sec", "checking", "checking with the client", "let me check",
    "will come back", "will revert shortly", "hold on", "brb", "lol", "haha", "nice", "gm",
    "good morning", "morning", "hi", "hello", "how are you", "how's your day", "hope all good",
    "have a good weekend", "talk later", "sorry, wrong chat", "?", "k", "noted", "got it",
    "understood", "sounds good", "perfect", "will do", "on it", "bear with me",
    "what's your view on [{und}] vol into [{exp}]?", "where's [{und}] spot?",
    "what's [{und}] funding doing?", "any flows in [{und}] today?",
    "what are you seeing in [{und}] skew?", "can you send me the confirms for today",
    "can you resend yesterday's confirm", "when do [{exp}] options expire?",
    "is the venue down?", "what's your settlement process?", "can we set up a call",
    "who is covering today", "please check the booking on the last trade",
    "what time is expiry?", "do you have any axes in [{und}]?", "vol is bid today",
    "[{und}] looks heavy", "big print in [{und}] [{exp}] [{stk}] [{type}] earlier",
    "client is thinking about [{und}] upside, will come back", "did you see the [{und}] move",
    "what did the [{und}] [{exp}] [{stk}] [{type}] close at yesterday?",
    "we traded [{qty}] [{und}] [{exp}] [{stk}] [{type}] yesterday, can you send the confirm",
    "what's the [{und}] term structure look like", "is [{und}] [{exp}] vol rich?",
    "can you explain how you price [{und}] [{type}]", "any news on [{und}]?",
    "what's your max size in [{und}] [{type}]?", "lunch?", "call me when you can",
    "need to update our credit line", "can you add my colleague to the chat",
    "which venue do you clear on?", "are you open on the weekend?", "what's the tick size",
    "your platform is slow today", "the last fill looks wrong", "can you check the booking",
    "how was the weekend", "markets are crazy today", "happy friday", "who's your [{und}] trader",
    "can you send the [{und}] vol surface", "we'll be quiet today", "back in 10",
    "is [{und}] [{exp}] the quarterly?", "where did [{und}] [{exp}] atm vol close",
    "what's implied on [{und}] [{exp}]", "remind me of the cut-off time",
    "our ops team will reach out", "thanks for the help earlier",
    "what's the [{und}] basis", "anything interesting today?", "quiet day",
    "client might come back later on the [{und}] [{exp}] [{stk}] [{type}]", "great trade",
    "do you do block trades in [{und}]?", "what's the minimum size?", "ok will check",
    "[{und}] at {n}k, wow", "[{und}] just broke {n}k", "funding at {n} bps is nuts",
    "sent you the confirm for the [{und}] [{exp}] [{stk}] [{type}]", "we're flat now",
    "our limit is {n}m notional per day", "can you do {n} lots on the screen?",
    "who traded the [{und}] [{exp}] [{stk}] [{type}] block?", "vol at {n} looks cheap",
    "[{und}] {n}k, wild day", "[{und}] back above {n}k", "spot {n}k, crazy", "[{und}] down {n}%",
    "[{und}] ripping, {n}k now", "did you see [{und}] at {n}k?", "[{und}] vol {n} today",
    "[{und}] [{exp}] vol at {n}, interesting", "[{und}] broke [{stk}]", "[{und}] perp at {n}k",
    "we were at {n}k an hour ago", "[{und}] {n}k by [{exp}]? no chance", "[{exp}] expiry at 8 utc?",
    "how much did [{und}] move today", "[{und}] [{stk}] was the big strike at expiry",
)  # fmt: skip


def _accept_line(rng: random.Random, as_of: date) -> Example:
    side = rng.choices((Side.BUY, Side.SELL, None), (44, 44, 12))[0]
    core = _one(rng, _ACCEPT[side]).format(p=_limit(rng).split()[-1])
    text = _one(rng, _ACCEPT_HEADS) + core + _one(rng, _ACCEPT_TAILS)
    if re.sub(r"[\[\]]", "", text).strip().lower() in ("mine", "yours", "done", "lift", "hit"):
        text += rng.choice(("!", " thx", " pls", " ty"))
    chunks = [_mark(text, None if side is None else _side_tag(side))]
    return _finish(
        rng, chunks, as_of, Intent.ACCEPT,
        {"intent": "accept", "side": None if side is None else str(side)},
    )  # fmt: skip


def _decline_line(rng: random.Random, as_of: date) -> Example:
    text = _one(rng, _ACCEPT_HEADS[:6]) + _one(rng, _DECLINE) + _one(rng, _DECLINE_TAILS)
    if text in ("pass", "cxl", "nothing done", "nd", "cancel"):
        text += rng.choice(("!", " for now", " on this one", " here"))
    return _finish(rng, [_plain(text)], as_of, Intent.DECLINE, {"intent": "decline"})


def _other_line(rng: random.Random, as_of: date) -> Example:
    underlying = rng.choice(("BTC", "ETH"))
    spot = _spot(rng, underlying)
    template = _one(rng, _OTHER).replace("{n}", str(rng.randrange(2, 120)))
    strike = _sample_strikes(rng, spot, underlying, 1)[0]
    fills: dict[str, tuple[str, Tag]] = {
        "und": (_one(rng, _UNDERLYING_NAMES[underlying]), Tag.UNDERLYING),
        "exp": (_expiry_text(rng, _sample_expiry(rng, as_of), as_of), Tag.EXPIRY),
        "stk": (_strike_text(strike, underlying, "k"), Tag.STRIKE),
        "qty": (_number(_sample_quantity(rng, underlying)), Tag.QUANTITY),
    }
    option_type = rng.choice(list(OptionType))
    fills["type"] = (
        _one(rng, _TYPE_WORDS[option_type][:3]),
        Tag.CALL if option_type is OptionType.CALL else Tag.PUT,
    )
    pieces: Chunk = []
    for i, part in enumerate(re.split(r"\[\{(\w+)\}\]", template)):
        if i % 2:
            pieces.append(fills[part])
        elif part:
            pieces.append((part, None))
    chunks: list[Chunk] = [pieces]
    if rng.random() < 0.15 and len(template) > 12:
        chunks.insert(0, _plain(_one(rng, _GREETINGS[:12])))
    if rng.random() < 0.2 and len(template) > 12:
        chunks.append(_plain(_one(rng, ("!", "?", ":)", "thanks", "pls", "mate", "lol"))))
    return _finish(rng, chunks, as_of, Intent.OTHER, {"intent": "other"})


_KINDS: tuple[tuple[Callable[[random.Random, date], Example], int], ...] = (
    (lambda rng, as_of: _rfq_line(rng, as_of, clarify=False), 52),
    (lambda rng, as_of: _rfq_line(rng, as_of, clarify=True), 12),
    (_custom_line, 7),
    (_accept_line, 11),
    (_decline_line, 8),
    (_other_line, 10),
)


def _example(rng: random.Random) -> Example:
    as_of = _sample_as_of(rng)
    make = rng.choices([k for k, _ in _KINDS], [w for _, w in _KINDS])[0]
    return make(rng, as_of)
