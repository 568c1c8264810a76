"""Role assignments on the real database: per tenant, isolated, validated."""

from __future__ import annotations

import gc
import weakref

import pytest

from tenantry.access import AccessControl
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, InvalidTenantId, TenantNotFound
from tenantry.sessions.manager import SessionManager
from tests.conftest import NewTenant


async def test_grant_revoke_and_roles_of(db: Database, new_tenant: NewTenant) -> None:
    access = AccessControl(db)
    tenant = await new_tenant("acl")
    assert await access.roles_of(tenant.id, "ana") == frozenset()
    assert await access.grant(tenant.id, "ana", "viewer")
    assert not await access.grant(tenant.id, "ana", "viewer")  # already held
    assert await access.grant(tenant.id, "ana", "editor")
    assert await access.roles_of(tenant.id, "ana") == {"viewer", "editor"}
    assert await access.revoke(tenant.id, "ana", "viewer")
    assert not await access.revoke(tenant.id, "ana", "viewer")
    assert await access.roles_of(tenant.id, "ana") == {"editor"}
    assert await access.roles_of(tenant.id, "ben") == frozenset()


async def test_roles_are_per_tenant(db: Database, new_tenant: NewTenant) -> None:
    access = AccessControl(db)
    a, b = await new_tenant("acl"), await new_tenant("acl")
    await access.grant(a.id, "ana", "admin")
    await access.grant(b.id, "ana", "viewer")
    assert await access.roles_of(a.id, "ana") == {"admin"}
    assert await access.roles_of(b.id, "ana") == {"viewer"}
    assert not await access.revoke(b.id, "ana", "admin")  # b cannot touch a's assignment
    assert await access.roles_of(a.id, "ana") == {"admin"}


async def test_unknown_tenant(db: Database) -> None:
    with pytest.raises(TenantNotFound):
        await AccessControl(db).grant("no-such-tenant-acl", "ana", "viewer")
    assert await AccessControl(db).roles_of("no-such-tenant-acl", "ana") == frozenset()


@pytest.mark.parametrize(
    ("principal_id", "role"),
    [
        ("ana", "platform"),  # only the service token carries it
        ("ana", "root"),
        ("ana", ""),
        ("", "viewer"),
        ("   ", "viewer"),
        ("x" * 201, "viewer"),
    ],
)
async def test_bad_input_changes_nothing(
    db: Database, new_tenant: NewTenant, principal_id: str, role: str
) -> None:
    access = AccessControl(db)
    tenant = await new_tenant("acl")
    with pytest.raises(InvalidInput):
        await access.grant(tenant.id, principal_id, role)
    with pytest.raises(InvalidInput):
        await access.revoke(tenant.id, principal_id, role)
    assert await access.roles_of(tenant.id, "ana") == frozenset()


async def test_bad_tenant_id(db: Database) -> None:
    with pytest.raises(InvalidTenantId):
        await AccessControl(db).grant("Not A Tenant", "ana", "viewer")
    with pytest.raises(InvalidTenantId):
        await AccessControl(db).roles_of("", "ana")


async def test_a_shared_access_control_keeps_no_dropped_manager_alive(
    db: Database, new_tenant: NewTenant
) -> None:
    """Each session manager listens to role changes; a dropped one stops listening instead of
    accumulating (and being awaited) on an access control shared by many managers."""
    access = AccessControl(db)
    tenant = await new_tenant("acl")
    heard: list[tuple[str, str | None]] = []

    async def kept(tenant_id: str, principal_id: str | None) -> None:
        heard.append((tenant_id, principal_id))

    access.listen(kept)
    access.listen(kept)  # once only
    dropped = [weakref.ref(SessionManager(db, access=access)) for _ in range(3)]
    gc.collect()
    assert all(ref() is None for ref in dropped)
    assert await access.grant(tenant.id, "ana", "viewer")
    assert heard == [(tenant.id, "ana")]
