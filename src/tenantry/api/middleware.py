"""Pure ASGI middleware: request id, access log and HTTP metrics; the request body cap."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.api.errors import problem_for
from tenantry.errors import ContentTooLarge, TenantryError
from tenantry.logging import get_logger

__all__ = ["BodySizeLimit", "HttpMetrics", "RequestContextMiddleware"]

_log = get_logger("tenantry.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: The methods the metrics name; any other (a client can send any token) is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tenantry_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "tenantry_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``, kept if the caller sent a sane one)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        scope["request_id"] = request_id
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - start
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                label = method if method in _METHODS else "other"
                self.metrics.requests.labels(label, route, str(status)).inc()
                self.metrics.latency.labels(label, route).observe(elapsed)
                _record(scope, elapsed, label, route, status)
                _log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )


def _record(scope: Scope, elapsed: float, method: str, route: str, status: int) -> None:
    """The request in its tenant's series (``http_request_seconds``: route, method, status
    class), through the app's monitoring manager once the lifespan has made it; a request no
    credential named a tenant for is the platform's."""
    tenantry = getattr(getattr(scope.get("app"), "state", None), "tenantry", None)
    monitoring = getattr(tenantry, "monitoring", None)
    if monitoring is None:
        return
    performance = getattr(tenantry, "performance", None)
    if performance is not None:  # the process's requests, for its performance signals
        performance.requests.observe(elapsed, status)
    tenant = scope.get("state", {}).get("tenant_id")
    labels = {"route": route, "method": method, "status": f"{status // 100}xx"}
    try:
        monitoring.record("http_request_seconds", elapsed, labels, tenant)
    except TenantryError as exc:  # a label past the bounds: the request's answer is not ours
        _log.warning("request metric refused", error=exc.detail)


class BodySizeLimit:
    """Refuses a request body larger than ``max_bytes``: 413, problem+json (``ContentTooLarge``).

    A ``Content-Length`` above the cap is refused before anything is read. Otherwise the body is
    counted as it streams, so a chunked body without ``Content-Length`` (or one that lies about
    it) is cut off at the cap too: the read that crosses it fails, and whatever the app answers
    to that failed read is replaced by the 413. A response the app began before reading its
    body is left as it is.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, declared)
            return
        received, exceeded, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise ContentTooLarge("the request body is too large")
            return message

        async def unless_refused(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to the failed read: the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, None)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int | None) -> None:
        what = "larger than that" if size is None else f"{size} bytes"
        error = ContentTooLarge(
            f"the service accepts request bodies of at most {self.max_bytes} bytes; this one is "
            f"{what}"
        )
        await problem_for(error, Request(scope))(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
