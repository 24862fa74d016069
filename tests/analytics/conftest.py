"""Analytics fixtures: the app with the analytics routers, an analyst's headers, a seeded log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics.endpoints import dashboard_router, router
from app.auth.keys import Role
from tests.analytics.seed import Seeded, seed_log


def with_analytics(app: FastAPI) -> FastAPI:
    """Include the analytics routers unless app.main already does."""
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/v1/analytics/hit-ratio" not in paths:
        app.include_router(router)
    if "/dashboard" not in paths:
        app.include_router(dashboard_router)
    return app


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=with_analytics(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://rfqdesk.test") as c:
        yield c


@pytest.fixture
async def analyst(auth) -> dict[str, str]:
    headers: dict[str, str] = await auth(Role.ANALYST)
    return headers


@pytest.fixture
async def seeded(session: AsyncSession) -> Seeded:
    out = await seed_log(session)
    await session.commit()  # releases the savepoint; the test's transaction still rolls back
    session.expunge_all()
    return out
