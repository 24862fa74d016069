"""From tagged spans to the canonical parse output of DESIGN.md.

This runs after the model and decides nothing the model did not say: the intent comes from the
sequence head, the structure family, option types, sides and leg directions from the tags the
token head chose. The code here only reads the text of each span (numbers, dates, strike
shorthand, ratios) with the domain's rules (:mod:`app.domain`), assembles the legs with the
structure templates, and turns what is missing, contradictory, ambiguous or uncertain into
``needs_clarification`` entries instead of guessing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from app.domain.enums import Direction, OptionType, Side, Structure
from app.domain.errors import DomainError
from app.domain.expiries import expiry_candidates, is_listed_expiry
from app.domain.instruments import Instrument, normalise_quantity, normalise_strike
from app.domain.structures import Leg, build_legs, recognise, structure_shape
from ml.intent.labels import Intent, Tag

UNDERLYING_NAMES: dict[str, str] = {
    "btc": "BTC",
    "xbt": "BTC",
    "bitcoin": "BTC",
    "bitcoins": "BTC",
    "eth": "ETH",
    "ether": "ETH",
    "ethereum": "ETH",
}
"""How traders name each underlying (lower case, without punctuation)."""

UNDERLYINGS: tuple[str, ...] = ("BTC", "ETH")
"""Underlyings offered as candidates when none is stated."""

_PLACEHOLDER_UNDERLYING = "X"
_PLACEHOLDER_EXPIRY = date(2000, 1, 7)
_RATIO = re.compile(r"(\d+)\s*(?:x|:|by|/|for)\s*(\d+)")
_SIDE_TAGS = {Tag.BUY: Side.BUY, Tag.SELL: Side.SELL, Tag.TWO_WAY: Side.TWO_WAY}
_LEG_TAGS = {Tag.LEG_BUY: Direction.BUY, Tag.LEG_SELL: Direction.SELL}
_TYPE_TAGS = {Tag.CALL: OptionType.CALL, Tag.PUT: OptionType.PUT}
_STRUCTURE_TAGS = frozenset(
    {
        Tag.SPREAD,
        Tag.CALL_SPREAD,
        Tag.PUT_SPREAD,
        Tag.STRADDLE,
        Tag.STRANGLE,
        Tag.RISK_REVERSAL,
        Tag.BUTTERFLY,
        Tag.CONDOR,
        Tag.CALENDAR,
        Tag.RATIO,
    }
)
_FIXED_STRUCTURES = {
    Tag.STRADDLE: Structure.STRADDLE,
    Tag.STRANGLE: Structure.STRANGLE,
    Tag.RISK_REVERSAL: Structure.RISK_REVERSAL,
}
_TYPED_STRUCTURES: dict[Tag, dict[OptionType, Structure]] = {
    Tag.CALENDAR: {
        OptionType.CALL: Structure.CALL_CALENDAR,
        OptionType.PUT: Structure.PUT_CALENDAR,
    },
    Tag.RATIO: {OptionType.CALL: Structure.CALL_RATIO, OptionType.PUT: Structure.PUT_RATIO},
    Tag.CONDOR: {OptionType.CALL: Structure.CALL_CONDOR},
    Tag.BUTTERFLY: {
        OptionType.CALL: Structure.CALL_BUTTERFLY,
        OptionType.PUT: Structure.PUT_BUTTERFLY,
    },
    Tag.SPREAD: {OptionType.CALL: Structure.CALL_SPREAD, OptionType.PUT: Structure.PUT_SPREAD},
}
"""Structure families whose option type comes from a separate call/put span, by precedence:
a "1x2 call spread" is a ratio and a "calendar spread" a calendar, not a vertical spread."""
_DEFAULT_TYPE = {Tag.CONDOR: OptionType.CALL}
"""Families with a single template: a condor is a call condor (the desk lists no put condor);
an "iron condor" (puts and calls) is asked back."""
_IMPLIED_TYPE = {Tag.CALL_SPREAD: OptionType.CALL, Tag.PUT_SPREAD: OptionType.PUT}
_IRON = re.compile(r"\biron\W*$", re.I)


@dataclass(frozen=True, slots=True)
class TaggedSpan:
    """A span the token head tagged.

    Parameters
    ----------
    tag
        Its tag.
    text
        The characters of the message it covers.
    start
        Offset of its first character in the message.
    confidence
        The model's lowest probability for this tag over the span's tokens, 0 to 1.
    """

    tag: Tag
    text: str
    start: int
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Clarification:
    """A question for the client about one field, with the readings on offer."""

    field: str
    question: str
    candidates: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Entry of ``needs_clarification`` in the canonical output."""
        return {"field": self.field, "question": self.question, "candidates": list(self.candidates)}


def json_number(value: Decimal) -> int | float:
    """A decimal as a plain JSON number: an int when integral, else a float."""
    return int(value) if value == value.to_integral_value() else float(value)


def leg_json(leg: Leg, *, known_expiry: bool = True) -> dict[str, Any]:
    """One leg in the canonical output; ``expiry`` is null when it is still to be asked."""
    instrument = leg.instrument
    return {
        "expiry": instrument.expiry.isoformat() if known_expiry else None,
        "strike": json_number(instrument.strike),
        "option_type": str(instrument.option_type),
        "ratio": leg.ratio,
        "direction": str(leg.direction),
    }


def rfq_json(
    underlying: str | None,
    structure: Structure | None,
    side: Side | None,
    quantity: Decimal | None,
    legs: Iterable[Leg],
    hedge_reference: Decimal | None,
    *,
    known_expiry: bool = True,
) -> dict[str, Any]:
    """The ``rfq`` object of the canonical output."""
    return {
        "underlying": underlying,
        "structure": None if structure is None else str(structure),
        "side": None if side is None else str(side),
        "quantity": None if quantity is None else json_number(quantity),
        "legs": [leg_json(leg, known_expiry=known_expiry) for leg in legs],
        "hedge_reference": None if hedge_reference is None else json_number(hedge_reference),
    }


def read_expiry(text: str, as_of: date) -> list[date]:
    """Readings of an expiry span that could be a listed expiry, most likely first.

    Keeps the readings of :func:`app.domain.expiries.expiry_candidates` that fall on a listed
    expiry date: a Friday, or a daily within the listing window after ``as_of``. "27MAR27"
    (a Saturday) reads only as Friday 26 March 2027, while "Jan22" keeps both the day
    (22 January) and the year (the January 2022 monthly): a trader may mean either, even one
    already past, so the client is asked. When no reading is listed, all are returned so that
    the question can still offer them.
    """
    readings = expiry_candidates(text, as_of)
    listed = [d for d in readings if is_listed_expiry(d, as_of)]
    return listed or readings


def read_ratio(text: str) -> int | None:
    """N of a 1xN ratio span ("1x2", "1:3", "1 by 2"); ``None`` when it states no numbers."""
    match = _RATIO.search(text.lower())
    if match is None:
        return None
    low, high = sorted((int(match[1]), int(match[2])))
    if low == 0 or high % low:
        return None
    return high // low


def read_underlying(text: str) -> str | None:
    """Underlying named by a span, ``None`` when the name is unknown."""
    return UNDERLYING_NAMES.get(re.sub(r"[^a-z]", "", text.lower()))


def normalise(
    intent: Intent,
    intent_confidence: float,
    spans: Sequence[TaggedSpan],
    as_of: date,
    threshold: float,
    text: str = "",
) -> dict[str, Any]:
    """Canonical parse output of one message.

    Parameters
    ----------
    intent
        Intent chosen by the sequence head.
    intent_confidence
        Its probability.
    spans
        Spans chosen by the token head, in message order.
    as_of
        Request date, for reading expiries.
    threshold
        Below this probability, an intent or a span that decides a field is not trusted and
        the field is asked back.
    text
        The message, for what the model tags no span of: an accept that states a size
        ("mine for 50", "half") is asked back, since the parse of an accept carries none and
        the whole quote would trade.

    Returns
    -------
    dict
        The canonical parse output (plain JSON types).
    """
    out: dict[str, Any]
    if intent is Intent.RFQ:
        out = _Rfq(spans, as_of, threshold, text).parse()
    elif intent is Intent.ACCEPT:
        sides = [s for s in spans if s.tag in (Tag.BUY, Tag.SELL)]
        best = max(sides, key=lambda s: s.confidence, default=None)
        if best is not None and best.confidence < threshold:
            best = None  # not trusted: the side is asked, or taken from a one-sided quote
        out = {"intent": "accept", "side": None if best is None else str(_SIDE_TAGS[best.tag])}
        if _states_a_size(text):
            question = Clarification(
                "quantity",
                "Is that for the whole size? From chat I trade the whole quote only; say so, "
                "or ask for a new price in the size you want.",
                (),
            )
            out["needs_clarification"] = [question.to_json()]
    else:
        out = {"intent": str(intent)}
    if intent_confidence < threshold:
        question = Clarification(
            "intent",
            "Sorry, I did not follow: is this a request for a price, a trade on our quote, "
            "or a pass?",
            (str(intent),),
        )
        out["needs_clarification"] = [question.to_json(), *out.get("needs_clarification", [])]
    return out


class _Rfq:
    """Assembly of one RFQ from its spans, collecting clarifications on the way."""

    def __init__(
        self, spans: Sequence[TaggedSpan], as_of: date, threshold: float, text: str = ""
    ) -> None:
        self.spans = sorted(spans, key=lambda s: s.start)
        self.text = text
        self.as_of = as_of
        self.threshold = threshold
        self.questions: dict[str, Clarification] = {}

    def ask(self, field: str, question: str, candidates: Iterable[Any] = ()) -> None:
        """Record a clarification; the first one for a field wins."""
        self.questions.setdefault(field, Clarification(field, question, tuple(candidates)))

    def of(self, *tags: Tag) -> list[TaggedSpan]:
        """Spans with one of ``tags``, in message order."""
        return [s for s in self.spans if s.tag in tags]

    def check_confidence(
        self, field: str, spans: Sequence[TaggedSpan], shown: str, values: Sequence[Any]
    ) -> None:
        """Ask back a field whose deciding spans the model was unsure of.

        ``shown`` is the reading in words for the question, ``values`` the candidates.
        """
        if any(s.confidence < self.threshold for s in spans):
            self.ask(field, f"Just to confirm the {field.replace('_', ' ')}: {shown}?", values)

    def parse(self) -> dict[str, Any]:
        underlying = self.underlying()
        hedge = self.hedge(underlying)
        if self.of(Tag.LEG_BUY, Tag.LEG_SELL):
            structure, side, quantity, legs, known_expiry = self.custom(underlying)
        else:
            structure, side, quantity, legs, known_expiry = self.template(underlying)
        rfq = rfq_json(
            underlying, structure, side, quantity, legs, hedge, known_expiry=known_expiry
        )
        if not self.questions:
            return {"intent": "rfq", "rfq": rfq}
        fields = ("underlying", "structure", "side", "quantity", "expiry", "strike", "option_type")
        ordered = sorted(
            self.questions.values(),
            key=lambda q: fields.index(q.field) if q.field in fields else len(fields),
        )
        return {"intent": "rfq", "needs_clarification": [q.to_json() for q in ordered], "rfq": rfq}

    # -- fields shared by every RFQ --------------------------------------------------------

    def underlying(self) -> str | None:
        spans = self.of(Tag.UNDERLYING)
        named = {read_underlying(s.text) for s in spans}
        known = sorted(n for n in named if n is not None)
        if len(named) != 1 or not known:
            self.ask("underlying", "Which underlying: BTC or ETH?", known or UNDERLYINGS)
            return None
        (underlying,) = known
        self.check_confidence("underlying", spans, underlying, [underlying])
        return underlying

    def hedge(self, underlying: str | None) -> Decimal | None:
        values = sorted({v for s in self.of(Tag.HEDGE) if (v := self.strike_value(s, underlying))})
        if len(values) > 1:  # two references: the delta would be exchanged at which?
            shown = [json_number(v) for v in values]
            self.ask(
                "hedge_reference",
                f"Which hedge reference: {' or '.join(map(str, shown))}?",
                shown,
            )
            return None
        return next(iter(values), None)

    def strike_value(self, span: TaggedSpan, underlying: str | None) -> Decimal | None:
        try:
            return normalise_strike(span.text, underlying or "")
        except DomainError:
            return None

    def quantity(self, spans: Sequence[TaggedSpan], underlying: str | None) -> Decimal | None:
        values: list[Decimal] = []
        for span in spans:
            try:
                values.append(normalise_quantity(span.text))
            except DomainError:
                continue
        distinct = list(dict.fromkeys(values))
        unit = f"{underlying} contracts" if underlying else "contracts"
        if len(distinct) != 1:
            self.ask("quantity", f"What size, in {unit}?", [json_number(v) for v in distinct])
            return None
        size = json_number(distinct[0])
        self.check_confidence("quantity", spans, f"{size} {unit}", [size])
        return distinct[0]

    def expiries(self, spans: Sequence[TaggedSpan], wanted: int | None) -> list[date] | None:
        """Dates of the expiry spans (sorted, distinct), or ``None`` after asking.

        ``wanted`` is how many distinct expiries the structure takes, when it is known.
        """
        if not spans:
            self.ask(
                "expiry", "Which expiry?" if wanted in (1, None) else f"Which {wanted} expiries?"
            )
            return None
        dates: list[date] = []
        for span in spans:
            readings = read_expiry(span.text, self.as_of)
            if len(readings) != 1:
                self.ask(
                    "expiry",
                    _expiry_question(span.text, readings),
                    [d.isoformat() for d in readings],
                )
                return None
            dates.append(readings[0])
        distinct = sorted(set(dates))
        if wanted is not None and len(distinct) != wanted:
            noun = "Which expiry?" if wanted == 1 else f"Which {wanted} expiries?"
            self.ask("expiry", noun, [d.isoformat() for d in distinct])
            return None
        shown = [d.isoformat() for d in distinct]
        self.check_confidence("expiry", spans, " and ".join(shown), shown)
        return distinct

    def strikes(self, spans: Sequence[TaggedSpan], underlying: str | None) -> list[Decimal]:
        strikes = sorted({v for s in spans if (v := self.strike_value(s, underlying))})
        if strikes:
            shown = [json_number(k) for k in strikes]
            self.check_confidence("strike", spans, "/".join(map(str, shown)), shown)
        return strikes

    def side(self, structure: Structure | None) -> Side | None:
        spans = self.of(Tag.BUY, Tag.SELL, Tag.TWO_WAY)
        if not spans:
            if structure is Structure.RISK_REVERSAL:
                self.ask(
                    "side",
                    "Do you want to buy the risk reversal (long the call, short the put), "
                    "sell it, or see a two-way price?",
                    [str(s) for s in Side],
                )
                return None
            # A request that names no side asks for a market: both sides are quoted.
            return Side.TWO_WAY
        if len({s.tag for s in spans}) > 1:  # "buy …, bid?", "buyers of …, 2-way pls"
            self.ask(
                "side",
                "Do you want to buy, sell, or see a two-way price?",
                [str(s) for s in Side],
            )
            return None
        best = max(spans, key=lambda s: s.confidence)
        side = _SIDE_TAGS[best.tag]
        self.check_confidence("side", [best], str(side).replace("_", "-"), [str(side)])
        return side

    # -- template structures ---------------------------------------------------------------

    def structure(self) -> Structure | None:
        """Structure from the family and option-type tags."""
        family_spans = self.of(*_STRUCTURE_TAGS)
        families = {s.tag for s in family_spans}
        types = {_TYPE_TAGS[s.tag] for s in self.of(Tag.CALL, Tag.PUT)}
        types |= {_IMPLIED_TYPE[t] for t in families if t in _IMPLIED_TYPE}
        fixed = [t for t in _FIXED_STRUCTURES if t in families]
        typed = [t for t in _TYPED_STRUCTURES if t in families]
        structure: Structure | None = None
        if fixed:
            structure = _FIXED_STRUCTURES[fixed[0]]
        elif typed or families:
            family = typed[0] if typed else Tag.SPREAD
            structure = self.typed_structure(family, types)
        elif len(types) == 1:
            (option_type,) = types
            structure = Structure.CALL if option_type is OptionType.CALL else Structure.PUT
        elif types:
            self.ask("structure", "Which structure do you mean?", [])
        else:
            self.ask("option_type", "Calls or puts?", [str(t) for t in OptionType])
        if structure is not None:
            deciding = family_spans or self.of(Tag.CALL, Tag.PUT)
            shown = str(structure).replace("_", " ")
            self.check_confidence("structure", deciding, shown, [str(structure)])
        return structure

    def typed_structure(self, family: Tag, types: set[OptionType]) -> Structure | None:
        by_type = _TYPED_STRUCTURES[family]
        if any(_IRON.search(self.text[: s.start]) for s in self.of(family)):
            # "iron condor", "iron fly": puts and calls, which no template here is
            self.ask(
                "structure",
                "Which structure: iron structures (puts and calls) are not quoted as one; "
                "the calls alone, or the legs one by one?",
                [str(s) for s in by_type.values()],
            )
            return None
        if not types and family in _DEFAULT_TYPE:
            types = {_DEFAULT_TYPE[family]}
        if len(types) != 1:
            self.ask("option_type", "Calls or puts?", [str(t) for t in by_type])
            return None
        (option_type,) = types
        if option_type not in by_type:
            self.ask(
                "structure", "Which structure do you mean?", [str(s) for s in by_type.values()]
            )
            return None
        return by_type[option_type]

    def template(
        self, underlying: str | None
    ) -> tuple[Structure | None, Side | None, Decimal | None, tuple[Leg, ...], bool]:
        structure = self.structure()
        side = self.side(structure)
        quantity = self.quantity(self.of(Tag.QUANTITY), underlying)
        shape = None if structure is None else structure_shape(structure)
        ratio: int | None = None
        if shape is not None and shape.has_ratio:
            ratios = {r for s in self.of(Tag.RATIO) if (r := read_ratio(s.text))}
            if len(ratios) == 1:
                (ratio,) = ratios
            else:
                self.ask("structure", "Which ratio: 1x2 or 1x3?", ["1x2", "1x3"])
        strikes = self.strikes(self.of(Tag.STRIKE), underlying)
        if (len(strikes) != shape.strikes) if shape else not strikes:
            self.ask(
                "strike",
                _strike_question(structure, shape.strikes if shape else 1),
                [json_number(k) for k in strikes],
            )
        if structure in (Structure.STRANGLE, Structure.RISK_REVERSAL):
            self.check_put_below_call(structure, underlying)
        exp_spans = self.of(Tag.EXPIRY)
        expiries = self.expiries(exp_spans, shape.expiries if shape else None)
        if structure is None or shape is None or self.questions.keys() & {"structure", "strike"}:
            return structure, side, quantity, (), True
        placeholder = [_PLACEHOLDER_EXPIRY + timedelta(days=7 * i) for i in range(shape.expiries)]
        try:
            legs = build_legs(
                underlying or _PLACEHOLDER_UNDERLYING,
                structure,
                strikes,
                expiries if expiries is not None else placeholder,
                ratio,
            )
        except DomainError as error:
            self.ask(error.field.removesuffix("s").replace("expirie", "expiry"), error.reason)
            return structure, side, quantity, (), expiries is not None
        return structure, side, quantity, legs, expiries is not None

    def check_put_below_call(self, structure: Structure, underlying: str | None) -> None:
        """The template puts the put on the lower strike; ask back a line that pairs them the
        other way ("80 put / 60 call strangle"): each option type takes the strike stated
        just before it (or just after, when none is before)."""
        strikes = self.of(Tag.STRIKE)

        def paired(kind: Tag) -> Decimal | None:
            typed = self.of(kind)
            if len(typed) != 1:
                return None
            before = [s for s in strikes if s.start < typed[0].start]
            after = [s for s in strikes if s.start > typed[0].start]
            span = before[-1] if before else (after[0] if after else None)
            return None if span is None else self.strike_value(span, underlying)

        put, call = paired(Tag.PUT), paired(Tag.CALL)
        if put is not None and call is not None and put > call:
            name = str(structure).replace("_", " ")
            low, high = json_number(call), json_number(put)
            self.ask(
                "strike",
                f"A {name} here is the put at the lower strike and the call at the higher: "
                f"the {low} put and the {high} call?",
                [low, high],
            )

    # -- custom structures -----------------------------------------------------------------

    def custom(
        self, underlying: str | None
    ) -> tuple[Structure | None, Side | None, Decimal | None, tuple[Leg, ...], bool]:
        """Legs stated one by one, each after its own buy/sell cue."""
        cues = self.of(Tag.LEG_BUY, Tag.LEG_SELL)
        bounds = [c.start for c in cues[1:]] + [math.inf]
        segments = [
            [s for s in self.spans if (i == 0 or s.start >= cue.start) and s.start < end]
            for i, (cue, end) in enumerate(zip(cues, bounds, strict=True))
        ]
        per_leg = [_LegSpans.of(segment) for segment in segments]
        sizes = [self.leg_size(leg.quantity) for leg in per_leg]
        known_sizes = {s for s in sizes if s is not None}
        types = {leg.option_type for leg in per_leg if leg.option_type}
        legs: list[tuple[Direction, Decimal, date | None, OptionType, Decimal]] = []
        # A leg that names no expiry shares the one stated before it ("Dec 70k and 80k"),
        # or the first one stated when it comes first.
        stated = [leg.expiry for leg in per_leg if leg.expiry]
        expiry_span = stated[0] if stated else None
        for cue, leg, size in zip(cues, per_leg, sizes, strict=True):
            if size is None and len(known_sizes) == 1:
                size = next(iter(known_sizes))
            expiry_span = leg.expiry or expiry_span
            expiry = self.leg_expiry(expiry_span)
            option_type = leg.option_type or (next(iter(types)) if len(types) == 1 else None)
            strikes = self.strikes(leg.strikes, underlying)
            if size is None:
                self.ask("quantity", "What size for each leg?", [])
            if option_type is None:
                self.ask(
                    "option_type", "Calls or puts, for each leg?", [str(t) for t in OptionType]
                )
            if len(strikes) != 1:
                self.ask("strike", "Which strike for each leg?", [json_number(k) for k in strikes])
            if size is None or option_type is None or len(strikes) != 1:
                continue
            legs.append((_LEG_TAGS[cue.tag], size, expiry, option_type, strikes[0]))
        directions = [str(_LEG_TAGS[c.tag]) for c in cues]
        self.check_confidence("structure", cues, " / ".join(directions), [Structure.CUSTOM.value])
        if self.questions.keys() & {"quantity", "option_type", "strike"}:
            return Structure.CUSTOM, Side.BUY, None, (), True
        structure, side, quantity, built, known = self.recognised(underlying, legs)
        return structure, self.custom_side(side), quantity, built, known

    def custom_side(self, stated: Side | None) -> Side | None:
        """The side of legs stated one by one is the way they were stated (the buyer's, or
        the seller's flipped), unless a side cue says otherwise: "2-way on: buy … and sell …"
        asks for both sides; a cue for the other side contradicts the legs and is asked."""
        cues = {_SIDE_TAGS[s.tag] for s in self.of(Tag.BUY, Tag.SELL, Tag.TWO_WAY)}
        if not cues or cues == {stated}:
            return stated
        if cues == {Side.TWO_WAY}:
            return Side.TWO_WAY
        self.ask(
            "side",
            "Do you want to trade the legs as you stated them, the other way, or see a two-way "
            "price?",
            [str(s) for s in Side],
        )
        return None

    def leg_size(self, spans: Sequence[TaggedSpan]) -> Decimal | None:
        values = set()
        for span in spans:
            try:
                values.add(normalise_quantity(span.text))
            except DomainError:
                continue
        return next(iter(values)) if len(values) == 1 else None

    def leg_expiry(self, span: TaggedSpan | None) -> date | None:
        if span is None:
            self.ask("expiry", "Which expiry, for each leg?")
            return None
        readings = read_expiry(span.text, self.as_of)
        if len(readings) != 1:
            self.ask(
                "expiry", _expiry_question(span.text, readings), [d.isoformat() for d in readings]
            )
            return None
        shown = readings[0].isoformat()
        self.check_confidence("expiry", [span], shown, [shown])
        return readings[0]

    def recognised(
        self,
        underlying: str | None,
        stated: Sequence[tuple[Direction, Decimal, date | None, OptionType, Decimal]],
    ) -> tuple[Structure | None, Side | None, Decimal | None, tuple[Leg, ...], bool]:
        """Legs of a custom line, as the template they form when they form one."""
        known = all(expiry is not None for _, _, expiry, _, _ in stated)
        sizes = [size for _, size, _, _, _ in stated]
        quantity = _common_size(sizes)
        if quantity is None:
            self.ask("quantity", "What size for each leg?", [json_number(s) for s in sizes])
            return Structure.CUSTOM, Side.BUY, None, (), known
        legs = [
            Leg(
                Instrument(
                    underlying or _PLACEHOLDER_UNDERLYING,
                    expiry or _PLACEHOLDER_EXPIRY,
                    strike,
                    option_type,
                ),
                int(size / quantity),
                direction,
            )
            for direction, size, expiry, option_type, strike in stated
        ]
        if len(set(legs)) != len(legs) or not known:
            return Structure.CUSTOM, Side.BUY, quantity, tuple(legs), known
        found = recognise(legs)
        if found.orientation is Direction.SELL:
            return found.structure, Side.SELL, quantity, tuple(leg.flipped() for leg in legs), known
        return found.structure, Side.BUY, quantity, tuple(legs), known


@dataclass(frozen=True, slots=True)
class _LegSpans:
    """The spans of one stated leg of a custom structure."""

    quantity: list[TaggedSpan]
    expiry: TaggedSpan | None
    strikes: list[TaggedSpan]
    option_type: OptionType | None

    @classmethod
    def of(cls, spans: Sequence[TaggedSpan]) -> _LegSpans:
        types = {_TYPE_TAGS[s.tag] for s in spans if s.tag in _TYPE_TAGS}
        expiries = [s for s in spans if s.tag is Tag.EXPIRY]
        return cls(
            quantity=[s for s in spans if s.tag is Tag.QUANTITY],
            expiry=expiries[0] if expiries else None,
            strikes=[s for s in spans if s.tag is Tag.STRIKE],
            option_type=next(iter(types)) if len(types) == 1 else None,
        )


def _common_size(sizes: Sequence[Decimal]) -> Decimal | None:
    """Largest size every leg is a whole multiple of (the structure quantity)."""
    if len(set(sizes)) == 1:
        return sizes[0]
    if any(s != s.to_integral_value() for s in sizes):
        return None
    return Decimal(math.gcd(*(int(s) for s in sizes)))


_SIZE_WORDS = re.compile(r"\b(half|part|partial|partly|some|only|quarter|third|lots?)\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_PRICE_BEFORE = re.compile(r"(?:\bat|@)\s*\$?\s*$", re.I)


def _states_a_size(text: str) -> bool:
    """Whether an accept line mentions a size: a fraction word, or a number that is not the
    price it trades at ("mine at 1250", "done @ 0.0123") nor a coin price (below 1)."""
    if _SIZE_WORDS.search(text):
        return True
    text = re.sub(r"\bx(?=\d)", " ", text, flags=re.I)  # "x50": a size written first
    for match in _NUMBER.finditer(text):
        if _PRICE_BEFORE.search(text[: match.start()]):
            continue
        if Decimal(match.group().replace(",", "")) < 1:
            continue
        return True
    return False


def _expiry_question(text: str, readings: Sequence[date]) -> str:
    if not readings:
        return f"Which expiry do you mean by {text!r}?"
    options = " or ".join(f"{d.day} {d:%b %Y}" for d in readings)
    return f"Which expiry do you mean by {text!r}: {options}?"


def _strike_question(structure: Structure | None, wanted: int) -> str:
    name = "option" if structure is None else str(structure).replace("_", " ")
    return (
        f"Which strike for the {name}?"
        if wanted == 1
        else f"Which {wanted} strikes for the {name}?"
    )
