"""The isolation suite must fail when the boundary is weakened: each test breaks it on purpose.

Each test gets a scratch database of its own, so the damage never reaches another test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.inspect import read_tenant_tables
from tenantry.db.rls import rls_statements
from tenantry.db.runtime import DatabaseRuntime
from tenantry.tenants import TenantRegistry
from tenantry.tenants.models import tenant_settings
from tests.conftest import embedded_settings, started_runtime

from .attacks import IsolationBreach, attack_pooled_connection, attack_table

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


@pytest.fixture
async def scratch(embedded_server: EmbeddedPostgres) -> AsyncIterator[DatabaseRuntime]:
    runtime = await started_runtime(await embedded_settings(embedded_server, "canfail"))
    yield runtime
    await runtime.stop()


async def as_owner(runtime: DatabaseRuntime, *statements: str) -> None:
    engine = create_async_engine(runtime.admin_url, poolclass=NullPool)
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await engine.dispose()


async def two_tenants(db: Database) -> tuple[str, str]:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    for tenant_id in (a, b):
        await TenantRegistry(db).create(tenant_id, tenant_id)
    return a, b


async def problems(db: Database) -> dict[str, list[str]]:
    async with db.transaction() as conn:
        return {t.name: t.problems() for t in await read_tenant_tables(conn)}


TABLE = '"tenantry"."tenant_settings"'


async def test_the_intact_boundary_passes(scratch: DatabaseRuntime) -> None:
    db = scratch.open_database()
    try:
        await attack_table(db, tenant_settings, *await two_tenants(db))
        assert (await problems(db))["tenant_settings"] == []
    finally:
        await db.dispose()


async def test_a_permissive_policy_is_caught(scratch: DatabaseRuntime) -> None:
    await as_owner(
        scratch,
        f"DROP POLICY tenant_isolation ON {TABLE}",
        f"CREATE POLICY tenant_isolation ON {TABLE} USING (true) WITH CHECK (true)",
    )
    db = scratch.open_database()
    try:
        with pytest.raises(IsolationBreach, match="tenant_settings"):
            await attack_table(db, tenant_settings, *await two_tenants(db))
        assert any("policy" in p for p in (await problems(db))["tenant_settings"])
    finally:
        await db.dispose()


async def test_a_dropped_policy_is_caught(scratch: DatabaseRuntime) -> None:
    await as_owner(scratch, f"DROP POLICY tenant_isolation ON {TABLE}")
    db = scratch.open_database()
    try:
        with pytest.raises(IsolationBreach, match="cannot write its own row"):
            await attack_table(db, tenant_settings, *await two_tenants(db))
        assert any("no FOR ALL policy" in p for p in (await problems(db))["tenant_settings"])
    finally:
        await db.dispose()


async def test_disabled_rls_is_caught(scratch: DatabaseRuntime) -> None:
    await as_owner(scratch, f"ALTER TABLE {TABLE} DISABLE ROW LEVEL SECURITY")
    db = scratch.open_database()
    try:
        with pytest.raises(IsolationBreach):
            await attack_table(db, tenant_settings, *await two_tenants(db))
        assert "row-level security is not enabled" in (await problems(db))["tenant_settings"]
    finally:
        await db.dispose()


async def test_an_extra_widening_policy_is_caught(scratch: DatabaseRuntime) -> None:
    await as_owner(scratch, f"CREATE POLICY peek ON {TABLE} FOR SELECT USING (true)")
    db = scratch.open_database()
    try:
        with pytest.raises(IsolationBreach, match="sees 2 rows of its own"):
            await attack_table(db, tenant_settings, *await two_tenants(db))
        assert any("widen" in p for p in (await problems(db))["tenant_settings"])
    finally:
        await db.dispose()


async def test_a_unique_key_without_tenant_id_is_caught(scratch: DatabaseRuntime) -> None:
    await as_owner(scratch, f"CREATE UNIQUE INDEX settings_key_only ON {TABLE} (key)")
    db = scratch.open_database()
    try:
        found = (await problems(db))["tenant_settings"]
        assert found == ["unique index settings_key_only does not include tenant_id"]
    finally:
        await db.dispose()


async def test_an_unforced_policy_is_caught_by_the_invariant_check(
    scratch: DatabaseRuntime,
) -> None:
    await as_owner(scratch, f"ALTER TABLE {TABLE} NO FORCE ROW LEVEL SECURITY")
    db = scratch.open_database()
    try:
        assert "row-level security is not forced" in (await problems(db))["tenant_settings"]
    finally:
        await db.dispose()


class SessionLevelDatabase(Database):
    """A broken design: the tenant set for the session (``SET SESSION``), never reset."""

    async def _begin(self, statement: str, within: float | None):  # type: ignore[no-untyped-def]
        return await super()._begin(statement.replace("SET LOCAL", "SET SESSION"), within)


async def test_a_session_level_tenant_setting_is_caught(scratch: DatabaseRuntime) -> None:
    db = SessionLevelDatabase(scratch.app_url, pool_size=1, max_overflow=0)
    try:
        (a, _) = await two_tenants(db)
        with pytest.raises(IsolationBreach, match="still has tenant"):
            await attack_pooled_connection(db, tenant_settings, a)
    finally:
        await db.dispose()


def test_rls_statements_cover_every_command() -> None:
    statements = rls_statements("t", "s")
    assert statements[0].endswith("ENABLE ROW LEVEL SECURITY")
    assert statements[1].endswith("FORCE ROW LEVEL SECURITY")
    assert "FOR ALL" in statements[2]
    assert "USING (tenant_id" in statements[2]
    assert "WITH CHECK (tenant_id" in statements[2]
