"""What the HTTP benchmarks share: the RFQ they post and waiting for a server to answer."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx

from app.domain.expiries import monthly_expiry


def rfq_body() -> dict[str, object]:
    """A two-way BTC call spread on next month's expiry, 250 contracts, delta-hedged."""
    today = datetime.now(UTC).date()
    nxt = monthly_expiry(today.month % 12 + 1, None, today + timedelta(days=7))
    return {
        "underlying": "BTC",
        "structure": "call_spread",
        "strikes": [70000, 80000],
        "expiries": [nxt.isoformat()],
        "side": "two_way",
        "quantity": 250,
        "hedge_reference": 64500,
    }


def wait_up(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 240.0
) -> None:
    """Until ``url`` answers (a worker loads the intent and xgboost models first); gives up
    when ``proc`` exits."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")
