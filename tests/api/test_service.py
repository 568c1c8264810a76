"""The HTTP service: health, metrics, docs, request ids and problem+json errors."""

from __future__ import annotations

import httpx

from tests.conftest import TOKEN


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    response = await client.get("/metrics")
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
