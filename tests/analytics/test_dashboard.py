"""The dashboard in a real browser: headless Chromium loads the page from a live server with a
seeded log, and every figure it shows must be the API's.

Needs Debian's ``chromium`` package: skipped when it is missing, except under CI=true, where
it must run. Set RFQDESK_SCREENSHOT_DIR to keep the screenshot.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import migrate
from app.auth.keys import Role
from app.auth.service import create_key
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.analytics.conftest import with_analytics
from tests.analytics.seed import SINCE, UNTIL, seed_log
from tests.conftest import CI
from tests.servers import serve

BROWSER = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
SINCE_DAY, UNTIL_DAY = SINCE.date().isoformat(), UNTIL.date().isoformat()


@pytest.fixture
def chromium() -> str:
    if BROWSER is None:
        why = "Debian's chromium is not installed (apt-get install -y chromium)"
        if CI:
            pytest.fail(f"{why}; under CI=true the dashboard test must run")
        pytest.skip(why)
    return BROWSER


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A server on a seeded SQLite log, and an analyst key for it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'dashboard.db'}"
    migrate.upgrade(url)

    async def prepare() -> str:
        engine = create_engine(Settings(database_url=url))
        async with create_sessionmaker(engine)() as session, session.begin():
            await seed_log(session)
            _, key = await create_key(session, role=Role.ANALYST, name="dashboard-test")
        await engine.dispose()
        return key

    key = asyncio.run(prepare())
    settings = Settings(
        database_url=url,
        redis_url=None,
        background_tasks=False,
        log_json=False,
        log_level="WARNING",
        env="test",
    )
    with serve(with_analytics(create_app(settings))) as base:
        yield base, key


def browse(binary: str, url: str, profile: Path, *extra: str) -> str:
    """Load ``url`` headless until its fetches are done (virtual time); return stdout."""
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=30000",
        *extra,
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Dom(HTMLParser):
    """Elements with data-* attributes, and the text inside them."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, Any]] = []
        self.stack: list[dict[str, Any]] = []
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        node = {
            "tag": tag,
            "attrs": a,
            "text": "",
            "parent": self.stack[-1] if self.stack else None,
        }
        self.nodes.append(node)
        if tag not in ("input", "br", "img", "meta", "link", "circle", "rect", "line"):
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for node in self.stack:
            node["text"] += data

    def find(self, **attrs: str) -> list[dict[str, Any]]:
        return [n for n in self.nodes if all(n["attrs"].get(k) == v for k, v in attrs.items())]

    def cells(self, testid: str) -> dict[str, dict[str, str]]:
        """{row key: {metric: data-value}} of the rows ``data-testid=testid``."""
        rows = {id(n): n for n in self.find(**{"data-testid": testid})}
        out: dict[str, dict[str, str]] = {}
        for n in self.nodes:
            parent = n["parent"]
            if n["tag"] == "td" and parent is not None and id(parent) in rows:
                metric = n["attrs"].get("data-metric")
                if metric:
                    out.setdefault(parent["attrs"]["data-key"], {})[metric] = n["attrs"][
                        "data-value"
                    ]
        return out


def same(shown: str, value: Any) -> bool:
    if value is None:
        return shown == ""
    return float(shown) == pytest.approx(float(value), rel=1e-12, abs=1e-12)


def test_dashboard_shows_the_apis_numbers(chromium: str, live: tuple[str, str], tmp_path: Path):
    base, key = live
    page = f"{base}/dashboard?since={SINCE_DAY}&until={UNTIL_DAY}&group_by=client#key={key}"
    dom = Dom()
    dom.feed(browse(chromium, page, tmp_path / "profile", "--dump-dom"))
    assert dom.body.get("data-state") == "ready", dom.find(**{"data-testid": "status"})

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:

        def report(path: str, **params: Any) -> list[dict[str, Any]]:
            window = {"since": f"{SINCE_DAY}T00:00:00Z", "until": f"{UNTIL_DAY}T00:00:00Z"}
            resp = api.get(f"/v1/analytics/{path}", params=window | params)
            assert resp.status_code == 200, resp.text
            rows: list[dict[str, Any]] = resp.json()["rows"]
            return rows

        total = report("hit-ratio")[0]
        by_client = report("hit-ratio", group_by="client")
        by_day = report("hit-ratio", group_by="day")
        funnel = report("funnel", group_by="dealer")
        times = {r["group"]["dealer"]: r for r in report("response-times", group_by="dealer")}
        markouts = report("markouts")[0]
        improvement = report("price-improvement")[0]

    # the totals, raw and as formatted
    for name, value in [
        *((m, total[m]) for m in ("requests", "quoted", "traded", "hit_ratio")),
        ("markout_1m_usd_per_unit", markouts["markout_1m_usd_per_unit"]),
        ("markout_30m_usd_per_unit", markouts["markout_30m_usd_per_unit"]),
        ("vs_theo_usd_per_unit", improvement["vs_theo_usd_per_unit"]),
    ]:
        (node,) = dom.find(**{"data-testid": f"kpi-{name}"})
        assert same(node["attrs"]["data-value"], value), name
    (ratio,) = dom.find(**{"data-testid": "kpi-hit_ratio"})
    assert ratio["text"] == f"{100 * total['hit_ratio']:.1f}%"
    (requests,) = dom.find(**{"data-testid": "kpi-requests"})
    assert requests["text"] == f"{total['requests']:,}"

    # the hit-ratio table, one row per client
    shown = dom.cells("hit-row")
    assert set(shown) == {r["group"]["client"] or "(none)" for r in by_client}
    for row in by_client:
        cells = shown[row["group"]["client"] or "(none)"]
        for metric in ("requests", "quoted", "traded", "hit_ratio", "traded_quantity"):
            assert same(cells[metric], row[metric]), (row["group"], metric)

    # the dealer table: funnel and response times
    shown = dom.cells("dealer-row")
    assert set(shown) == {r["group"]["dealer"] for r in funnel}
    for row in funnel:
        cells = shown[row["group"]["dealer"]]
        for metric in (
            "asked",
            "answered",
            "response_rate",
            "best",
            "won",
            "win_rate",
            "hit_ratio",
        ):
            assert same(cells[metric], row[metric]), (row["group"], metric)
        for metric in ("ttfq_p50_ms", "ttfq_p95_ms"):
            assert same(cells[metric], times[row["group"]["dealer"]][metric])

    # the daily chart's points and bars
    points = {n["attrs"]["data-day"]: n["attrs"]["data-value"]
              for n in dom.find(**{"data-testid": "daily-point"})}  # fmt: skip
    assert points
    assert set(points) == {r["group"]["day"] for r in by_day if r["hit_ratio"] is not None}
    for row in by_day:
        if row["hit_ratio"] is not None:
            assert same(points[row["group"]["day"]], row["hit_ratio"])
    bars = {n["attrs"]["data-day"]: n["attrs"]["data-value"]
            for n in dom.nodes if n["tag"] == "rect" and "data-day" in n["attrs"]}  # fmt: skip
    assert bars == {r["group"]["day"]: str(r["requests"]) for r in by_day}

    # and a picture of it
    shot = tmp_path / "dashboard.png"
    browse(chromium, page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,1500")
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("RFQDESK_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "dashboard.png")


def test_without_a_key_the_page_asks_for_one(chromium: str, live: tuple[str, str], tmp_path: Path):
    base, _ = live
    dom = Dom()
    dom.feed(browse(chromium, f"{base}/dashboard", tmp_path / "profile", "--dump-dom"))
    assert dom.body.get("data-state") == "needs-key"
    (status,) = dom.find(**{"data-testid": "status"})
    assert "analyst key" in status["text"]
