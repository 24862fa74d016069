"""Scoring parses against labelled canonical outputs.

A parse matches its label when the intent agrees and, by intent:

- ``rfq`` with ``needs_clarification`` in the label: the parse asks about exactly the same
  fields (questions and candidates are free text), and its ``rfq`` matches the label's when
  the label gives one;
- ``rfq`` otherwise: the parse asks nothing and every field of ``rfq`` agrees, legs compared
  as a set;
- ``accept``: the side agrees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from ml.intent.labels import INTENTS

RFQ_FIELDS = ("underlying", "structure", "side", "quantity", "legs", "hedge_reference")
"""Fields of an RFQ scored one by one."""


def _legs(legs: Iterable[dict[str, Any]]) -> Counter[tuple[tuple[str, Any], ...]]:
    return Counter(tuple(sorted(leg.items())) for leg in legs)


def field_equal(name: str, predicted: Any, expected: Any) -> bool:
    """Whether one RFQ field agrees (legs as a multiset, numbers by value)."""
    if name == "legs":
        return _legs(predicted or []) == _legs(expected or [])
    return bool(predicted == expected)


def clarified_fields(output: dict[str, Any]) -> frozenset[str]:
    """Fields a parse asks about."""
    return frozenset(q["field"] for q in output.get("needs_clarification", []))


def matches(predicted: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether a parse matches its label (see the module docstring)."""
    if predicted.get("intent") != expected.get("intent"):
        return False
    if clarified_fields(predicted) != clarified_fields(expected):
        return False
    if expected["intent"] == "accept":
        return bool(predicted.get("side") == expected.get("side"))
    if expected["intent"] != "rfq" or "rfq" not in expected:
        return True
    got, want = predicted.get("rfq") or {}, expected["rfq"]
    return all(field_equal(f, got.get(f), want.get(f)) for f in RFQ_FIELDS)


@dataclass
class Report:
    """Scores of parses against their labels."""

    n: int = 0
    intent_correct: int = 0
    exact: int = 0
    rfq_n: int = 0
    rfq_exact: int = 0
    clarify_n: int = 0
    clarify_correct: int = 0
    field_correct: Counter[str] = field(default_factory=Counter)
    field_n: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, predicted: dict[str, Any], expected: dict[str, Any]) -> bool:
        """Score one parse; returns whether it matched."""
        self.n += 1
        want, got = expected["intent"], predicted.get("intent", "")
        self.confusion[want, got] += 1
        self.intent_correct += want == got
        ok = matches(predicted, expected)
        self.exact += ok
        if want == "rfq":
            self.rfq_n += 1
            self.rfq_exact += ok
        if "needs_clarification" in expected:
            self.clarify_n += 1
            self.clarify_correct += clarified_fields(predicted) == clarified_fields(expected)
        elif want == "rfq":
            self.field_n += 1
            got_rfq = predicted.get("rfq") or {}
            for name in RFQ_FIELDS:
                self.field_correct[name] += field_equal(
                    name, got_rfq.get(name), expected["rfq"][name]
                )
        return ok

    def metrics(self) -> dict[str, Any]:
        """Rates, as plain JSON (for manifests)."""

        def rate(k: int, n: int) -> float | None:
            return round(k / n, 4) if n else None

        return {
            "n": self.n,
            "intent_accuracy": rate(self.intent_correct, self.n),
            "exact_match": rate(self.exact, self.n),
            "rfq_exact_match": rate(self.rfq_exact, self.rfq_n),
            "clarification_field_accuracy": rate(self.clarify_correct, self.clarify_n),
            "field_accuracy": {f: rate(self.field_correct[f], self.field_n) for f in RFQ_FIELDS},
        }


def score(pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> Report:
    """Report over (predicted, expected) pairs."""
    report = Report()
    for predicted, expected in pairs:
        report.add(predicted, expected)
    return report


def print_report(report: Report, console: Console, title: str) -> None:
    """Rich tables: headline rates, per-field accuracy, intent confusion."""
    metrics = report.metrics()
    head = Table(title=title)
    head.add_column("metric")
    head.add_column("value", justify="right")
    for name in ("n", "intent_accuracy", "exact_match", "rfq_exact_match"):
        head.add_row(name, _show(metrics[name]))
    head.add_row("clarification fields", _show(metrics["clarification_field_accuracy"]))
    for name, value in metrics["field_accuracy"].items():
        head.add_row(f"rfq.{name}", _show(value))
    console.print(head)
    confusion = Table(title="intent confusion (rows: expected, columns: parsed)")
    confusion.add_column("expected \\ parsed")
    names = [str(i) for i in INTENTS]
    for name in names:
        confusion.add_column(name, justify="right")
    for want in names:
        confusion.add_row(want, *(str(report.confusion[want, got]) for got in names))
    console.print(confusion)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
