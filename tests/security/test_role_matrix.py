"""Every endpoint but health needs a key, and admits exactly the roles it declares."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.models import Dealer
from tests.conftest import KeyMaker

PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/dashboard",
    "/dashboard/{name}",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def _roles(route: APIRoute) -> frozenset[Role] | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        stack.extend(dep.dependencies)
    return None


def _api_routes(routes: list) -> list[APIRoute]:
    """API routes, also those of included routers (FastAPI includes them lazily)."""
    out = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(_api_routes(route.original_router.routes))
    return out


def _endpoints(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    return [
        (method, route.path, route)
        for route in _api_routes(app.routes)
        if route.path not in PUBLIC and not route.path.startswith("/static")
        for method in sorted(route.methods)
    ]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def test_every_non_public_endpoint_declares_its_roles(app: FastAPI) -> None:
    missing = [f"{m} {p}" for m, p, r in _endpoints(app) if _roles(r) is None]
    assert missing == []


async def test_the_whole_role_matrix(
    app: FastAPI, client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    dealer = Dealer(
        name=f"matrix-{uuid.uuid4().hex[:6]}",
        endpoint_url="http://127.0.0.1:1/x",
        underlyings=["BTC"],
        webhook_secret="s" * 32,
    )
    session.add(dealer)
    await session.commit()
    keys = {
        role: await auth(
            role,
            dealer_id=dealer.id if role is Role.DEALER else None,
            rate_limit_per_minute=100_000,
        )
        for role in Role
    }
    checked = 0
    for method, path, route in _endpoints(app):
        allowed = _roles(route)
        assert allowed is not None
        url = _url(path)
        anonymous = await client.request(method, url, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        for role, headers in keys.items():
            resp = await client.request(method, url, json={}, headers=headers)
            if role in allowed:
                assert resp.status_code not in (401, 403), (method, path, role, resp.text)
            else:
                assert resp.status_code == 403, (method, path, role, resp.status_code)
            assert resp.status_code < 500, (method, path, role, resp.text)
            checked += 1
    assert checked >= 5 * 10


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_health_needs_no_key(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200
