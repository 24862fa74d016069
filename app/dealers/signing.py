"""HMAC-SHA256 signatures of dealer messages, both directions.

The desk signs ``f"{timestamp}.{body}"`` (its messages name the request they are about); a
dealer posting to the desk signs ``f"{timestamp}.{method} {path}.{body}"``, so that a signature
is good for one request only: two identical bodies posted to two requests in the same second
(the same price for the same structure, or two withdrawals) carry different signatures, and a
body signed for one request cannot be replayed to another. ``timestamp`` is Unix seconds (the
``X-RFQDesk-Timestamp`` header), ``body`` the raw request body; the signature travels hex
encoded in ``X-RFQDesk-Signature: sha256=<hex>``. See the README for a dealer-side snippet.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-RFQDesk-Timestamp"
SIGNATURE_HEADER = "X-RFQDesk-Signature"


def sign(secret: str, timestamp: int, body: bytes, target: str | None = None) -> str:
    """``target``: ``"<METHOD> <path>"`` of a dealer's request to the desk; ``None`` for the
    desk's messages to a dealer."""
    prefix = f"{timestamp}." if target is None else f"{timestamp}.{target}."
    mac = hmac.new(secret.encode(), prefix.encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    secret: str, body: bytes, now: float | None = None, *, target: str | None = None
) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body, target),
        "Content-Type": "application/json",
    }


class SignatureError(Exception):
    """The signature is missing, malformed, wrong, or too old."""


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    skew_s: int,
    now: float | None = None,
    target: str | None = None,
) -> int:
    """Check a signature; return the timestamp. Raises :class:`SignatureError`."""
    if not timestamp or not signature:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SignatureError("timestamp is not an integer") from exc
    current = now if now is not None else time.time()
    if abs(current - ts) > skew_s:
        raise SignatureError(f"timestamp is {current - ts:+.0f} s off (allowed ±{skew_s} s)")
    if not hmac.compare_digest(sign(secret, ts, body, target), signature):
        raise SignatureError("signature does not match")
    return ts
