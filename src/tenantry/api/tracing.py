"""The service's traces: the tracer provider the lifespan makes, and a server span per request.

With ``TENANTRY_TRACING=off`` (the default) nothing here runs: no provider is made, the
middleware is not installed, and :mod:`tenantry.tracing` finds no tracer. Otherwise the lifespan
makes an SDK ``TracerProvider`` (resource ``service.name=tenantry``, a ``BatchSpanProcessor``
to the OTLP/HTTP or console exporter), hands its tracer to the background work it starts and to
this middleware, and shuts it down (exporting what is left) at its end. No process-wide provider
is set: an application that embeds tenantry keeps its own.

A request's span is ``SERVER``, named ``<method> <route template>``, with the method, route,
status, request id and the caller's tenant (``tenantry.tenant_id``), never the path's values,
the query, a header or the body. A ``traceparent`` header is honoured as the parent (the trace
continues the caller's), with its trace id and span id only: its ``tracestate`` is dropped, no
``baggage`` is read, and whether the request is sampled is the service's draw
(``TENANTRY_TRACING_SAMPLE_RATIO``), not the caller's flag, so a client can neither force every
request of its flood into the traces nor keep its own out of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from contextvars import Token

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    use_span,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.config import Settings
from tenantry.tracing import TENANT_ATTRIBUTE, reset_tracer, use_tracer

__all__ = ["AppTracing", "TracingMiddleware"]

#: The methods a span names; any other token a client sends is ``_OTHER`` (semantic conventions).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PROPAGATOR = TraceContextTextMapPropagator()


class AppTracing:
    """The app's tracer provider, made by :meth:`start` in the lifespan and ended by
    :meth:`close` (``tracer`` is None before, after, and always when tracing is off)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        self._token: Token[Tracer | None] | None = None

    def start(self) -> None:
        """Make the provider, and trace the caller's context (the lifespan's: the background
        tasks it starts afterwards inherit it)."""
        mode = self.settings.tracing
        if mode == "off":
            return
        ratio = self.settings.tracing_sample_ratio
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: "tenantry"}),
            sampler=ParentBased(
                root=TraceIdRatioBased(ratio),
                remote_parent_sampled=_Draw(ratio),
                remote_parent_not_sampled=_Draw(ratio),
            ),
        )
        provider.add_span_processor(BatchSpanProcessor(_exporter(mode)))
        self.provider = provider
        self.tracer = provider.get_tracer("tenantry")
        self._token = use_tracer(self.tracer)

    async def close(self) -> None:
        """Export what is left and stop (the exporter's own timeout bounds it)."""
        provider, self.provider, self.tracer = self.provider, None, None
        if self._token is not None:
            with contextlib.suppress(ValueError):  # the lifespan ended in another context
                reset_tracer(self._token)
            self._token = None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)


def _exporter(mode: str) -> SpanExporter:
    if mode == "console":
        return ConsoleSpanExporter()
    # The exporter reads the standard variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (else
    # OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else localhost:4318), _HEADERS, _TIMEOUT...
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,  # (protobuf and requests: loaded only by a service that exports)
    )

    return OTLPSpanExporter()


class _Draw(Sampler):
    """Samples ``ratio`` of the calls by a draw of its own: for remote parents, whose sampled
    flag and trace id (which ``TraceIdRatioBased`` would read) the caller chose."""

    def __init__(self, ratio: float) -> None:
        self._ratio = ratio

    def should_sample(  # noqa: PLR0917 - the SDK's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: object = None,
    ) -> SamplingResult:
        if random.random() < self._ratio:  # noqa: S311 - a sampling draw, not a secret
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return f"Draw{{{self._ratio}}}"


def _parent(scope: Scope) -> Context | None:
    """The caller's span from ``traceparent``, as a remote parent: only that header is read (no
    ``tracestate``, no ``baggage``). None without one (an invalid one is a new root too)."""
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return _PROPAGATOR.extract({"traceparent": value.decode("latin-1")})
    return None


class TracingMiddleware:
    """A ``SERVER`` span around each request, current while the app answers it (the manager
    calls and transactions are its children). Installed only when tracing is on; inside the
    request id (whose id it records), outside the body cap (whose 413 it records)."""

    def __init__(self, app: ASGIApp, tracing: AppTracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self.tracing.tracer
        if scope["type"] != "http" or tracer is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        span = tracer.start_span(
            method,
            context=_parent(scope),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        )
        status: int | None = None
        error: BaseException | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = use_tracer(tracer)
        try:
            with use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = exc
            raise
        finally:
            reset_tracer(token)
            _finish(span, scope, method, status, error)


def _finish(
    span: Span, scope: Scope, method: str, status: int | None, error: BaseException | None
) -> None:
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    request_id = scope.get("request_id")
    if isinstance(request_id, str):
        span.set_attribute("tenantry.request_id", request_id)
    tenant = scope.get("state", {}).get("tenant_id")
    if isinstance(tenant, str):
        span.set_attribute(TENANT_ATTRIBUTE, tenant)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None:
        kind = type(error)
        span.set_attribute("error.type", f"{kind.__module__}.{kind.__qualname__}")
        span.set_status(Status(StatusCode.ERROR, kind.__name__))
    elif status is None or status >= 500:
        span.set_attribute("error.type", str(status or "incomplete response"))
        span.set_status(Status(StatusCode.ERROR))
    span.end()
