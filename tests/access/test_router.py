"""The roles routes: grant, list and revoke over HTTP, audited, for the caller's tenant only."""

from __future__ import annotations

import httpx

from tenantry.audit.trail import trail_for
from tenantry.db.engine import Database
from tenantry.sessions.manager import SessionManager
from tests.conftest import TOKEN, NewTenant
from tests.passkeys.helpers import stepped_up_session


async def test_grant_list_revoke(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    backend = {**TOKEN, "X-Tenant-ID": tenant}
    granted = await client.put("/roles/mira/admin", headers=backend)
    assert granted.status_code == 200, granted.text
    assert granted.json() == {"principal_id": "mira", "roles": ["admin"], "changed": True}
    again = await client.put("/roles/mira/admin", headers=backend)
    assert again.json()["changed"] is False
    assert (await client.get("/roles/mira", headers=backend)).json()["roles"] == ["admin"]

    # mira, now an admin with a session (stepped up with a passkey), grants and revokes herself
    mira = {"Authorization": f"Bearer {await stepped_up_session(db, tenant, 'mira')}"}
    assert (await client.put("/roles/noor/editor", headers=mira)).json()["changed"] is True
    revoked = await client.delete("/roles/noor/editor", headers=mira)
    assert revoked.json() == {"principal_id": "noor", "roles": [], "changed": True}
    assert (await client.delete("/roles/noor/editor", headers=mira)).json()["changed"] is False

    entries = [e.entry for e in await trail_for(db).audit_log.entries(tenant) if e.entry]
    assert [(e.action, e.actor, e.resource) for e in entries if e.action.startswith("role.")] == [
        ("role.grant", "service:platform", "principal:mira"),
        ("role.grant", "session:mira", "principal:noor"),
        ("role.revoke", "session:mira", "principal:noor"),
    ]


async def test_bad_input_and_no_permission_change_nothing(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    backend = {**TOKEN, "X-Tenant-ID": tenant}
    for path in ("/roles/mira/owner", "/roles/mira/platform", "/roles/" + "x" * 201 + "/admin"):
        response = await client.put(path, headers=backend)
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    _, token = await SessionManager(db).create_session(tenant, "noor")  # no roles at all
    denied = await client.put("/roles/noor/admin", headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403
    assert (await client.get("/roles/noor", headers=backend)).json()["roles"] == []
    assert (await client.put("/roles/noor/admin")).status_code == 401
    assert await trail_for(db).audit_log.size(tenant) == 1  # the session's creation only


async def test_a_role_change_reaches_live_sessions_at_once(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    """Issue 12, item 1: a revoked admin's live session re-granted itself admin 51 s later."""
    tenant = (await new_tenant()).id
    backend = {**TOKEN, "X-Tenant-ID": tenant}
    assert (await client.put("/roles/zed/admin", headers=backend)).status_code == 200
    zed = {"Authorization": f"Bearer {await stepped_up_session(db, tenant, 'zed')}"}
    assert (await client.get("/roles/zed", headers=zed)).status_code == 200  # cached, as admin

    assert (await client.delete("/roles/zed/admin", headers=backend)).status_code == 200
    denied = await client.put("/roles/zed/admin", headers=zed)
    assert denied.status_code == 403, denied.text
    assert (await client.get("/roles/zed", headers=backend)).json()["roles"] == []

    assert (await client.put("/roles/zed/admin", headers=backend)).status_code == 200
    assert (await client.get("/roles/zed", headers=zed)).status_code == 200  # granted: at once too


async def test_the_platform_tenant_gives_no_roles(client: httpx.AsyncClient) -> None:
    """Issue 12, item 4: the reserved tenant is the operator's alone; nobody is made its admin."""
    operator = {**TOKEN, "X-Tenant-ID": "platform"}
    refused = await client.put("/roles/eve/admin", headers=operator)
    assert refused.status_code == 403, refused.text
    assert (await client.get("/roles/eve", headers=operator)).json()["roles"] == []


async def test_a_user_without_a_role_acts_with_the_tenants_default_role(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    """Issue 12, item 7: a session for a user with no role was refused everywhere."""
    tenant = (await new_tenant()).id
    backend = {**TOKEN, "X-Tenant-ID": tenant}
    _, token = await SessionManager(db).create_session(tenant, "newcomer")
    newcomer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/settings", headers=newcomer)).status_code == 200  # viewer
    assert (await client.put("/settings/k", json={"value": 1}, headers=newcomer)).status_code == 403
    assert (await client.get("/default-role", headers=backend)).json() == {"role": "viewer"}

    changed = await client.put("/default-role/none", headers=backend)
    assert changed.json() == {"role": "none"}
    assert (await client.get("/settings", headers=newcomer)).status_code == 403  # at once
    assert (await client.put("/default-role/editor", headers=backend)).status_code == 200
    assert (await client.put("/settings/k", json={"value": 1}, headers=newcomer)).status_code == 200

    for bad in ("/default-role/admin", "/default-role/root"):
        assert (await client.put(bad, headers=backend)).status_code == 422
    assert (
        await client.put("/settings/default_role", json={"value": "admin"}, headers=backend)
    ).status_code == 403
    entries = [e.entry for e in await trail_for(db).audit_log.entries(tenant) if e.entry]
    assert [e.resource for e in entries if e.action == "setting.set"] == [
        "setting:default_role",
        "setting:default_role",
        "setting:k",
    ]
