"""``make demo``: a few RFQs against a running service, printed as they come back."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console

from app.domain.expiries import monthly_expiry

console = Console()


def _examples(today: date) -> list[tuple[str, dict[str, Any]]]:
    nxt = monthly_expiry(today.month % 12 + 1, None, today + timedelta(days=7))
    later = monthly_expiry((today.month + 2) % 12 + 1, None, nxt + timedelta(days=1))
    return [
        (
            "BTC call spread, client buys, delta-hedged",
            {
                "underlying": "BTC",
                "structure": "call_spread",
                "strikes": [70000, 80000],
                "expiries": [nxt.isoformat()],
                "side": "buy",
                "quantity": 250,
                "hedge_reference": 64500,
            },
        ),
        (
            "ETH risk reversal as explicit legs, two-way",
            {
                "underlying": "ETH",
                "side": "two_way",
                "quantity": 500,
                "legs": [
                    {
                        "instrument": f"ETH-{nxt.day}{nxt.strftime('%b').upper()}{nxt:%y}-2800-P",
                        "ratio": 1,
                        "direction": "sell",
                    },
                    {
                        "instrument": f"ETH-{nxt.day}{nxt.strftime('%b').upper()}{nxt:%y}-3600-C",
                        "ratio": 1,
                        "direction": "buy",
                    },
                ],
            },
        ),
        (
            "BTC put calendar, client sells",
            {
                "underlying": "BTC",
                "structure": "put_calendar",
                "strikes": [60000],
                "expiries": [nxt.isoformat(), later.isoformat()],
                "side": "sell",
                "quantity": 50,
            },
        ),
        (
            "A bad one: strikes in the wrong order",
            {
                "underlying": "BTC",
                "structure": "call_spread",
                "strikes": [80000, 70000],
                "expiries": [nxt.isoformat()],
                "side": "buy",
                "quantity": 100,
            },
        ),
    ]


def _wait_ready(url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the service at {url} is not ready (is `make run` running?)")


def run_demo(url: str, key: str) -> int:
    _wait_ready(url)
    headers = {"Authorization": f"Bearer {key}"}
    failures = 0
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for title, body in _examples(datetime.now(UTC).date()):
            console.rule(title)
            console.print_json(json.dumps(body))
            resp = client.post(
                "/v1/rfqs", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            console.print(f"[bold]HTTP {resp.status_code}[/bold]")
            console.print_json(resp.text)
            if resp.status_code >= 500:
                failures += 1
            if resp.status_code == 201 and resp.json()["state"] == "quoted":
                rfq = resp.json()
                side = "buy" if rfq["side"] in ("buy", "two_way") else "sell"
                acc = client.post(f"/v1/rfqs/{rfq['id']}/accept", json={"side": side})
                console.print(
                    f"accept as {side}: HTTP {acc.status_code}, state "
                    f"{acc.json().get('state', acc.json())}"
                )
    return 1 if failures else 0
