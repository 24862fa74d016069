"""Command line of the intent model: ``train``, ``parse``, ``evaluate``.

Mounted by the project CLI as ``rfqdesk train intent``, ``rfqdesk parse`` and
``rfqdesk models evaluate intent``; runnable alone as ``python -m ml.intent.cli``.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ml.intent.evaluate import Report, print_report
from ml.intent.model import ARTIFACTS_DIR, IntentParser, latest_artifact
from ml.intent.train import TrainConfig
from ml.intent.train import train as train_model

app = typer.Typer(
    help="Intent model: train it, parse chat lines, evaluate it.", no_args_is_help=True
)

BATCH = 64

ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model", help="Artifact directory; default: the newest under ml/artifacts/intent."
    ),
]
ThreadsOption = Annotated[int | None, typer.Option("--threads", help="torch threads.")]


def _today() -> date:
    return datetime.now(UTC).date()


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="Parent folder of the new artifact.")] = ARTIFACTS_DIR,
    examples: Annotated[int, typer.Option(help="Synthetic training lines.")] = 16_000,
    seed: Annotated[int, typer.Option(help="Generator and shuffling seed.")] = 0,
    epochs: Annotated[int, typer.Option(help="Passes over the training lines.")] = 1,
    threads: ThreadsOption = None,
) -> None:
    """Train the intent model on synthetic chat and write a new artifact."""
    path = train_model(out, examples, seed, epochs, config=TrainConfig(), threads=threads)
    typer.echo(path)


def _messages(lines: Iterable[str], as_of: date) -> Iterator[tuple[str, date]]:
    """Plain lines, or JSON objects with ``text`` and an optional ``as_of``."""
    for raw in lines:
        line = raw.rstrip("\n")
        if line.lstrip().startswith("{"):
            try:
                item: Any = json.loads(line)
            except json.JSONDecodeError:
                item = None
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                when = item.get("as_of")
                yield item["text"], date.fromisoformat(when) if when else as_of
                continue
        yield line, as_of


@app.command()
def parse(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Request date (YYYY-MM-DD); default today.")
    ] = None,
    model: ModelOption = None,
    threads: ThreadsOption = 1,
) -> None:
    """Parse chat lines from stdin; print one canonical JSON object per line."""
    parser = IntentParser.load(model or latest_artifact(), num_threads=threads)
    default = date.fromisoformat(as_of) if as_of else _today()
    messages = _messages(sys.stdin, default)
    # A terminal gets each answer at once; a pipe is parsed in batches.
    size = 1 if sys.stdin.isatty() else BATCH
    while batch := list(itertools.islice(messages, size)):
        for output in parser.parse_batch(batch):
            sys.stdout.write(json.dumps(output) + "\n")
        sys.stdout.flush()


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="JSON lines with text, as_of, expected.")],
    model: ModelOption = None,
    threads: ThreadsOption = None,
    show_errors: Annotated[int, typer.Option(help="Print up to this many mismatches.")] = 10,
) -> None:
    """Score the model on labelled lines: intent accuracy, exact match, per field, confusion."""
    console = Console()
    parser = IntentParser.load(model or latest_artifact(), num_threads=threads)
    items = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    report = Report()
    errors = []
    for at in range(0, len(items), BATCH):
        chunk = items[at : at + BATCH]
        outputs = parser.parse_batch(
            [
                (i["text"], date.fromisoformat(i["as_of"]) if i.get("as_of") else _today())
                for i in chunk
            ]
        )
        for item, output in zip(chunk, outputs, strict=True):
            if not report.add(output, item["expected"]):
                errors.append((item, output))
    print_report(report, console, f"intent model {parser.version} on {data.name}")
    for item, output in errors[:show_errors]:
        console.print(f"[red]✗[/] {item['text']!r}")
        console.print(f"  expected {json.dumps(item['expected'])}", markup=False)
        console.print(f"  parsed   {json.dumps(output)}", markup=False)
    if errors:
        console.print(f"{len(errors)} of {report.n} lines differ")


if __name__ == "__main__":
    app()
