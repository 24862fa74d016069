"""Known vulnerabilities in the installed dependencies: pip-audit, with a fallback for what it
cannot reach.

pip-audit asks PyPI's per-release JSON API (``/pypi/NAME/VERSION/json``). Where that endpoint is
not served (this project's sandbox reaches PyPI through a proxy that answers only the project
endpoint ``/pypi/NAME/json``), pip-audit skips every package and still prints "No known
vulnerabilities found". So, for each package pip-audit skipped, this asks the project endpoint:
its ``vulnerabilities`` are those of the latest release, which is exactly the installed one when
the two versions agree. A package behind its latest release cannot be audited that way; it is
listed as such, with both versions, and not counted as clean.

Exit status: 1 when any known vulnerability is found (by either route), else 0. Coverage is
printed in every case, so a run that audited nothing says so.

    .venv/bin/python tools/audit_deps.py [--index https://pypi.org]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

BIN = Path(sys.executable).parent


@dataclass
class Verdict:
    name: str
    version: str
    how: str  # "pip-audit", "latest release", or why it was not audited
    vulns: list[dict[str, object]] = field(default_factory=list)
    audited: bool = True


def installed() -> dict[str, str]:
    """Name -> version of every installed distribution but editable ones (this project)."""
    return {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if d.metadata["Name"] and not _editable(d)
    }


def _editable(dist: metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    return bool(text and json.loads(text).get("dir_info", {}).get("editable"))


def pip_audit() -> dict[str, dict[str, object]]:
    """pip-audit's JSON per package (``skip_reason`` for those it could not audit)."""
    run = subprocess.run(
        [BIN / "pip-audit", "--skip-editable", "--progress-spinner", "off", "-f", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if not run.stdout.strip():
        print(run.stderr, file=sys.stderr)
        return {}
    return {canonicalize_name(d["name"]): d for d in json.loads(run.stdout)["dependencies"]}


async def from_project_endpoint(
    client: httpx.AsyncClient, name: str, version: str, gate: asyncio.Semaphore
) -> Verdict:
    async with gate:
        try:
            response = await client.get(f"/pypi/{name}/json")
        except httpx.HTTPError as exc:
            return Verdict(name, version, f"not audited: {type(exc).__name__}", audited=False)
    if response.status_code != 200:
        return Verdict(name, version, f"not audited: HTTP {response.status_code}", audited=False)
    data = response.json()
    latest = data["info"]["version"]
    if not _same(latest, version):
        return Verdict(name, version, f"not audited: latest release is {latest}", audited=False)
    vulns = [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return Verdict(name, version, "latest release", vulns)


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


async def audit(index: str) -> list[Verdict]:
    versions = installed()
    audited = pip_audit()
    verdicts: list[Verdict] = []
    pending: list[tuple[str, str]] = []
    for name, entry in sorted(audited.items()):
        if name not in versions:
            continue  # editable: the project itself
        version = versions[name]
        if "skip_reason" in entry:
            pending.append((name, version))
        else:
            vulns = list(entry.get("vulns", []))  # type: ignore[call-overload]
            verdicts.append(Verdict(name, version, "pip-audit", vulns))
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=index, timeout=20.0) as client:
        verdicts += await asyncio.gather(
            *(from_project_endpoint(client, n, v, gate) for n, v in pending)
        )
    return sorted(verdicts, key=lambda v: v.name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="https://pypi.org")
    args = ap.parse_args()
    verdicts = asyncio.run(audit(args.index))
    found = [v for v in verdicts if v.vulns]
    unaudited = [v for v in verdicts if not v.audited]
    for v in found:
        for vuln in v.vulns:
            versions = vuln.get("fix_versions") or vuln.get("fixed_in") or []
            fixed = ", ".join(str(x) for x in versions)  # type: ignore[attr-defined]
            print(f"VULNERABLE {v.name} {v.version}: {vuln.get('id')} (fixed in: {fixed or '?'})")
    for v in unaudited:
        print(f"unaudited  {v.name} {v.version}: {v.how}")
    by_how: dict[str, int] = {}
    for v in verdicts:
        if v.audited:
            by_how[v.how] = by_how.get(v.how, 0) + 1
    routes = ", ".join(f"{n} by {how}" for how, n in sorted(by_how.items()))
    print(
        f"{len(verdicts)} packages: {len(verdicts) - len(unaudited)} audited ({routes or 'none'}),"
        f" {len(unaudited)} not audited; {sum(len(v.vulns) for v in found)} known"
        f" vulnerabilities in {len(found)} packages"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
