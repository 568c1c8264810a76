"""Tenants, users and credentials for the dashboard's tests, made through the service's API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import TOKEN

__all__ = ["ORIGIN", "Tenant", "make_tenant"]

#: The Origin of a page of the ASGI test client's service (base_url http://tenantry).
ORIGIN = {"Origin": "http://tenantry"}


def _ok(response: httpx.Response, what: str) -> Any:
    assert response.is_success, f"could not {what}: {response.status_code} {response.text}"
    return response.json() if response.content else None


@dataclass(frozen=True)
class Tenant:
    """A tenant with an admin (a user holding the admin role) and a viewer, each with a
    session, an API key, and a marker user id no other tenant has."""

    id: str
    admin_token: str
    admin_session: str
    viewer_token: str
    api_key: str
    marker: str


async def make_tenant(client: httpx.AsyncClient, prefix: str) -> Tenant:
    tenant = f"{prefix}-{uuid.uuid4().hex[:10]}"
    body = {"id": tenant, "display_name": f"Tenant {tenant}"}
    _ok(await client.post("/tenants", json=body, headers=TOKEN), "create a tenant")
    acting = {**TOKEN, "X-Tenant-ID": tenant}
    admin, viewer = f"boss-{uuid.uuid4().hex[:8]}", f"watcher-{uuid.uuid4().hex[:8]}"
    _ok(await client.put(f"/roles/{admin}/admin", headers=acting), "grant admin")
    _ok(await client.put(f"/roles/{viewer}/viewer", headers=acting), "grant viewer")

    async def session(user: str) -> dict[str, Any]:
        found: dict[str, Any] = _ok(
            await client.post("/sessions/create", json={"user_id": user}, headers=acting),
            "open a session",
        )
        return found

    boss, watcher = await session(admin), await session(viewer)
    key = _ok(
        await client.post(
            "/api-keys",
            json={"name": "all", "service_account": f"robot-{tenant}", "scopes": ["*"]},
            headers=acting,
        ),
        "create an API key",
    )
    return Tenant(tenant, boss["token"], boss["session_id"], watcher["token"], key["key"], admin)
