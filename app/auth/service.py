"""Key creation and lookup; lookups are cached in-process for a short TTL."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Role, display_prefix, generate_key, hash_key
from app.errors import Unprocessable
from app.models import ApiKey


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    name: str
    role: Role
    dealer_id: uuid.UUID | None
    rate_limit_per_minute: int | None


async def create_key(
    session: AsyncSession,
    *,
    role: Role,
    name: str,
    dealer_id: uuid.UUID | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key's hash; return the row and the key (shown once, never stored)."""
    if (role is Role.DEALER) != (dealer_id is not None):
        raise Unprocessable(
            "a dealer key needs a dealer, and only a dealer key has one", field="dealer_id"
        )
    key = generate_key()
    row = ApiKey(
        name=name,
        role=role.value,
        key_hash=hash_key(key),
        prefix=display_prefix(key),
        dealer_id=dealer_id,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    session.add(row)
    await session.flush()
    return row, key


class KeyResolver:
    """Resolves a presented key to a :class:`Principal`, caching hits and misses briefly."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[Principal | None, float]] = {}

    async def resolve(self, maker: async_sessionmaker[AsyncSession], key: str) -> Principal | None:
        """The key's principal; a session is opened only when the cache has no live answer."""
        digest = hash_key(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with maker() as session:
            row = await session.scalar(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            )
        principal = (
            None
            if row is None
            else Principal(
                key_id=row.id,
                name=row.name,
                role=Role(row.role),
                dealer_id=row.dealer_id,
                rate_limit_per_minute=row.rate_limit_per_minute,
            )
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (principal, now + self._ttl_s)
        return principal

    def forget(self) -> None:
        self._cache.clear()
