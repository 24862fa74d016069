"""Builders of request bodies with expiries that stay in the future whenever the tests run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.domain.expiries import format_expiry_code, monthly_expiry


def expiry(months_ahead: int = 1) -> date:
    today = datetime.now(UTC).date()
    d = monthly_expiry(today.month, None, today + timedelta(days=3))
    for _ in range(months_ahead):
        d = monthly_expiry(d.month % 12 + 1, None, d + timedelta(days=1))
    return d


def instrument(underlying: str, strike: int, kind: str, months_ahead: int = 1) -> str:
    return f"{underlying}-{format_expiry_code(expiry(months_ahead))}-{strike}-{kind}"


def call_spread(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "underlying": "BTC",
        "structure": "call_spread",
        "strikes": [70000, 80000],
        "expiries": [expiry().isoformat()],
        "side": "buy",
        "quantity": 250,
        "hedge_reference": 64500,
    }
    body.update(over)
    return body
