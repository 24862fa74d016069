"""Pure-ASGI middleware: request context and timing, body size limit, idempotency.

Pure ASGI (not ``BaseHTTPMiddleware``) so that context variables reach the handlers and the
body is streamed once.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache import Cache, CacheUnavailable
from app.errors import error_response
from app.metrics import HTTP_LATENCY

log = structlog.get_logger(__name__)


class RequestContextMiddleware:
    """Request id on every log line; latency per route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_LATENCY.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - start
            )


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes, scope, receive, send)
            return
        seen = 0
        started = False

        async def _receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def _send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except _TooLarge:
            if not started:
                await _too_large(self.max_bytes, scope, receive, send)


class _TooLarge(Exception):
    pass


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, "payload_too_large", f"request body over {limit} bytes")
    await response(scope, receive, send)


class IdempotencyMiddleware:
    """Replays the first response for a repeated ``Idempotency-Key`` on POST.

    The key is scoped by the caller's credentials and the path. A repeat with a different body
    gets 422; one that arrives while the first is still running gets 409. When the cache is down
    the request is refused with 503 (fail closed): running it could create a second RFQ.
    """

    def __init__(self, app: ASGIApp, cache_getter: Any, ttl_s: int) -> None:
        self.app = app
        self.cache_getter = cache_getter
        self.ttl_s = ttl_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 200:
            resp = error_response(
                422,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-200 characters",
                "Idempotency-Key",
            )
            await resp(scope, receive, send)
            return
        cache: Cache = self.cache_getter()
        body = await _read_body(receive)
        auth = _header(scope, b"authorization") or ""
        scope_hash = hashlib.sha256(f"{auth}|{scope['path']}|{key}".encode()).hexdigest()
        fingerprint = _fingerprint(body)
        done_key, lock_key = f"idem:{scope_hash}", f"idem-lock:{scope_hash}"
        try:
            stored = await cache.get(done_key)
            if stored is None and not await cache.set(lock_key, b"1", 60, nx=True):
                await error_response(
                    409,
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still running",
                    "Idempotency-Key",
                    {"Retry-After": "1"},
                )(scope, receive, send)
                return
        except CacheUnavailable:
            log.warning("idempotency_unavailable")
            await error_response(
                503,
                "unavailable",
                "idempotency store unavailable, retry shortly",
                None,
                {"Retry-After": "1"},
            )(scope, receive, send)
            return
        if stored is not None:
            record = json.loads(stored)
            if record["fingerprint"] != fingerprint:
                await error_response(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different body",
                    "Idempotency-Key",
                )(scope, receive, send)
                return
            replay = [(k.encode(), v.encode()) for k, v in record["headers"]]
            replay.append((b"idempotent-replayed", b"true"))
            await send(
                {"type": "http.response.start", "status": record["status"], "headers": replay}
            )
            await send({"type": "http.response.body", "body": record["body"].encode()})
            return

        # The answer is held back until it is stored for replays and the lock released: a
        # client that repeats the request as soon as it has the answer gets the replay, never
        # a 409 from a lock its first request has not yet released.
        start: Message | None = None
        chunks: list[bytes] = []
        answered = False

        async def _send(message: Message) -> None:
            nonlocal start, answered
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            answered = True
            content = b"".join(chunks)
            await self._finish(cache, done_key, lock_key, _record(fingerprint, start, content))
            await send(start)
            await send({"type": "http.response.body", "body": content})

        try:
            await self.app(scope, _replay(body), _send)
        finally:
            if not answered:
                await self._finish(cache, done_key, lock_key, None)

    async def _finish(
        self, cache: Cache, done_key: str, lock_key: str, record: dict[str, Any] | None
    ) -> None:
        """Store the response for replays, then release the lock; a second try on a blip.

        Should the store still fail, the lock is kept (it expires after 60 s): a repeat then
        gets 409 rather than running again, so the request is never executed twice meanwhile.
        """
        for attempt in (1, 2):
            try:
                if record is not None:
                    await cache.set(done_key, json.dumps(record).encode(), self.ttl_s)
                await cache.delete(lock_key)
                return
            except CacheUnavailable:
                log.warning("idempotency_store_failed", attempt=attempt)


def _fingerprint(body: bytes) -> str:
    """The body's identity for idempotency: of its JSON value when it is JSON (a retry that
    re-serialises the same request, other spacing or key order, is the same request), else of
    its bytes. Numbers keep their text (1 and 1.0 stay different), as the endpoints read them."""
    try:
        value = json.loads(body, parse_float=Decimal, parse_constant=Decimal)
        # repr tells a string from a number and keeps a number's digits (Decimal('1.0'), 1)
        canonical = repr(_canonical(value))
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the endpoint refuses
        return "b:" + hashlib.sha256(body).hexdigest()
    return "j:" + hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """A JSON value with every object's members in key order."""
    if isinstance(value, dict):
        return tuple((k, _canonical(v)) for k, v in sorted(value.items()))
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _record(fingerprint: str, start: Message, body: bytes) -> dict[str, Any] | None:
    """What a repeat is answered with; None for answers worth retrying (5xx, 409, 429)."""
    status = int(start["status"])
    if status >= 500 or status in (409, 429):
        return None
    return {
        "fingerprint": fingerprint,
        "status": status,
        "headers": [
            (k.decode(), v.decode())
            for k, v in start.get("headers", [])
            if k.lower() in (b"content-type", b"location")
        ],
        "body": body.decode(),
    }


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None
