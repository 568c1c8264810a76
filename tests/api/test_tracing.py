"""Traces: the service exports its requests and manager calls over OTLP/HTTP to a real collector
on loopback (``TENANTRY_TRACING=otlp``), and with tracing off (the default) makes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from tenantry.api import create_app
from tenantry.api.tracing import AppTracing, TracingMiddleware
from tenantry.config import Settings
from tenantry.tracing import current_tracer, reset_tracer, traced, use_tracer
from tests.conftest import TOKEN


@dataclass
class Collector:
    """An OTLP/HTTP trace receiver: what it was sent, raw and decoded."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    spans: list[tuple[dict[str, Any], Span]] = field(default_factory=list)  # (resource, span)


@pytest.fixture
def collector() -> Iterator[Collector]:
    received = Collector(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            request = ExportTraceServiceRequest.FromString(body)
            received.bodies.append(body)
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    received.spans.extend((resource, s) for s in scope_spans.spans)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind)
    return found


def platform(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


async def test_requests_and_manager_calls_are_exported_over_otlp(
    settings: Settings, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url)
    tenant = f"tr-{uuid.uuid4().hex[:10]}"
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    secret_value = f"secret-{uuid.uuid4().hex}"
    app = create_app(settings.model_copy(update={"tracing": "otlp"}))
    async with app.router.lifespan_context(app):
        assert current_tracer() is not None  # the lifespan's background work is traced
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            made = await client.post(
                "/tenants", json={"id": tenant, "display_name": "T"}, headers=TOKEN
            )
            assert made.status_code == 201, made.text
            body = {"name": "sync", "service_account": "bot", "scopes": ["*"]}
            key = (await client.post("/api-keys", json=body, headers=platform(tenant))).json()[
                "key"
            ]
            body = {"tenant_id": tenant, "user_id": "u-1", "client": {"user_agent": "ua"}}
            created = await client.post("/sessions/create", json=body, headers=platform(tenant))
            assert created.status_code == 201, created.text
            token = created.json()["token"]
            read = await client.get(
                "/settings",
                headers={
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{trace_id}-{parent_id}-01",
                    "tracestate": "evil=injected",
                    "baggage": "tenantry.tenant_id=someone-else,evil=injected",
                    "X-Request-ID": "trace-req-1",
                },
            )
            assert read.status_code == 200, read.text
            wrote = await client.put(
                "/settings/motto",
                json={"value": secret_value},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert wrote.status_code == 200, wrote.text
            assert (await client.get("/nope")).status_code == 404
            refused = await client.get("/settings", headers={"Authorization": "Bearer tnt_s_x"})
            assert refused.status_code == 401
        assert current_tracer() is not None
    assert current_tracer() is None  # the lifespan's end undid it
    # The provider was shut down with the lifespan: everything is exported by now.
    raw = b"".join(collector.bodies)
    for secret in (key, token, secret_value, "test-token", "evil", "someone-else"):
        assert secret.encode() not in raw, secret
    spans = [s for _, s in collector.spans]
    assert {r["service.name"] for r, _ in collector.spans} == {"tenantry"}
    by_id = {s.span_id: s for s in spans}
    servers = {s.name: s for s in spans if s.kind == Span.SPAN_KIND_SERVER}
    assert {
        "POST /tenants",
        "POST /api-keys",
        "POST /sessions/create",
        "GET /settings",
        "PUT /settings/{key}",
        "GET",
    } <= set(servers)

    def children(parent: Span) -> list[Span]:
        return [s for s in spans if s.parent_span_id == parent.span_id]

    def descendants(parent: Span) -> list[Span]:
        found = children(parent)
        return found + [d for c in found for d in descendants(c)]

    # The session's read continues the caller's trace, with nothing else of its headers.
    (get,) = [s for s in spans if s.name == "GET /settings" and s.parent_span_id]
    assert get.trace_id.hex() == trace_id
    assert get.parent_span_id.hex() == parent_id
    assert get.trace_state == ""
    assert attributes(get.attributes) == {
        "http.request.method": "GET",
        "http.route": "/settings",
        "http.response.status_code": 200,
        "tenantry.request_id": "trace-req-1",
        "tenantry.tenant_id": tenant,
    }
    assert get.status.code == Status.STATUS_CODE_UNSET
    (auth,) = [s for s in children(get) if s.name == "auth.authenticate"]
    assert [s.name for s in children(auth)] == ["sessions.validate"]
    # The key's write: authenticated, then a transaction of the tenant's.
    put = servers["PUT /settings/{key}"]
    below = descendants(put)
    assert "api_keys.authenticate" in {s.name for s in below}
    transactions = [s for s in below if s.name == "db.transaction"]
    assert transactions
    assert all(attributes(s.attributes)["tenantry.tenant_id"] == tenant for s in transactions)
    assert all(s.trace_id == put.trace_id for s in below)
    created_span = [s for s in descendants(servers["POST /sessions/create"])]
    (create,) = [s for s in created_span if s.name == "sessions.create"]
    assert attributes(create.attributes)["tenantry.tenant_id"] == tenant
    # Every tenant attribute of these requests' spans names the tenant, none another one.
    for server in (get, put, servers["POST /sessions/create"], servers["POST /api-keys"]):
        for s in [server, *descendants(server)]:
            assert attributes(s.attributes).get("tenantry.tenant_id", tenant) == tenant, s.name
    # An unmatched route: no route template, a 404 is the client's error, not the service's.
    unmatched = servers["GET"]
    assert "http.route" not in attributes(unmatched.attributes)
    assert attributes(unmatched.attributes)["http.response.status_code"] == 404
    assert unmatched.status.code == Status.STATUS_CODE_UNSET
    # A refused credential: the validation failed (its type, no message), the request answered.
    failed = [s for s in spans if s.name == "sessions.validate" and s.status.code == 2]
    assert failed
    assert attributes(failed[0].attributes)["error.type"].endswith("AuthenticationError")
    assert failed[0].status.message == "AuthenticationError"
    assert all(by_id.get(s.parent_span_id) is not None for s in failed)


async def test_tracing_off_makes_no_provider_and_exports_nothing(
    settings: Settings, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url)
    assert settings.tracing == "off"  # the default
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            assert (await client.get("/settings", headers=platform("platform"))).status_code == 200
            assert current_tracer() is None
        stack = app.middleware_stack
        while stack is not None:
            assert not isinstance(stack, TracingMiddleware)
            stack = getattr(stack, "app", None)
    assert collector.bodies == []
    # No process-wide provider was set either: the API's proxy is still the global one.
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"


async def test_a_caller_cannot_force_or_avoid_sampling(settings: Settings) -> None:
    """A remote parent's sampled flag is not the decision: ratio 0 traces none, 1 traces all."""
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    unsampled = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    for ratio, parent, expected in ((0.0, remote, False), (1.0, unsampled, True)):
        tracing = AppTracing(settings.model_copy(update={"tracing": "console"}))
        tracing.settings = tracing.settings.model_copy(update={"tracing_sample_ratio": ratio})
        tracing.start()
        try:
            assert tracing.tracer is not None
            span = tracing.tracer.start_span(
                "x", context=set_span_in_context(NonRecordingSpan(parent))
            )
            assert span.is_recording() is expected
            span.end()
        finally:
            await tracing.close()


async def test_traced_costs_nothing_without_a_tracer_and_names_the_tenant_argument() -> None:
    calls: list[str] = []

    @traced("demo.call")
    async def call(tenant_id: str, value: int) -> int:
        calls.append(tenant_id)
        return value * 2

    assert current_tracer() is None
    assert await call("acme-co", 2) == 4
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    token = use_tracer(provider.get_tracer("test"))
    try:
        assert await call(value=3, tenant_id="acme-co") == 6
        assert await call("not a tenant id'; --", 1) == 2
    finally:
        reset_tracer(token)
    first, second = exported.get_finished_spans()
    assert first.name == "demo.call"
    assert dict(first.attributes or {}) == {"tenantry.tenant_id": "acme-co"}
    assert dict(second.attributes or {}) == {}  # not a valid id: not written down
    assert calls == ["acme-co", "acme-co", "not a tenant id'; --"]
