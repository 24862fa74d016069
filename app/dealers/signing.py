"""HMAC-SHA256 signatures of dealer messages, both directions.

The signed string is ``f"{timestamp}.{body}"`` where ``timestamp`` is Unix seconds (the
``X-RFQDesk-Timestamp`` header) and ``body`` the raw request body; the signature travels hex
encoded in ``X-RFQDesk-Signature: sha256=<hex>``. See the README for a dealer-side snippet.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-RFQDesk-Timestamp"
SIGNATURE_HEADER = "X-RFQDesk-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    ts = int(now if now is not None else time.time())
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body),
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
    if not hmac.compare_digest(sign(secret, ts, body), signature):
        raise SignatureError("signature does not match")
    return ts
