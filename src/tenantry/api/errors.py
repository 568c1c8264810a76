"""Errors as problem+json (RFC 9457), from one handler over :mod:`tenantry.errors`."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping

from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

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
    errors.RateLimited: 429,
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
    detail, which is logged). A backend that cannot take the call now says when to retry
    (``Retry-After``)."""
    status = status_of(error)
    retry_after = error.retry_after if isinstance(error, errors.BackendUnavailable) else None
    # whole seconds, at least one (RFC 9110 section 10.2.3)
    headers = None if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}
    if status >= 500:
        _log.error("request failed", error=type(error).__name__, detail=error.detail)
        detail = "the service could not complete the request"
        return problem(status, error.title, detail, request, headers=headers)
    issues = [Issue(loc=list(i.loc), msg=i.msg, type=i.type) for i in error.issues] or None
    return problem(status, error.title, error.detail, request, errors=issues, headers=headers)


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


@functools.lru_cache(maxsize=1024)
def _pattern(path: str) -> re.Pattern[str]:
    return compile_path(path)[0]


def _allowed(request: Request) -> str:
    """The methods of the resource at the request's path: of every route of its path template
    (Starlette's 405 names only the first route's, and ``/settings/{key}`` has three). As in
    OpenAPI, a concrete path wins over a templated one (``/sessions/create`` is not a session)."""
    iterate = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.16x includes lazily
    routes = iterate(request.app.routes) if iterate is not None else request.app.routes
    path = request.scope["path"]
    by_template: dict[str, set[str]] = {}
    for route in routes:
        template = getattr(route, "path", None)
        if isinstance(template, str) and _pattern(template).fullmatch(path):
            by_template.setdefault(template, set()).update(getattr(route, "methods", None) or ())
    if not by_template:
        return ""
    fewest = min(template.count("{") for template in by_template)
    methods = set().union(*(m for t, m in by_template.items() if t.count("{") == fewest))
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for this class only
        raise exc
    titles = {400: "bad request", 404: "not found", 405: "method not allowed"}
    title = titles.get(exc.status_code, "http error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    return problem(exc.status_code, title, str(exc.detail), request, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error", error=type(exc).__name__)
    return problem(500, "internal error", "the service could not complete the request", request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.TenantryError, _tenantry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
