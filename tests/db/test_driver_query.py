"""DriverQuery: named parameters to asyncpg's numbered ones, and a fetch through RLS."""

from __future__ import annotations

import pytest

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.errors import InvalidInput
from tests.conftest import NewTenant


def test_named_parameters_become_numbered_once_each() -> None:
    query = DriverQuery.of("select :a, :b::int, CAST(:a AS text), x::text, 'a:b' from t")
    assert query.sql == "select $1, $2::int, CAST($1 AS text), x::text, 'a:b' from t"
    assert query.names == ("a", "b")


async def test_fetch_driver_sees_only_the_tenant(db: Database, new_tenant: NewTenant) -> None:
    a, b = (await new_tenant()).id, (await new_tenant()).id
    query = DriverQuery.of(
        "select tenant_id, count(*) from tenantry.tenant_settings where key = :k group by 1"
    )
    for tenant in (a, b):
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                await conn.exec_driver_sql(
                    "insert into tenantry.tenant_settings (tenant_id, key, value)"
                    f" values ('{tenant}', 'k', '1')"
                )
    with tenant_scope(a):
        async with db.tenant_transaction() as conn:
            rows = await TenantRepository(conn).fetch_driver(query, {"k": "k"})
    assert [(r[0], r[1]) for r in rows] == [(a, 1)]
    with pytest.raises(InvalidInput), tenant_scope(a):  # translated, never a raw asyncpg error
        async with db.tenant_transaction() as conn:
            await TenantRepository(conn).fetch_driver(DriverQuery.of("select 1/0"), {})
