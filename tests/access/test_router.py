"""The roles routes: grant, list and revoke over HTTP, audited, for the caller's tenant only."""

from __future__ import annotations

import httpx

from tenantry.audit.trail import trail_for
from tenantry.db.engine import Database
from tenantry.sessions.manager import SessionManager
from tests.conftest import TOKEN, NewTenant


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

    # mira, now an admin with a session, grants and revokes herself
    _, token = await SessionManager(db).create_session(tenant, "mira")
    mira = {"Authorization": f"Bearer {token}"}
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
