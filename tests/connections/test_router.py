"""GET /connections/health: every backend's state for the service-token holder."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
from fastapi import FastAPI

from tenantry.access.manager import AccessControl
from tenantry.api.auth import TenantGate
from tenantry.api.errors import install_error_handlers
from tenantry.cache import CacheManager
from tenantry.config import Settings
from tenantry.connections import ConnectionManager
from tenantry.connections.router import router
from tenantry.db.engine import Database
from tenantry.sessions import ApiKeys, SessionManager
from tenantry.tenants import ActiveTenants, TenantRegistry
from tests.conftest import TOKEN


async def test_health_for_the_service_token_only(settings: Settings, db: Database) -> None:
    manager = ConnectionManager(
        settings, primary=db, redis_url="", health_interval=0,
        http_endpoints={"slack": ["https://slack.example"]},
    )  # fmt: skip
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    # What the lifespan holds: the connections and the gate that checks the service token.
    gate = TenantGate(
        api_token="test-token",
        database=db,
        active=ActiveTenants(TenantRegistry(db), CacheManager()),
        sessions=SessionManager(db),
        api_keys=ApiKeys(db),
        access=AccessControl(),
    )
    app.state.tenantry = SimpleNamespace(connections=manager, gate=gate)
    transport = httpx.ASGITransport(app=app)
    async with manager, httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        denied = await client.get("/connections/health")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
        response = await client.get("/connections/health", headers=TOKEN)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        by_name = {b["name"]: b for b in body["backends"]}
        assert set(by_name) == {"postgres", "slack/1"}
        primary = by_name["postgres"]
        assert primary["kind"] == "postgres"
        assert primary["role"] == "primary"
        assert primary["breaker"]["state"] == "closed"
        assert set(primary["pool"]) == {"gate", "bulkhead", "driver"}
        assert primary["pool"]["gate"]["limit"] == settings.postgres_pool_size
        assert by_name["slack/1"]["group"] == "slack"
        assert set(body["retry_budget"]) == {"calls", "retries", "allowed", "refused"}
