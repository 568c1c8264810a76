"""The per-user session limit holds under concurrency: creations of one user are serialized."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tenantry.cache import CacheManager
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import Conflict
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.repository import creation_lock
from tenantry.sessions.schemas import SessionPolicy
from tenantry.tenants import TenantRegistry

LIMIT = 10
Backend = tuple[DatabaseRuntime, Database]


async def live_sessions(db: Database, tenant: str, user: str) -> int:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            count = await conn.scalar(
                text(
                    "select count(*) from tenantry.sessions where user_id = :u"
                    " and revoked_at is null"
                ),
                {"u": user},
            )
    return int(count)


async def test_concurrent_creations_keep_the_limit(backend_db: Backend) -> None:
    """100 creations at once for one user, from two nodes: exactly the limit stays live."""
    _, db = backend_db
    tenant = f"lim-{uuid.uuid4().hex[:10]}"
    await TenantRegistry(db).create(tenant, "Limits")
    policy = SessionPolicy(max_sessions_per_user=LIMIT)
    nodes = [SessionManager(db, cache=CacheManager(), policy=policy) for _ in range(2)]
    created = await asyncio.gather(
        *(nodes[i % 2].create_session(tenant, "mira") for i in range(100))
    )
    assert len({session_id for session_id, _ in created}) == 100
    assert await live_sessions(db, tenant, "mira") == LIMIT
    assert len(await nodes[0].list_sessions(tenant, "mira")) == LIMIT
    # The survivors are the last ten created, and each of them validates.
    survivors = {s.session_id for s in await nodes[1].list_sessions(tenant, "mira")}
    tokens = {session_id: token for session_id, token in created}
    for session_id in survivors:
        assert (await nodes[0].validate(tokens[session_id])).session_id == session_id
    # Another user of the tenant, and the same user in another tenant, have limits of their own.
    await asyncio.gather(*(nodes[i % 2].create_session(tenant, "zed") for i in range(3)))
    assert await live_sessions(db, tenant, "zed") == 3
    assert await live_sessions(db, tenant, "mira") == LIMIT


def test_the_lock_is_per_tenant_and_user_and_carries_no_text() -> None:
    """Integer literals only (the user id never reaches the SQL), one key per (tenant, user)."""
    quoted = creation_lock("acme", "o'brien; drop table x --")
    assert quoted.startswith("SELECT pg_advisory_xact_lock(")
    assert "'" not in quoted
    assert "drop" not in quoted
    assert creation_lock("acme", "mira") == creation_lock("acme", "mira")
    assert creation_lock("acme", "mira") != creation_lock("acme", "zed")
    assert creation_lock("acme", "mira") != creation_lock("acme-2", "mira")
    assert creation_lock("abc", "d:e") != creation_lock("abc:d", "e")


async def test_the_live_counts_kept_are_bounded(db: Database) -> None:
    """The per-tenant live counts are an LRU of ``max_live_tenants``: the least recently used
    tenant's count goes first, and its next creation counts in the database again, so its cap
    still holds."""
    registry = TenantRegistry(db)
    tenants = [f"lv-{uuid.uuid4().hex[:10]}" for _ in range(5)]
    for tenant in tenants:
        await registry.create(tenant, "Live counts")
    manager = SessionManager(db, cache=CacheManager())
    manager.max_live_tenants = 3

    async def cap(tenant_id: str) -> int:
        return 2

    manager.tenant_limit = cap
    for tenant in tenants[:3]:
        await manager.create_session(tenant, "u1")
    await manager.create_session(tenants[0], "u2")  # the first tenant used again: kept
    for tenant in tenants[3:]:
        await manager.create_session(tenant, "u1")
        assert len(manager.counted_tenants) <= 3
    assert manager.counted_tenants == (tenants[0], tenants[3], tenants[4])
    assert tenants[1] not in manager.counted_tenants  # dropped; counted again at its next
    await manager.create_session(tenants[1], "u2")  # its second session: room
    with pytest.raises(Conflict, match="limit of 2"):  # the first tenant's cap still holds
        await manager.create_session(tenants[0], "u3")
    with pytest.raises(Conflict, match="limit of 2"):  # and the recounted one's
        await manager.create_session(tenants[1], "u3")
    assert len(manager.counted_tenants) == 3
