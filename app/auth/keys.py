"""API keys: generation and hashing. Keys are 256-bit random, so a plain SHA-256 suffices."""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

KEY_PREFIX = "rfqd_"


class Role(StrEnum):
    SALES = "sales"
    BOT = "bot"
    DEALER = "dealer"
    ANALYST = "analyst"
    ADMIN = "admin"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The part of a key that may be shown and logged to identify it."""
    return key[: len(KEY_PREFIX) + 6]
