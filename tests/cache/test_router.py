"""GET /cache/stats and the cache's metrics, through the service (with Redis as L2)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.context import tenant_scope
from tests.conftest import TOKEN, require_redis


@pytest.fixture
async def app_with_redis(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_app(settings.model_copy(update={"redis_url": require_redis()}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            yield client, app.state.tenantry


async def test_cache_stats_are_the_callers_tenants(
    app_with_redis: tuple[httpx.AsyncClient, object],
) -> None:
    client, state = app_with_redis
    cache = state.cache  # type: ignore[attr-defined]
    assert cache.l2 is not None
    ids = [f"cs-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for tenant_id in ids:
        made = await client.post(
            "/tenants", json={"id": tenant_id, "display_name": "x"}, headers=TOKEN
        )
        assert made.status_code == 201

    async def load() -> str:
        return "value"

    with tenant_scope(ids[0]):
        await cache.get_or_set("k", load)
        await cache.get_or_set("k", load)
        await cache.get("absent")
    response = await client.get("/cache/stats", headers={**TOKEN, "X-Tenant-ID": ids[0]})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == ids[0]
    assert body["loads"] == 1
    assert body["hits"] == 1
    # Ours: the first get_or_set and the absent key; the service's: its first "tenant active" check.
    assert body["misses"] == 3
    other = (await client.get("/cache/stats", headers={**TOKEN, "X-Tenant-ID": ids[1]})).json()
    assert other["hits"] == other["loads"] == 0
    assert (await client.get("/cache/stats", headers=TOKEN)).status_code == 401  # no X-Tenant-ID
    metrics = (await client.get("/metrics", headers=TOKEN)).text
    assert f'tenantry_cache_loads_total{{tenant="{ids[0]}"}} 1.0' in metrics
    health = await client.get("/connections/health", headers=TOKEN)
    assert health.status_code == 200
    names = {b["name"] for b in health.json()["backends"]}
    assert {"postgres", "redis"} <= names
    assert (await client.get("/connections/health")).status_code == 401
