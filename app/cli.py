"""The operator's command line: ``rfqdesk serve | db | keys | analytics | demo | openapi``."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from app.auth.keys import Role
from app.config import get_settings

cli = typer.Typer(
    help="rfqdesk: the block options RFQ engine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys.", no_args_is_help=True)
sim_cli = typer.Typer(help="The market simulator and simulated dealers.", no_args_is_help=True)
cli.add_typer(sim_cli, name="sim")
cli.add_typer(db_cli, name="db")
cli.add_typer(keys_cli, name="keys")
analytics_cli = typer.Typer(help="Analytics: stored markouts, daily rollups.", no_args_is_help=True)
cli.add_typer(analytics_cli, name="analytics")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the HTTP service."""
    import os

    import uvicorn

    os.environ["RFQDESK_SERVE_WORKERS"] = str(workers)  # Settings.serve_workers, per worker
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
    )


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default head) on RFQDESK_DATABASE_URL."""
    from app import migrate

    url = get_settings().database_url
    _ensure_sqlite_dir()
    migrate.upgrade(url, revision)
    typer.echo(f"database at {revision}: {_redact(url)}")


@db_cli.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base")) -> None:
    """Revert migrations down to REVISION."""
    from app import migrate

    migrate.downgrade(get_settings().database_url, revision)


@db_cli.command("check")
def db_check() -> None:
    """Fail when the models and the migrated schema differ (drift)."""
    from app import migrate

    migrate.check(get_settings().database_url)
    typer.echo("no drift")


@keys_cli.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="sales, bot, dealer, analyst or admin")],
    name: Annotated[str, typer.Option(help="Who holds the key")],
    dealer_id: Annotated[str | None, typer.Option(help="The dealer, for a dealer key")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    key = asyncio.run(_create_key(role, name, uuid.UUID(dealer_id) if dealer_id else None))
    typer.echo(key)


async def _create_key(role: Role, name: str, dealer_id: uuid.UUID | None) -> str:
    from app.auth.service import create_key
    from app.db import create_engine, create_sessionmaker

    engine = create_engine(get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            _, key = await create_key(session, role=role, name=name, dealer_id=dealer_id)
        return key
    finally:
        await engine.dispose()


@analytics_cli.command("refresh")
def analytics_refresh(
    rebuild: Annotated[
        bool,
        typer.Option(
            help="Recompute every rollup from the log's first day, replacing it day run by day"
            " run (after loading RFQs with past creation times)"
        ),
    ] = False,
) -> None:
    """Store the markouts of final fills and roll the reports up to the last complete day
    (what the service does every 5 minutes)."""
    from app.analytics.jobs import refresh
    from app.db import create_engine, create_sessionmaker

    async def run() -> None:
        engine = create_engine(get_settings())
        try:
            result = await refresh(create_sessionmaker(engine), rebuild=rebuild)
        finally:
            await engine.dispose()
        typer.echo(
            f"markouts stored: {result.markouts_stored} ({result.markouts_s:.1f} s); "
            f"rollup rows written: {result.rollup_rows} ({result.rollup_s:.1f} s); "
            f"complete through: {min(result.through.values(), default='-')}"
        )

    asyncio.run(run())


@cli.command()
def openapi(
    out: Annotated[Path, typer.Option(help="Where to write the spec")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI spec of the app (checked for drift by the tests)."""
    from app.openapi import render_openapi

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_openapi())
    typer.echo(f"wrote {out}")


@cli.command()
def demo(
    url: Annotated[str, typer.Option(help="The running service")] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None,
        typer.Option(
            envvar="RFQDESK_DEMO_KEY",
            help="A sales key; default: create one in the configured database",
        ),
    ] = None,
) -> None:
    """Post example RFQs to a running service and print what came back."""
    from app.demo import run_demo

    sys.exit(run_demo(url, key or asyncio.run(_create_key(Role.SALES, "demo", None))))


@sim_cli.command("dealers")
def sim_dealers(
    count: Annotated[int, typer.Option(min=1, max=50, help="How many dealers")] = 8,
    port: Annotated[int, typer.Option(help="Their port (one path per dealer)")] = 9100,
    host: Annotated[str, typer.Option(help="Their interface")] = "127.0.0.1",
    desk_url: Annotated[str, typer.Option(help="Where the desk runs (for answers sent later)")] = (
        "http://127.0.0.1:8000"
    ),
    seed: Annotated[int, typer.Option(help="Seed of their hidden behaviour")] = 11,
) -> None:
    """Register COUNT simulated dealers with the desk and serve them over HTTP."""
    import uvicorn

    from app.db import create_engine, create_sessionmaker
    from app.dealers.simulated import create_dealers_app, make_dealers, register_dealers

    dealers = make_dealers(count, seed)

    async def _register() -> None:
        engine = create_engine(get_settings())
        try:
            await register_dealers(create_sessionmaker(engine), dealers, f"http://{host}:{port}")
        finally:
            await engine.dispose()

    asyncio.run(_register())
    for d in dealers:
        typer.echo(
            f"{d.name}: mode={d.mode} p_answer={d.p_answer} latency_ms={d.latency_ms} "
            f"edge={d.edge_vol_points} width={d.half_width_vol_points} max_size={d.max_size}"
        )
    uvicorn.run(
        create_dealers_app(dealers, desk_url, seed=seed),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


def _ensure_sqlite_dir() -> None:
    path = get_settings().sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def register(name: str, sub: Any) -> None:
    """Mount a feature's sub-commands (``rfqdesk NAME ...``)."""
    cli.add_typer(sub, name=name)


def _mount_features() -> None:
    """The feature CLIs (imported here, so `rfqdesk serve` does not pay for them)."""
    from app.execution.cli import plot_app
    from ml.cli import export_app, models_app, retrain_cmd, sim_app, train_app
    from ml.intent.cli import app as intent_app

    register("plot", plot_app)
    register("train", train_app)
    register("models", models_app)
    register("export", export_app)
    cli.command("retrain")(retrain_cmd)
    # `rfqdesk sim run` (the market simulator) beside `rfqdesk sim dealers`
    sim_cli.registered_commands.extend(sim_app.registered_commands)
    # `rfqdesk train intent`, `rfqdesk parse`, `rfqdesk models evaluate intent`
    for command in intent_app.registered_commands:
        if command.callback is None:
            continue
        name = command.name or command.callback.__name__
        if name == "train":
            train_app.command("intent", help="Train the intent model (chat line → RFQ).")(
                command.callback
            )
        elif name == "parse":
            cli.command("parse")(command.callback)


def main() -> None:
    _mount_features()
    cli()


if __name__ == "__main__":
    main()
