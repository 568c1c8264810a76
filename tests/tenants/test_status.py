"""A tenant that is not active has no working credential, and deletion is final (issue 12, item 3).

Before: only the service token checked the tenant's status; a suspended tenant's session tokens
and API keys still wrote settings and validated, and a deleted tenant could be made active again.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tenantry.cache import CacheManager
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError
from tenantry.sessions import ApiKeys, SessionManager
from tenantry.sessions.tokens import make_token
from tests.conftest import TOKEN


async def _tenant(client: httpx.AsyncClient) -> str:
    tenant_id = f"st-{uuid.uuid4().hex[:10]}"
    made = await client.post("/tenants", json={"id": tenant_id, "display_name": "x"}, headers=TOKEN)
    assert made.status_code == 201, made.text
    return tenant_id


def _as(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def _status(client: httpx.AsyncClient, tenant_id: str, status: str) -> httpx.Response:
    return await client.patch(f"/tenants/{tenant_id}", json={"status": status}, headers=TOKEN)


async def test_every_credential_of_a_suspended_tenant_is_refused(
    client: httpx.AsyncClient,
) -> None:
    tenant_id = await _tenant(client)
    granted = await client.put("/roles/ed/editor", headers=_as(tenant_id))
    assert granted.status_code == 200, granted.text
    session = await client.post(
        "/sessions/create", json={"tenant_id": tenant_id, "user_id": "ed"}, headers=_as(tenant_id)
    )
    assert session.status_code == 201, session.text
    sid, token = session.json()["session_id"], session.json()["token"]
    key = await client.post(
        "/api-keys",
        json={"name": "sync", "service_account": "bot", "scopes": ["settings:read"]},
        headers=_as(tenant_id),
    )
    assert key.status_code == 201, key.text
    api_key = key.json()["key"]
    # All three work while the tenant is active (and their answers are now cached).
    put = await client.put("/settings/k", json={"value": 1}, headers=_bearer(token))
    assert put.status_code == 200, put.text
    assert (await client.get("/settings", headers=_bearer(api_key))).status_code == 200
    assert (await client.get("/settings", headers=_as(tenant_id))).status_code == 200

    assert (await _status(client, tenant_id, "suspended")).status_code == 200
    for headers in (_bearer(token), _bearer(api_key), _as(tenant_id)):
        refused = await client.put("/settings/k", json={"value": 2}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["title"] == "tenant not active"
    validated = await client.get(f"/sessions/{sid}/validate", headers=_bearer(token))
    assert validated.status_code == 403
    # Nothing was written while suspended.
    assert (await _status(client, tenant_id, "active")).status_code == 200
    got = await client.get("/settings/k", headers=_bearer(token))
    assert got.status_code == 200
    assert got.json()["value"] == 1


async def test_a_forged_token_is_refused_alike_whether_its_tenant_exists(
    client: httpx.AsyncClient,
) -> None:
    existing = await _tenant(client)
    answers = []
    for tenant_id in (existing, f"ghost-{uuid.uuid4().hex[:8]}"):
        for kind in ("s", "k"):
            forged = make_token(kind, tenant_id)  # type: ignore[arg-type]
            response = await client.get("/settings", headers=_bearer(forged))
            assert response.status_code == 401, response.text
            answers.append(response.json()["detail"])
    assert answers[:2] == answers[2:]  # the same answer: no tenant is revealed
    assert not any("foreign key" in a or "violates" in a for a in answers)


async def test_deletion_is_final(client: httpx.AsyncClient) -> None:
    tenant_id = await _tenant(client)
    assert (await _status(client, tenant_id, "deleted")).status_code == 200
    back = await _status(client, tenant_id, "active")
    assert back.status_code == 409
    assert "final" in back.json()["detail"]
    assert (await client.get(f"/tenants/{tenant_id}", headers=TOKEN)).json()["status"] == "deleted"
    assert (await _status(client, tenant_id, "deleted")).status_code == 200  # idempotent


async def test_the_platform_tenant_keeps_its_status(client: httpx.AsyncClient) -> None:
    refused = await _status(client, "platform", "suspended")
    assert refused.status_code == 409
    got = await client.get("/tenants/platform", headers=TOKEN)
    assert got.json()["status"] == "active"


async def test_forged_credentials_allocate_nothing_per_tenant(db: Database) -> None:
    """Issue 12, item 10: each forged tenant id used to create cache state and metric series."""
    cache = CacheManager(l1_bytes=1024 * 1024)
    sessions, keys = SessionManager(db, cache=cache), ApiKeys(db, cache=cache)
    for n in range(50):
        ghost = f"ghost-{uuid.uuid4().hex[:8]}-{n}"
        with pytest.raises(AuthenticationError, match="invalid session token"):
            await sessions.validate(make_token("s", ghost))
        with pytest.raises(AuthenticationError, match="invalid API key"):
            await keys.authenticate(make_token("k", ghost))
    assert cache.tenants() == []
    assert cache.l1.tenants() == []
