"""The isolation suite: every tenant-owned table, attacked through the application role.

Tables are discovered from the metadata (``tenant_table``) and from the catalog (any table with
a ``tenant_id`` column), so a later manager's table is covered without new test code. Runs on
the embedded PostgreSQL and on the server in ``TENANTRY_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Table, text

import tenantry  # noqa: F401 - imports every domain, so the metadata holds every table
from tenantry.db.doctor import probe_bypass
from tenantry.db.engine import Database
from tenantry.db.inspect import read_role, read_tenant_tables
from tenantry.db.rls import tenant_tables
from tenantry.db.runtime import DatabaseRuntime
from tenantry.tenants import TenantRegistry

from .attacks import attack_pooled_connection, attack_table

TABLES = tenant_tables()
Backend = tuple[DatabaseRuntime, Database]


def test_there_are_tenant_tables_to_attack() -> None:
    assert "tenant_settings" in {t.name for t in TABLES}


async def _tenants(db: Database, count: int) -> list[str]:
    ids = [f"iso-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    for tenant_id in ids:
        await TenantRegistry(db).create(tenant_id, tenant_id)
    return ids


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
async def test_tenant_cannot_reach_another_tenants_rows(backend_db: Backend, table: Table) -> None:
    _, db = backend_db
    a, b = await _tenants(db, 2)
    await attack_table(db, table, a, b)
    await attack_table(db, table, *(await _tenants(db, 2))[::-1])


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
async def test_tenant_context_does_not_survive_on_a_pooled_connection(
    backend_db: Backend, table: Table
) -> None:
    runtime, _ = backend_db
    single = Database(runtime.app_url, pool_size=1, max_overflow=0)
    try:
        (a,) = await _tenants(single, 1)
        await attack_pooled_connection(single, table, a)
    finally:
        await single.dispose()


async def test_catalog_and_metadata_agree_on_tenant_tables(backend_db: Backend) -> None:
    _, db = backend_db
    async with db.transaction() as conn:
        found = {t.name for t in await read_tenant_tables(conn)}
    assert found == {t.name for t in TABLES}, (
        "every table with a tenant_id column must be declared with tenant_table(), and exist"
    )


async def test_every_tenant_table_keeps_the_invariants(backend_db: Backend) -> None:
    """RLS enabled and forced, one FOR ALL policy with USING + WITH CHECK, keys with tenant_id."""
    _, db = backend_db
    async with db.transaction() as conn:
        problems = {t.name: t.problems() for t in await read_tenant_tables(conn)}
    assert problems
    assert {name: p for name, p in problems.items() if p} == {}


async def test_application_role_cannot_bypass_rls(backend_db: Backend) -> None:
    runtime, db = backend_db
    async with db.transaction() as conn:
        facts = await read_role(conn, runtime.settings.app_role)
        assert await conn.scalar(text("select current_user")) == runtime.settings.app_role
    assert facts.problems(runtime.settings.owner_role) == []
    succeeded = await probe_bypass(
        runtime.app_url, runtime.settings.owner_role, [t.name for t in TABLES]
    )
    assert succeeded == []
