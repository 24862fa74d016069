"""One error hierarchy, one JSON shape: ``{"error": code, "detail": message, "field": path}``.

Nothing else leaves the service: unexpected exceptions become a bare 500 ``internal_error``
(logged with their traceback), database outages a 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import is_outage, sqlstate
from app.domain.errors import DomainError

log = structlog.get_logger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    detail: str
    field: str | None = None


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str] | None:
        return None


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unprocessable(AppError):
    status_code = 422
    code = "invalid"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ServiceUnavailable(AppError):
    status_code = 503
    code = "unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


def error_response(
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, detail=detail, field=field).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entry for the errors an endpoint declares."""
    return {e.status_code: {"model": ErrorBody, "description": e.code} for e in errors}


#: errors any authenticated /v1 endpoint may answer; routers declare these for all their routes
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed request (e.g. invalid JSON)"},
    401: {"model": ErrorBody, "description": "missing or unknown API key"},
    403: {"model": ErrorBody, "description": "the key's role may not do this"},
    413: {"model": ErrorBody, "description": "request body too large"},
    422: {"model": ErrorBody, "description": "invalid field (named in `field`)"},
    429: {"model": ErrorBody, "description": "rate limit exceeded (see Retry-After)"},
    503: {"model": ErrorBody, "description": "a dependency is down (see Retry-After)"},
}


def _loc_to_field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or ".".join(str(p) for p in loc)


def validation_summary(errors: Sequence[Any]) -> tuple[str | None, str]:
    """The first offending field and a readable detail of pydantic errors (at most five).
    An error of the whole object (a model validator's) names ``body``."""
    if not errors:
        return None, "invalid request"
    field = _loc_to_field(tuple(errors[0].get("loc", ()))) or "body"
    detail = "; ".join(
        f"{_loc_to_field(tuple(e.get('loc', ()))) or 'body'}: {e['msg']}" for e in errors[:5]
    )
    return field, detail


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.detail, exc.field, exc.headers())

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(422, exc.code, exc.reason, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return error_response(400, "malformed_json", f"body is not valid JSON: {first['msg']}")
        field, detail = validation_summary(errors)
        return error_response(422, "validation_error", detail, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("storage_unavailable", error=type(exc).__name__)
        return error_response(
            503, "unavailable", "storage unavailable, retry shortly", None, {"Retry-After": "1"}
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if sqlstate(exc) == "22021":  # character not in repertoire (e.g. NUL in a query param)
            return error_response(
                422, "invalid_characters", "text holds characters that cannot be stored"
            )
        if is_outage(exc):
            log.warning("storage_unavailable", error=type(exc.orig).__name__)
            return error_response(
                503, "unavailable", "storage unavailable, retry shortly", None, {"Retry-After": "1"}
            )
        log.exception("database_error")
        return error_response(500, "internal_error", "internal error")

    @app.exception_handler(StaleDataError)
    async def _stale(_: Request, exc: StaleDataError) -> JSONResponse:
        return error_response(409, "concurrent_update", "the RFQ changed concurrently; retry")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return error_response(500, "internal_error", "internal error")
