"""Invariant 7: every state change of a manager writes an audit entry, in its own transaction."""

from __future__ import annotations

import httpx
import pytest

from tenantry.access.manager import AccessControl
from tenantry.audit.schemas import AuditEntry
from tenantry.audit.trail import SYSTEM_ACTOR, AuditTrail, trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, SettingNotFound, TenantNotFound
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager
from tenantry.tenants import TenantRegistry, TenantSettings
from tests.conftest import TOKEN, NewTenant


async def audited(db: Database, tenant_id: str, start: int = 0) -> list[AuditEntry]:
    entries = await trail_for(db).audit_log.entries(tenant_id, start, 1000)
    assert all(e.entry is not None for e in entries)  # sealed, and they open
    return [e.entry for e in entries if e.entry is not None]


def actions(entries: list[AuditEntry]) -> list[tuple[str, str, str]]:
    return [(e.action, e.actor, e.resource) for e in entries]


async def test_tenant_changes_go_to_the_platform_tree(db: Database) -> None:
    before = await trail_for(db).audit_log.size("platform")
    registry = TenantRegistry(db)
    tenant = await registry.create("trail-t-" + str(before), "Trail", actor="ops:ada")
    await registry.update_status(tenant.id, "suspended")
    entries = await audited(db, "platform", before)
    mine = [e for e in entries if e.resource == f"tenant:{tenant.id}"]  # other workers' too
    assert actions(mine) == [
        ("tenant.create", "ops:ada", f"tenant:{tenant.id}"),
        ("tenant.status", SYSTEM_ACTOR, f"tenant:{tenant.id}"),
    ]
    assert mine[0].detail == {"tier": "free", "status": "active"}
    assert mine[1].detail == {"status": "suspended"}
    assert await trail_for(db).audit_log.size(tenant.id) == 0  # its own tree starts empty


async def test_every_change_of_the_tenant_managers_is_audited(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    access, settings = AccessControl(db), TenantSettings(tenant, db)
    sessions, keys = SessionManager(db, access=access), ApiKeys(db)

    assert await access.grant(tenant, "mira", "editor", actor="session:ada")
    assert not await access.grant(tenant, "mira", "editor")  # no change: no entry
    await settings.set("locale", "de-DE", actor="session:ada")
    await settings.delete("locale")
    with pytest.raises(SettingNotFound):
        await settings.delete("locale")
    session_id, token = await sessions.create_session(tenant, "mira", actor="service:platform")
    _, fresh = await sessions.refresh(token)
    await sessions.revoke(session_id, actor="session:ada")
    issued = await keys.create(tenant, "ingest", "svc-ingest", scopes=["settings:read"])
    await keys.revoke(tenant, issued.key_id, actor="session:ada")
    assert await access.revoke(tenant, "mira", "editor")

    entries = await audited(db, tenant)
    assert actions(entries) == [
        ("role.grant", "session:ada", "principal:mira"),
        ("setting.set", "session:ada", "setting:locale"),
        ("setting.delete", SYSTEM_ACTOR, "setting:locale"),
        ("session.create", "service:platform", f"session:{session_id}"),
        ("session.refresh", "mira", f"session:{session_id}"),
        ("session.revoke", "session:ada", f"session:{session_id}"),
        ("api_key.create", SYSTEM_ACTOR, f"api_key:{issued.key_id}"),
        ("api_key.revoke", "session:ada", f"api_key:{issued.key_id}"),
        ("role.revoke", SYSTEM_ACTOR, "principal:mira"),
    ]
    assert all(e.tenant == tenant for e in entries)
    assert entries[0].detail == {"role": "editor"}
    assert entries[3].detail == {"user": "mira", "type": "user", "level": "high", "evicted": 0}
    assert entries[6].detail == {"account": "svc-ingest", "scopes": ["settings:read"]}
    assert fresh != token
    report = await trail_for(db).audit_log.verify(tenant)
    assert report.ok, report.problems


async def test_an_entry_rolls_back_with_its_change(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    access = AccessControl(db)
    with pytest.raises(RuntimeError), tenant_scope(tenant):
        async with db.tenant_transaction():  # the boundary's transaction: the grant joins it
            assert await access.grant(tenant, "mira", "admin")
            raise RuntimeError("the request failed after the grant")
    assert await access.roles_of(tenant, "mira") == frozenset()
    assert await trail_for(db).audit_log.size(tenant) == 0
    assert await access.grant(tenant, "mira", "admin")  # and the next entry is number 0
    assert [e.seq for e in await trail_for(db).audit_log.entries(tenant)] == [0]


async def test_a_change_of_a_missing_tenant_writes_nothing(db: Database) -> None:
    before = await trail_for(db).audit_log.size("platform")
    with pytest.raises(TenantNotFound):
        await AccessControl(db).grant("no-such-tenant", "mira", "admin")
    with pytest.raises(TenantNotFound):
        await TenantSettings("no-such-tenant", db).set("k", 1)
    with pytest.raises(TenantNotFound):
        await TenantRegistry(db).update_status("no-such-tenant", "archived")
    after = await audited(db, "platform", before)
    assert not [e for e in after if e.resource == "tenant:no-such-tenant"]


async def test_a_bad_entry_is_refused_and_changes_nothing(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    with pytest.raises(InvalidInput, match="actor"):
        await trail.record(tenant, "x.y", actor="a" * 201)
    with pytest.raises(InvalidInput, match="action"):
        await trail.record(tenant, "", actor="a")
    with pytest.raises(InvalidInput, match="audit entry"):
        await trail.record(tenant, "x.y", actor="a", detail={"ratio": 0.5})
    assert await trail.audit_log.size(tenant) == 0


async def test_http_changes_carry_the_caller_and_the_request_id(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    headers = {**TOKEN, "X-Tenant-ID": tenant, "X-Request-ID": "req-trail-1"}
    response = await client.put("/settings/theme", json={"value": "dark"}, headers=headers)
    assert response.status_code == 200, response.text
    [entry] = await audited(db, tenant)
    assert (entry.action, entry.resource) == ("setting.set", "setting:theme")
    assert entry.actor.startswith("service:")
    assert entry.request_id == "req-trail-1"
    refused = await client.put("/settings/bad key", json={"value": 1}, headers=headers)
    assert refused.status_code in (404, 422)
    assert await trail_for(db).audit_log.size(tenant) == 1


def test_a_trail_is_kept_per_database(db: Database) -> None:
    assert trail_for(db) is trail_for(db)
    assert isinstance(trail_for(db), AuditTrail)
