"""``rfqdesk plot execution ID``: planned vs executed quantity and prices of one plan (PNG)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from app.execution.planning import PlanState

plot_app = typer.Typer(help="Charts of the desk's activity.", no_args_is_help=True)


@plot_app.callback()
def _plot() -> None:
    """Charts of the desk's activity (a group even with one chart, so ``plot execution ID``)."""


@plot_app.command("execution")
def execution(
    plan_id: Annotated[str, typer.Argument(help="The execution plan's id")],
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (default execution-ID.png)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database (default RFQDESK_DATABASE_URL)")
    ] = None,
) -> None:
    """Write a PNG of the plan's planned vs executed units and its fill prices."""
    try:
        pid = uuid.UUID(plan_id)
    except ValueError as exc:
        raise typer.BadParameter("not a plan id (UUID)") from exc
    plan = asyncio.run(_load(pid, database_url))
    if plan is None:
        typer.echo(f"no execution plan {plan_id}", err=True)
        raise typer.Exit(1)
    path = out or Path(f"execution-{plan_id}.png")
    render_execution(plan, path)
    typer.echo(f"wrote {path}")


async def _load(plan_id: uuid.UUID, database_url: str | None) -> PlanState | None:
    from app.config import Settings, get_settings
    from app.db import create_engine, create_sessionmaker
    from app.execution.repository import ExecutionRepository

    settings = Settings(database_url=database_url) if database_url else get_settings()
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return await ExecutionRepository(session).state(plan_id)
    finally:
        await engine.dispose()


def render_execution(plan: PlanState, path: Path) -> None:
    """Two panels: cumulative units planned (initial schedule and current one) vs executed;
    fill prices per leg against the leg's arrival price."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = datetime.fromisoformat(plan.params["start_at"])

    def minutes(at: str) -> float:
        return (datetime.fromisoformat(at) - start).total_seconds() / 60.0

    due = [minutes(e["due_at"]) for e in plan.schedule]
    initial = list(plan.params.get("planned_units", []))
    current = [float(e["target_units"]) for e in plan.schedule]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    if initial:
        top.step(due[: len(initial)], initial, where="post", label="planned (initial)", ls="--")
    top.step(due, current, where="post", label="planned (re-solved)", alpha=0.6)
    fills = sorted(plan.fills(), key=lambda f: (f["at"], f["trade_id"]))
    ratios = [leg.ratio for leg in plan.legs]
    done = [0.0] * len(ratios)
    xs, ys = [0.0], [0.0]
    for f in fills:
        done[int(f["leg"])] += float(f["quantity"])
        xs.append(minutes(f["at"]))
        ys.append(min(d / r for d, r in zip(done, ratios, strict=True)))
    top.step(xs, ys, where="post", label="executed (complete units)", lw=2)
    top.axhline(float(plan.quantity), color="grey", lw=0.8)
    top.set_ylabel("package units")
    top.set_title(f"execution {plan.id} ({plan.side} {plan.quantity}, {plan.state})")
    top.legend(loc="lower right")
    for i, leg in enumerate(plan.legs):
        pts = [(minutes(f["at"]), float(f["price"])) for f in fills if int(f["leg"]) == i]
        if pts:
            bottom.scatter(
                *zip(*pts, strict=True), s=14, color=f"C{i}", label=f"{leg.instrument} ({leg.side})"
            )
        if leg.arrival_price_coin is not None:
            bottom.axhline(leg.arrival_price_coin, ls=":", lw=0.8, color=f"C{i}")
    bottom.set_xlabel("minutes since the plan started")
    bottom.set_ylabel("fill price (coin)")
    if plan.legs:
        bottom.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
