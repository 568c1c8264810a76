"""Access control over HTTP: 403 problem+json on a denied action, 404 + event on a probe.

Authentication is replaced (``dependency_overrides`` on ``current_principal``) by whichever
principal a test puts in ``CALLER``; authorization runs for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from tenantry.access import Principal, PrincipalKind
from tenantry.access.probes import PROBE_EVENT, ensure_own_tenant
from tenantry.actions import SETTINGS_READ
from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.http import current_principal, require
from tenantry.threats.events import SecurityEvents
from tests.conftest import NewTenant

CALLER: list[Principal] = []

probes = APIRouter()


@probes.get("/test-only/tenants/{tenant_id}/settings")
async def foreign_settings(
    tenant_id: str, caller: Annotated[Principal, require(SETTINGS_READ)], request: Request
) -> dict[str, str]:
    await ensure_own_tenant(caller, tenant_id, f"settings of tenant {tenant_id}", request)
    return {"tenant": tenant_id}


async def _caller() -> Principal:
    return CALLER[-1]


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    application.include_router(probes)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    app.dependency_overrides[current_principal] = _caller
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
        yield client
    app.dependency_overrides.clear()
    CALLER.clear()


def act_as(tenant_id: str, *roles: str, scopes: frozenset[str] | None = None) -> None:
    kind = PrincipalKind.SESSION if scopes is None else PrincipalKind.API_KEY
    CALLER.append(
        Principal(tenant_id, "user-7", kind, frozenset(roles), scopes=scopes or frozenset())
    )


async def test_a_viewer_reads_but_cannot_write(
    http: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant("acl-http")
    act_as(tenant.id, "editor")
    assert (await http.put("/settings/theme", json={"value": "dark"})).status_code == 200
    act_as(tenant.id, "viewer")
    assert (await http.get("/settings/theme")).json()["value"] == "dark"
    denied = await http.put("/settings/theme", json={"value": "light"})
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["title"] == "permission denied"
    assert (await http.delete("/settings/theme")).status_code == 403
    assert (await http.get("/settings/theme")).json()["value"] == "dark"  # nothing changed
    assert (await http.get("/cache/stats")).status_code == 200


async def test_no_role_is_denied_everywhere(http: httpx.AsyncClient, new_tenant: NewTenant) -> None:
    tenant = await new_tenant("acl-http")
    act_as(tenant.id)
    for path in ("/settings", "/settings/theme", "/cache/stats"):
        assert (await http.get(path)).status_code == 403


async def test_api_key_scopes_narrow_the_service_role(
    http: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant("acl-http")
    act_as(tenant.id, "service", scopes=frozenset({"settings:read"}))
    assert (await http.get("/settings")).status_code == 200
    assert (await http.put("/settings/k", json={"value": 1})).status_code == 403
    act_as(tenant.id, "service", scopes=frozenset({"settings:*"}))
    assert (await http.put("/settings/k", json={"value": 1})).status_code == 200


async def test_platform_routes_need_the_service_token(http: httpx.AsyncClient) -> None:
    # a tenant's admin session is no platform: the registry routes want the service token
    act_as("acme-records", "admin")
    for path in ("/tenants", "/connections/health"):
        assert (await http.get(path)).status_code == 401


async def test_a_foreign_tenant_probe_is_404_and_recorded(
    http: httpx.AsyncClient, new_tenant: NewTenant, db: Database
) -> None:
    mine, theirs = await new_tenant("acl-http"), await new_tenant("acl-http")
    started = datetime.now(UTC)
    act_as(mine.id, "viewer")
    own = await http.get(f"/test-only/tenants/{mine.id}/settings")
    assert own.status_code == 200
    probe = await http.get(f"/test-only/tenants/{theirs.id}/settings")
    missing = await http.get("/test-only/tenants/no-such-tenant/settings")
    assert probe.status_code == missing.status_code == 404
    assert probe.json()["title"] == "not found"
    events = await SecurityEvents(db).since(mine.id, started, kinds=(PROBE_EVENT,))
    assert len(events) == 2
    event = events[-1]
    assert event.severity == "medium"
    assert event.principal_id == "user-7"
    assert event.detail["resource"] == f"settings of tenant {theirs.id}"
    assert event.detail["path"] == f"/test-only/tenants/{theirs.id}/settings"
    assert await SecurityEvents(db).since(theirs.id, started) == []
