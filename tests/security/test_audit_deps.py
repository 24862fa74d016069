"""tools/audit_deps.py: what pip-audit skipped is audited through PyPI's project endpoint, and a
package that cannot be audited is reported, never counted as clean."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from tools import audit_deps

INSTALLED = {"fresh": "2.0", "stale": "1.0", "reached": "3.1", "gone": "0.5", "cve": "4.0"}


def project(version: str, vulns: list[dict[str, Any]] | None = None) -> httpx.Response:
    return httpx.Response(200, json={"info": {"version": version}, "vulnerabilities": vulns or []})


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    skipped = [{"name": n, "skip_reason": "Dependency not found on PyPI"} for n in INSTALLED]
    skipped[2] = {"name": "reached", "version": "3.1", "vulns": [{"id": "PYSEC-1"}]}
    audit_json = json.dumps({"dependencies": skipped, "fixes": []})
    monkeypatch.setattr(audit_deps, "installed", lambda: dict(INSTALLED))
    monkeypatch.setattr(
        audit_deps.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 1, stdout=audit_json, stderr=""),
    )
    with respx.mock(base_url="https://pypi.test", assert_all_called=True) as router:
        router.get("/pypi/fresh/json").mock(
            return_value=project("2.0", [{"id": "OLD", "withdrawn": "2024-01-01"}])
        )
        router.get("/pypi/stale/json").mock(return_value=project("1.2", [{"id": "X"}]))
        router.get("/pypi/gone/json").mock(return_value=httpx.Response(404))
        router.get("/pypi/cve/json").mock(
            return_value=project("4.0", [{"id": "GHSA-1", "fixed_in": ["4.0.1"]}])
        )
        yield router


async def test_each_package_gets_the_route_that_can_audit_it(world: respx.MockRouter) -> None:
    verdicts = {v.name: v for v in await audit_deps.audit("https://pypi.test")}
    assert set(verdicts) == set(INSTALLED)
    # pip-audit's own answer is kept as it came
    assert verdicts["reached"].how == "pip-audit"
    assert [v["id"] for v in verdicts["reached"].vulns] == ["PYSEC-1"]
    # installed = latest: the project endpoint's vulnerabilities are the installed release's,
    # a withdrawn advisory excluded
    assert verdicts["fresh"].audited
    assert verdicts["fresh"].vulns == []
    assert [v["id"] for v in verdicts["cve"].vulns] == ["GHSA-1"]
    # behind the latest release, or unknown to the index: not audited, not clean
    assert not verdicts["stale"].audited
    assert "1.2" in verdicts["stale"].how
    assert verdicts["stale"].vulns == []
    assert not verdicts["gone"].audited
    assert "404" in verdicts["gone"].how


def test_exit_status_and_coverage_line(
    world: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["audit_deps", "--index", "https://pypi.test"])
    assert audit_deps.main() == 1
    out = capsys.readouterr().out
    assert "VULNERABLE cve 4.0: GHSA-1 (fixed in: 4.0.1)" in out
    assert "unaudited  stale 1.0: not audited: latest release is 1.2" in out
    assert out.strip().splitlines()[-1] == (
        "5 packages: 3 audited (2 by latest release, 1 by pip-audit), 2 not audited;"
        " 2 known vulnerabilities in 2 packages"
    )
