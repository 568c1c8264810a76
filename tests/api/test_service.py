"""The HTTP service: health, metrics, docs, request ids and problem+json errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.api import create_app
from tenantry.config import Settings
from tests.conftest import TOKEN


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}
    assert (await client.get("/health")).json() == ready.json()  # the documents' health check


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    response = await client.get("/metrics", headers=TOKEN)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert 'tenantry_http_requests_total{method="GET",route="/health/live",status="200"}' in body
    assert "tenantry_http_request_duration_seconds_bucket" in body
    assert 'tenantry_db_pool_connections{state="idle"}' in body


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/tenants", "/settings/{key}", "/health/ready"} <= set(spec["paths"])
    assert (await client.get("/docs")).status_code == 200


async def test_request_id_is_kept_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith junk"})
    assert len(made.headers["x-request-id"]) == 32


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "not found"
    assert body["instance"] == "/nope"
    assert body["request_id"] == "req-1"


async def test_missing_or_wrong_token_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}):
        response = await client.get("/tenants", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["title"] == "authentication required"
    assert (await client.get("/tenants", headers=TOKEN)).status_code == 200


async def test_metrics_need_the_service_token(client: httpx.AsyncClient) -> None:
    tenant_id = f"mx-{uuid.uuid4().hex[:10]}"
    created = await client.post(
        "/tenants", json={"id": tenant_id, "display_name": "Metrics"}, headers=TOKEN
    )
    assert created.status_code == 201, created.text
    made = await client.post(
        "/api-keys",
        json={"name": "all", "service_account": "bot", "scopes": ["settings:read"]},
        headers={**TOKEN, "X-Tenant-ID": tenant_id},
    )
    assert made.status_code == 201, made.text
    tenant_key = {"Authorization": f"Bearer {made.json()['key']}"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, tenant_key):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert "tenantry_" not in response.text
    assert (await client.get("/metrics", headers=TOKEN)).status_code == 200
    # the probes stay open
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200


@pytest.fixture(scope="module")
async def few_labels(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The service naming at most 3 tenants in its metrics."""
    app = create_app(settings.model_copy(update={"metrics_max_tenants": 3}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as c:
            yield c


def tenant_labels(metrics: str, name: str) -> dict[str, float]:
    found = re.findall(rf'^{name}{{tenant="([^"]+)"}} (\S+)$', metrics, re.MULTILINE)
    return {tenant: float(value) for tenant, value in found}


async def test_metrics_name_only_the_most_active_tenants(few_labels: httpx.AsyncClient) -> None:
    tenants = [f"mx-{uuid.uuid4().hex[:10]}" for _ in range(6)]
    for rank, tenant_id in enumerate(tenants):
        created = await few_labels.post(
            "/tenants", json={"id": tenant_id, "display_name": "M"}, headers=TOKEN
        )
        assert created.status_code == 201, created.text
        for _ in range(3 * (6 - rank)):  # the first tenants are the most active
            reply = await few_labels.get("/settings", headers={**TOKEN, "X-Tenant-ID": tenant_id})
            assert reply.status_code == 200
    metrics = (await few_labels.get("/metrics", headers=TOKEN)).text
    for name in ("tenantry_cache_hits_total", "tenantry_cache_misses_total"):
        labels = tenant_labels(metrics, name)
        assert len(labels) == 4, labels  # 3 tenants and the rest
        assert "_other" in labels
        assert not set(tenants[3:]) & set(labels)
    hits = tenant_labels(metrics, "tenantry_cache_hits_total")
    assert set(tenants[:3]) <= set(hits)
