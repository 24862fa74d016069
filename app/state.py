"""What a process builds once at start-up and shares across requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.service import KeyResolver
from app.cache import Cache
from app.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    keys: KeyResolver
    http: httpx.AsyncClient
    services: dict[str, Any] = field(default_factory=dict)
