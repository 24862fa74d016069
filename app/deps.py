"""Request dependencies: the unit of work, shared clients, and role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.auth.service import Principal
from app.cache import Cache, CacheUnavailable
from app.config import Settings
from app.errors import Forbidden, RateLimited, Unauthorized
from app.events import unit_of_work
from app.state import AppState

log = structlog.get_logger(__name__)
_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


# Dependencies are ``async def`` even when they do not await: FastAPI runs plain ``def``
# dependencies in its thread pool, a thread hand-off per call on the hot path.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.rfqdesk
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent; work registered
    with :func:`app.events.after_commit` starts once it has committed."""
    async with unit_of_work(state.sessionmaker) as session:
        yield session


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


async def get_cache(state: StateDep) -> Cache:
    return state.cache


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CacheDep = Annotated[Cache, Depends(get_cache)]


async def _authenticate(
    request: Request,
    state: StateDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None or not creds.credentials:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    principal = await state.keys.resolve(state.sessionmaker, creds.credentials)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    await _rate_limit(state, principal)
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(key=principal.name, role=principal.role.value)
    return principal


async def _rate_limit(state: AppState, principal: Principal) -> None:
    limit = principal.rate_limit_per_minute or state.settings.api.rate_limit_per_minute
    try:
        count, left_s = await state.cache.incr_window(f"rl:{principal.key_id}", 60)
    except CacheUnavailable:
        # Fail open: refusing all trading because the rate limiter is down costs more than
        # a minute without limits. Idempotency, by contrast, fails closed (see idempotency.py).
        log.warning("rate_limit_unavailable")
        return
    if count > limit:
        raise RateLimited(
            f"rate limit of {limit} requests per minute exceeded",
            retry_after_s=max(1, int(left_s + 0.999)),
        )


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency admitting only the given roles (admin is always admitted)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    async def _dep(principal: Annotated[Principal, Depends(_authenticate)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(
                f"role {principal.role.value!r} may not do this (needs one of: {names})"
            )
        return principal

    _dep.__name__ = "require_" + "_".join(r.value for r in roles)
    _dep.roles = allowed  # type: ignore[attr-defined]  # read by the role-matrix test and docs
    return _dep
