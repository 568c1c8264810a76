"""Errors as problem+json (RFC 9457), from one handler over :mod:`tenantry.errors`."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry import errors
from tenantry.http import PROBLEM_JSON, Issue, Problem
from tenantry.logging import get_logger

__all__ = ["install_error_handlers", "problem", "problem_for"]

_log = get_logger("tenantry.api")

#: The most specific class wins: the handler walks each error's MRO.
STATUS: dict[type[errors.TenantryError], int] = {
    errors.InvalidInput: 422,
    errors.ContentTooLarge: 413,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TenantNotActive: 403,
    errors.AuthenticationError: 401,
    errors.PermissionDenied: 403,
    errors.DecryptionError: 422,
    errors.KeysDestroyed: 410,
    errors.AuditVerificationError: 409,
    errors.ReferenceMissing: 404,
    errors.IsolationViolation: 404,  # another tenant's row: answer as if it did not exist
    errors.DatabaseUnavailable: 503,
    errors.BackendUnavailable: 503,
    errors.BulkheadFull: 429,
    errors.TransactionRolledBack: 409,
}


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request,
    *,
    errors: list[Issue] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem+json answer (:class:`~tenantry.http.Problem`, the schema every route declares
    for its errors)."""
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=request.scope.get("request_id"),
        errors=errors,
    )
    answer = dict(headers or {})
    if status == 401:
        answer["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=answer,
    )


def status_of(error: errors.TenantryError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem_for(error: errors.TenantryError, request: Request) -> JSONResponse:
    """The problem+json answer to ``error`` (its status from :data:`STATUS`; a 5xx hides the
    detail, which is logged)."""
    status = status_of(error)
    if status >= 500:
        _log.error("request failed", error=type(error).__name__, detail=error.detail)
        return problem(status, error.title, "the service could not complete the request", request)
    return problem(status, error.title, error.detail, request)


async def _tenantry_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, errors.TenantryError):  # registered for this class only
        raise exc
    return problem_for(exc, request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        raise exc
    issues = [
        Issue(loc=list(e.get("loc", ())), msg=str(e.get("msg", "")), type=str(e.get("type", "")))
        for e in exc.errors()
    ]
    return problem(
        422, "invalid input", "the request does not match the schema", request, errors=issues
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for this class only
        raise exc
    titles = {400: "bad request", 404: "not found", 405: "method not allowed"}
    title = titles.get(exc.status_code, "http error")
    return problem(exc.status_code, title, str(exc.detail), request)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error", error=type(exc).__name__)
    return problem(500, "internal error", "the service could not complete the request", request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.TenantryError, _tenantry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
