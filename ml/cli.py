"""Command line of the models: ``rfqdesk sim | train | models | export``.

The service's CLI mounts these Typer apps (``app.cli.register("sim", sim_app)`` …). Every
command reads the database URL from the service settings (``RFQDESK_DATABASE_URL``) unless
``--database-url`` is given.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = ["export_app", "models_app", "retrain_cmd", "sim_app", "train_app"]

console = Console(width=None if Console().is_terminal else 110)
sim_app = typer.Typer(
    help="Market simulator: fill a database with simulated RFQ flow.", no_args_is_help=True
)
train_app = typer.Typer(help="Train the fill and hit models from the log.", no_args_is_help=True)
models_app = typer.Typer(
    help="Registered models: evaluate, predict, promote, list.", no_args_is_help=True
)
export_app = typer.Typer(help="Export the log tables to Parquet.")

TRUTH_DIR = Path("var/sim_truth")
DbOpt = Annotated[
    str | None, typer.Option("--database-url", help="Default: the service's RFQDESK_DATABASE_URL")
]
SinceOpt = Annotated[
    str | None, typer.Option(help="Only RFQs created on or after (ISO date or time, UTC)")
]
UntilOpt = Annotated[str | None, typer.Option(help="Only RFQs created before (ISO, UTC)")]
FromFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--from-file", help="Read a Parquet export (rfqdesk export) instead of the database"
    ),
]


def _db_url(url: str | None) -> str:
    if url:
        return url
    from app.config import get_settings

    return get_settings().database_url


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = (
        datetime.fromisoformat(text)
        if "T" in text or " " in text
        else datetime.combine(date.fromisoformat(text), datetime.min.time())
    )
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _ensure_schema(url: str) -> None:
    from app import migrate
    from app.config import Settings

    path = Settings(database_url=url).sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)


def _read_log(
    database_url: str | None, from_file: Path | None, since: str | None, until: str | None
) -> Any:
    from ml.export import read_log_db, read_log_parquet

    lo, hi = _when(since), _when(until)
    if from_file is not None:
        with console.status(f"reading {from_file}"):
            return read_log_parquet(from_file, lo, hi)
    url = _db_url(database_url)
    with _progress() as prog:
        task = prog.add_task("reading the log", total=None)

        def tick(table: str, rows: int) -> None:
            prog.update(task, advance=rows, description=f"reading {table}")

        return asyncio.run(read_log_db(url, lo, hi, progress=tick))


# --------------------------------------------------------------------------- sim


@sim_app.command("run")
def sim_run(
    rfqs: Annotated[int, typer.Option(min=1, help="Number of RFQs")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the events")] = 7,
    world_seed: Annotated[
        int, typer.Option(help="Seed of the hidden market (dealers, clients)")
    ] = 0,
    start: Annotated[str, typer.Option(help="First day simulated (UTC)")] = "2026-01-05",
    rfqs_per_day: Annotated[float, typer.Option(help="Average arrivals per day")] = 800.0,
    database_url: DbOpt = None,
    truth_dir: Annotated[
        Path, typer.Option(help="Where the true probabilities go (never into the log)")
    ] = TRUTH_DIR,
    export: Annotated[
        Path | None, typer.Option(help="Also write the log as a Parquet export here")
    ] = None,
    no_db: Annotated[
        bool, typer.Option("--no-db", help="Do not write to the database (use with --export)")
    ] = False,
) -> None:
    """Simulate RFQ flow and write it into the log tables (and its truth apart)."""
    from ml.export import LogData, export_log
    from ml.sim import SimConfig, simulate
    from ml.sim.io import write_truth
    from ml.sim.writer import write_log_db

    cfg = SimConfig(
        n_rfqs=rfqs,
        seed=seed,
        world_seed=world_seed,
        start=_when(start) or SimConfig.start,
        rfqs_per_day=rfqs_per_day,
    )
    url = _db_url(database_url)
    started = time.perf_counter()
    with _progress() as prog:
        task = prog.add_task("simulating RFQs", total=rfqs)
        result = simulate(cfg, progress=lambda n: prog.advance(task, n))
        prog.update(task, completed=rfqs)
        if not no_db:
            _ensure_schema(url)
            total = sum(t.num_rows for t in result.tables.values())
            wtask = prog.add_task("writing rows", total=total)

            def wrote(table: str, rows: int) -> None:
                prog.update(wtask, advance=rows, description=f"writing {table}")

            asyncio.run(write_log_db(result.tables, url, progress=wrote))
            prog.update(wtask, completed=total)
    write_truth(result, truth_dir)
    if export is not None:
        export_log(LogData(result.tables, source="sim"), export)
    s = result.stats
    console.print(
        f"simulated {s['rfqs']:,} RFQs over {s['days']:.1f} days "
        f"({s['dealer_requests']:,} dealer requests, answer rate {s['answer_rate']:.1%}, "
        f"client hit rate {s['client_hit_rate']:.1%}) in {time.perf_counter() - started:.0f} s"
    )
    if not no_db:
        from ml.export import _redact

        console.print(f"log written to {_redact(url)}")
    console.print(f"true probabilities in {truth_dir}")
    if export is not None:
        console.print(f"Parquet export in {export}")


# --------------------------------------------------------------------------- train


def _train(
    name: str,
    since: str | None,
    until: str | None,
    from_file: Path | None,
    database_url: str | None,
    dask: str | None,
    out: Path,
    nthread: int,
    rounds: int,
) -> None:
    from ml.fill.train import train_fill
    from ml.hit.train import train_hit

    started = time.perf_counter()
    log = _read_log(database_url, from_file, since, until)
    fn = train_fill if name == "fill" else train_hit
    with console.status(f"training {name} (features, then xgboost)"):
        art = fn(log, out, nthread=nthread, rounds=rounds, dask_address=dask)
    table = Table(title=f"{name} {art.version} (time-ordered test block)")
    for col in ("output", "rows", "trees", "calib.", "log-loss", "Brier", "AUC", "rel. gap"):
        table.add_column(col, no_wrap=True)
    heads = art.manifest["heads"]
    for out_name, m in art.manifest["metrics"].items():
        h = heads.get(out_name, {})
        table.add_row(
            out_name,
            f"{m['n']:,}",
            str(h.get("trees", "")),
            str(h.get("calibration", {}).get("kind", "")),
            f"{m['log_loss']:.4f}",
            f"{m['brier']:.4f}",
            f"{m['auc']:.4f}",
            f"{m['reliability_gap']:.3f}",
        )
    console.print(table)
    console.print(f"artifact: {art.path}  ({time.perf_counter() - started:.0f} s)")
    console.print(f"promote with: rfqdesk models promote {name} {art.version}")


_OUT = Annotated[Path, typer.Option(help="Registry folder for the new version")]
_NTHREAD = Annotated[
    int,
    typer.Option(
        help="xgboost threads (1 on a shared machine: OpenMP threads spin on busy cores; "
        "raise it on a dedicated one)"
    ),
]
_ROUNDS = Annotated[int, typer.Option(help="Maximum boosting rounds (early stopping)")]
_DASK = Annotated[
    str | None, typer.Option("--dask", help="Train on this Dask scheduler (tcp://host:8786)")
]


@train_app.command("fill")
def train_fill_cmd(
    since: SinceOpt = None,
    until: UntilOpt = None,
    from_file: FromFileOpt = None,
    database_url: DbOpt = None,
    dask: _DASK = None,
    out: _OUT = Path("var/models"),
    nthread: _NTHREAD = 1,
    rounds: _ROUNDS = 500,
) -> None:
    """Train the dealer-fill model (P(answer), P(win)) and write a new version."""
    _train("fill", since, until, from_file, database_url, dask, out, nthread, rounds)


@train_app.command("hit")
def train_hit_cmd(
    since: SinceOpt = None,
    until: UntilOpt = None,
    from_file: FromFileOpt = None,
    database_url: DbOpt = None,
    dask: _DASK = None,
    out: _OUT = Path("var/models"),
    nthread: _NTHREAD = 1,
    rounds: _ROUNDS = 500,
) -> None:
    """Train the client hit model (monotone in the markup) and write a new version."""
    _train("hit", since, until, from_file, database_url, dask, out, nthread, rounds)


# --------------------------------------------------------------------------- models


def _roots(registry: Path | None) -> list[Path] | None:
    from ml.registry import default_roots

    return [registry, *default_roots()] if registry else None


_REG = Annotated[Path | None, typer.Option(help="Extra registry folder to look in")]


def _load(name: str, version: str | None, registry: Path | None) -> Any:
    from ml.registry import ArtifactError, load_artifact, resolve

    try:
        return load_artifact(resolve(name, version, _roots(registry)), name)
    except ArtifactError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@models_app.command("evaluate")
def models_evaluate(
    name: Annotated[str, typer.Argument(help="fill, hit or intent")],
    version: Annotated[str | None, typer.Option(help="Default: the pinned default")] = None,
    from_file: FromFileOpt = None,
    database_url: DbOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    truth: Annotated[
        Path | None, typer.Option(help="sim_truth directory (default var/sim_truth when present)")
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option(
            help="Reliability curve PNG (default var/reports/reliability-NAME-VERSION.png)"
        ),
    ] = None,
    registry: _REG = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="intent: labelled JSON lines to score")
    ] = None,
) -> None:
    """Print log-loss, Brier and AUC next to the simulator's own, and draw reliability
    (intent: accuracy, exact match, per-field accuracy and confusion on --data)."""
    if name == "intent":
        from ml.intent.cli import evaluate as evaluate_intent

        if data is None:
            raise typer.BadParameter("intent needs --data FILE", param_hint="--data")
        evaluate_intent(data=data, model=None, threads=None, show_errors=10)
        return
    from ml.evaluate import evaluate
    from ml.sim.io import read_truth

    art = _load(name, version, registry)
    log = _read_log(database_url, from_file, since, until)
    tdir = truth or (TRUTH_DIR if TRUTH_DIR.is_dir() else None)
    truth_tables = read_truth(tdir) if tdir else None
    out = png or Path("var/reports") / f"reliability-{name}-{art.version}.png"
    with console.status("scoring"):
        report = evaluate(art, log, truth_tables, out)
    table = Table(title=f"{name} {art.version} on {log.source}")
    for col in (
        "output",
        "rows",
        "log-loss model / sim",
        "ratio",
        "AUC model / sim",
        "gap",
        "Brier model / sim",
        "rel. gap",
    ):
        table.add_column(col, no_wrap=True)
    for h in report.heads:
        t = h.truth
        table.add_row(
            h.head,
            f"{h.model.n:,}",
            f"{h.model.log_loss:.4f} / {t.log_loss:.4f}" if t else f"{h.model.log_loss:.4f}",
            f"{h.log_loss_ratio:.3f}" if t else "-",
            f"{h.model.auc:.4f} / {t.auc:.4f}" if t else f"{h.model.auc:.4f}",
            f"{h.auc_gap:+.4f}" if t else "-",
            f"{h.model.brier:.4f} / {t.brier:.4f}" if t else f"{h.model.brier:.4f}",
            f"{h.model.reliability_gap:.3f}",
        )
    console.print(table)
    if truth_tables is None:
        console.print("no simulator truth found: model figures only")
    console.print(f"reliability curve: {out}")
    out.with_suffix(".json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")


@models_app.command("predict")
def models_predict(
    name: Annotated[str, typer.Argument(help="fill or hit")],
    from_file: Annotated[Path, typer.Option("--from-file", help="A Parquet export")],
    out: Annotated[Path, typer.Option(help="CSV to write")],
    version: Annotated[str | None, typer.Option(help="Default: the pinned default")] = None,
    registry: _REG = None,
) -> None:
    """Write the predicted probabilities of every dealer request / client quote to CSV."""
    from ml.evaluate import write_predictions_csv
    from ml.export import read_log_parquet

    art = _load(name, version, registry)
    log = read_log_parquet(from_file)
    with console.status("predicting"):
        n = write_predictions_csv(art, log, out)
    console.print(f"{n:,} rows written to {out}")


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="fill or hit")],
    version: Annotated[str, typer.Argument(help="Version directory name")],
    database_url: DbOpt = None,
    registry: _REG = None,
) -> None:
    """Make VERSION the active NAME model (the service hot-reloads it)."""
    from ml.registry import ArtifactError, promote

    async def run() -> Any:
        from app.config import Settings
        from app.db import create_engine, create_sessionmaker

        engine = create_engine(Settings(database_url=_db_url(database_url)))
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await promote(session, name, version, _roots(registry))
        finally:
            await engine.dispose()

    try:
        row = asyncio.run(run())
    except ArtifactError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"{name} {version} is active ({row.path}, manifest sha256 {row.sha256[:12]}…)")


@models_app.command("list")
def models_list(
    name: Annotated[str, typer.Argument(help="fill or hit")],
    registry: _REG = None,
) -> None:
    """List the versions of NAME found in the registry folders."""
    from ml.registry import DEFAULT_VERSIONS, list_versions

    for version, path in list_versions(name, _roots(registry)):
        mark = " (default)" if DEFAULT_VERSIONS.get(name) == version else ""
        console.print(f"{version}{mark}  {path}")


# --------------------------------------------------------------------------- export


@export_app.callback(invoke_without_command=True)
def export(
    out: Annotated[Path, typer.Option(help="Directory for the Parquet files")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Export the log tables to Parquet (format: ml/EXPORT.md)."""
    from ml.export import export_log

    log = _read_log(database_url, None, since, until)
    counts = export_log(log, out)
    console.print(", ".join(f"{k} {v:,}" for k, v in counts.items()))
    console.print(f"export written to {out}")


# --------------------------------------------------------------------------- retrain


def retrain_cmd(
    database_url: DbOpt = None,
    names: Annotated[
        list[str] | None, typer.Option("--name", help="fill and/or hit (default: both)")
    ] = None,
    intent: Annotated[
        bool, typer.Option("--intent", help="Also retrain the intent model (slow: minutes)")
    ] = False,
    recent_days: Annotated[
        float, typer.Option(help="Most recent window, in days: held out and shadow-scored")
    ] = 7.0,
    min_improvement: Annotated[
        float, typer.Option(help="Relative log-loss gain needed to promote (0.005 = 0.5%)")
    ] = 0.005,
    out: _OUT = Path("var/models"),
    nthread: _NTHREAD = 1,
    rounds: _ROUNDS = 500,
) -> None:
    """Train new versions from the log, shadow-score each against the active one on the most
    recent window, record both in model_version, and promote only a better one."""
    from ml.retrain import NameResult, retrain, retrain_intent

    url = _db_url(database_url)
    chosen = tuple(names or ("fill", "hit"))
    started = time.perf_counter()
    with console.status(f"retraining {', '.join(chosen)}"):
        report = retrain(
            url,
            chosen,
            out,
            recent_days=recent_days,
            min_improvement=min_improvement,
            nthread=nthread,
            rounds=rounds,
        )
    results: list[NameResult] = list(report.results)
    if intent:

        async def run_intent() -> NameResult:
            from app.config import Settings
            from app.db import create_engine, create_sessionmaker

            engine = create_engine(Settings(database_url=url))
            try:
                return await retrain_intent(
                    create_sessionmaker(engine), out, min_improvement=min_improvement
                )
            finally:
                await engine.dispose()

        results.append(asyncio.run(run_intent()))
    lo, hi = report.window
    table = Table(title=f"retraining: shadow window {lo:%Y-%m-%d %H:%M} – {hi:%Y-%m-%d %H:%M} UTC")
    for col in (
        "model",
        "candidate",
        "incumbent",
        "rows",
        "log-loss cand. / inc.",
        "Brier cand. / inc.",
        "AUC cand. / inc.",
        "promoted",
        "why",
    ):
        table.add_column(col, overflow="fold")

    def pair(key: str, r: NameResult) -> str:
        def one(s: dict[str, Any]) -> str:
            vals = [h.get(key) for h in s.get("heads", {}).values() if h.get(key) is not None]
            return " ".join(f"{v:.4f}" for v in vals) if vals else "-"

        return f"{one(r.candidate_scores)} / {one(r.incumbent_scores)}"

    for r in results:
        table.add_row(
            r.name,
            r.candidate or "-",
            f"{r.incumbent or '-'} ({r.incumbent_source})",
            str(r.candidate_scores.get("n", "-")),
            pair("log_loss", r) if r.name != "intent" else "-",
            pair("brier", r) if r.name != "intent" else "-",
            pair("auc", r) if r.name != "intent" else "-",
            "[green]yes[/green]" if r.promoted else "no",
            r.reason,
        )
    console.print(table)
    console.print(f"done in {time.perf_counter() - started:.0f} s")
