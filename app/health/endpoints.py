"""Liveness, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(state: StateDep) -> dict[str, Any]:
    """The process is up; lists the model versions it serves."""
    models = state.services.get("model_versions", {})
    return {"status": "ok", "models": models}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when the database and the cache answer."""
    checks: dict[str, str] = {}
    try:
        async with state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    checks["cache"] = "ok" if await state.cache.ping() else "down"
    # Without the cache the service still quotes (rate limits fail open, idempotent requests
    # get 503): it stays in the load balancer, reported as degraded. Without the database it
    # cannot record anything, so it is not ready.
    ready = checks["database"] == "ok"
    status = "not_ready" if not ready else ("ready" if checks["cache"] == "ok" else "degraded")
    return JSONResponse(
        {"status": status, "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
