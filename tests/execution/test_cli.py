"""``rfqdesk plot execution ID`` writes a PNG of planned vs executed quantity and prices."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from app import migrate
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.domain.enums import Side
from app.events import unit_of_work
from app.execution.cli import plot_app
from app.execution.config import ExecutionSettings
from app.execution.service import ExecutionWorker, plan_residual
from app.execution.venues import build_simulated_venues
from tests.execution.conftest import make_rfq
from tests.execution.sim import T0, VirtualClock
from tests.execution.test_restart import REFS

PNG = b"\x89PNG\r\n\x1a\n"


async def _worked_plan(url: str) -> uuid.UUID:
    settings = ExecutionSettings(sim_sleep_latency=False, horizon_s=120, n_slices=4)
    engine = create_engine(Settings(database_url=url))
    maker = create_sessionmaker(engine)
    try:
        async with unit_of_work(maker) as session:
            rfq, quote = await make_rfq(session, residual=Decimal(30))
            plan = await plan_residual(
                session, rfq, quote, Side.BUY, Decimal(30), T0, settings=settings
            )
        clock = VirtualClock()
        _, venues = build_simulated_venues(settings, REFS, clock)
        worker = ExecutionWorker(maker, venues, settings, clock)
        for _ in range(3):
            await worker.step(clock())
            clock.advance(30)
        return plan.id
    finally:
        await engine.dispose()


def test_plot_execution_writes_a_png(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plot.db'}"
    migrate.upgrade(url)
    plan_id = asyncio.run(_worked_plan(url))
    out = tmp_path / "charts" / "plan.png"
    res = CliRunner().invoke(
        plot_app, ["execution", str(plan_id), "--out", str(out), "--database-url", url]
    )
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(PNG)
    assert out.stat().st_size > 10_000


def test_plot_of_an_unknown_plan_fails(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plot.db'}"
    migrate.upgrade(url)
    res = CliRunner().invoke(plot_app, ["execution", str(uuid.uuid4()), "--database-url", url])
    assert res.exit_code == 1
    bad = CliRunner().invoke(plot_app, ["execution", "not-a-uuid", "--database-url", url])
    assert bad.exit_code != 0
