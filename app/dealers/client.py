"""Signed calls to dealers over one pooled httpx client, with a circuit breaker per dealer."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from app.dealers.signing import signed_headers
from app.dealers.wire import DealerAnswer

log = structlog.get_logger(__name__)


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0


class CircuitBreakers:
    """A dealer that fails ``threshold`` times in a row is skipped for ``cooldown_s``."""

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._state: dict[uuid.UUID, _Breaker] = {}

    def is_open(self, dealer_id: uuid.UUID, now: float | None = None) -> bool:
        b = self._state.get(dealer_id)
        return b is not None and b.open_until > (now if now is not None else time.monotonic())

    def record(self, dealer_id: uuid.UUID, ok: bool) -> None:
        b = self._state.setdefault(dealer_id, _Breaker())
        if ok:
            b.failures, b.open_until = 0, 0.0
            return
        b.failures += 1
        if b.failures >= self.threshold:
            b.open_until = time.monotonic() + self.cooldown_s
            log.warning(
                "dealer_circuit_open",
                dealer_id=str(dealer_id),
                failures=b.failures,
                cooldown_s=self.cooldown_s,
            )


#: a dealer given less than this to answer (the desk itself was late: its own queue ate the
#: deadline) is not blamed by its circuit breaker for timing out, nor asked at all under
#: NOT_SENT_BELOW_S
FAIR_TIMEOUT_S = 0.1
NOT_SENT_BELOW_S = 0.01


@dataclass(frozen=True)
class CallResult:
    """How one quote request went: answered (quote or decline), pending (202), or failed."""

    status: str  # "answered" | "declined" | "pending" | "error" | "timeout" | "not_sent"
    answer: DealerAnswer | None = None
    raw: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class DealerClient:
    def __init__(self, http: httpx.AsyncClient, breakers: CircuitBreakers) -> None:
        self.http = http
        self.breakers = breakers

    async def send(
        self, dealer_id: uuid.UUID, url: str, secret: str, message: dict[str, Any], timeout_s: float
    ) -> CallResult:
        if timeout_s < NOT_SENT_BELOW_S:  # nothing the dealer could answer in
            return CallResult("not_sent", error="not sent: the deadline had passed at the desk")
        body = json.dumps(message, separators=(",", ":"), default=str).encode()
        started = time.perf_counter()
        try:
            resp = await self.http.post(
                url,
                content=body,
                headers=signed_headers(secret, body),
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 1.0)),
            )
        except (TimeoutError, httpx.TimeoutException):
            if timeout_s >= FAIR_TIMEOUT_S:  # short of that, the desk was late, not the dealer
                self.breakers.record(dealer_id, ok=False)
            return CallResult(
                "timeout",
                error="no answer before the deadline",
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        except httpx.HTTPError as exc:
            self.breakers.record(dealer_id, ok=False)
            return CallResult(
                "error",
                error=f"{type(exc).__name__}: {exc}"[:300],
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        latency = (time.perf_counter() - started) * 1000
        if resp.status_code in (202, 204):
            self.breakers.record(dealer_id, ok=True)
            return CallResult("pending", latency_ms=latency)
        if resp.status_code != 200:
            self.breakers.record(dealer_id, ok=False)
            return CallResult("error", error=f"HTTP {resp.status_code}", latency_ms=latency)
        try:
            raw = resp.json()
            answer = DealerAnswer.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            self.breakers.record(dealer_id, ok=False)
            return CallResult(
                "error", error=f"unreadable answer: {str(exc)[:200]}", latency_ms=latency
            )
        self.breakers.record(dealer_id, ok=True)
        if answer.decline:
            return CallResult("declined", answer=answer, raw=raw, latency_ms=latency)
        if answer.quote is None:
            return CallResult("pending", raw=raw, latency_ms=latency)
        return CallResult("answered", answer=answer, raw=raw, latency_ms=latency)

    async def notify(
        self, url: str, secret: str, message: dict[str, Any], timeout_s: float
    ) -> bool:
        body = json.dumps(message, separators=(",", ":"), default=str).encode()
        try:
            resp = await self.http.post(
                url, content=body, headers=signed_headers(secret, body), timeout=timeout_s
            )
            return resp.status_code < 300
        except httpx.HTTPError as exc:
            log.warning("dealer_notify_failed", url=url, error=type(exc).__name__)
            return False
