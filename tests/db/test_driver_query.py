"""DriverQuery: named parameters to asyncpg's numbered ones, and a fetch through RLS."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Column, MetaData, Select, Table, Text, bindparam, select

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.errors import DatabaseUnavailable, InvalidInput
from tests.conftest import NewTenant

_TYPED = Table("typed", MetaData(), Column("name", Text), Column("doc", JSON))


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


def test_a_core_statement_compiles_once_to_numbered_parameters() -> None:
    table = Table("t", MetaData(), Column("id", BigInteger), Column("name", Text))
    query = DriverQuery.compiled(
        select(table.c.name).where(table.c.id == bindparam("id"), table.c.name != bindparam("n"))
    )
    assert query.names == ("id", "n")
    assert query.sql.count("$") == 2
    assert ":" not in query.sql.replace("::", "")


@pytest.mark.parametrize(
    "statement",
    [
        select(_TYPED.c.name).where(_TYPED.c.name == "a"),  # a value bound in it
        select(_TYPED.c.name).where(_TYPED.c.name.in_(bindparam("names", expanding=True))),
        select(_TYPED.c.name).where(_TYPED.c.doc == bindparam("doc")),  # JSON needs conversion
    ],
)
def test_a_statement_that_needs_sqlalchemy_is_refused(statement: Select[Any]) -> None:
    with pytest.raises(ValueError, match=r"bound|fixed statement|conversion"):
        DriverQuery.compiled(statement)


async def test_a_compiled_statement_reads_through_rls(db: Database, new_tenant: NewTenant) -> None:
    a, b = (await new_tenant()).id, (await new_tenant()).id
    for tenant, value in ((a, "1"), (b, "2")):
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                await conn.exec_driver_sql(
                    "insert into tenantry.tenant_settings (tenant_id, key, value)"
                    f" values ('{tenant}', 'k', '{value}')"
                )
    settings = Table(
        "tenant_settings",
        MetaData(schema="tenantry"),
        Column("key", Text),
        Column("tenant_id", Text),
    )
    query = DriverQuery.compiled(
        select(settings.c.tenant_id).where(settings.c.key == bindparam("k"))
    )
    with tenant_scope(a):
        async with db.tenant_transaction() as conn:
            rows = await TenantRepository(conn).fetch_driver(query, {"k": "k"})
    assert [r[0] for r in rows] == [a]


async def test_a_lost_connection_is_not_replaced_inside_the_transaction(
    db: Database, new_tenant: NewTenant
) -> None:
    """The driver is never a new connection outside the transaction (and its tenant context)."""
    tenant = (await new_tenant()).id
    with pytest.raises(DatabaseUnavailable), tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.invalidate()
            await TenantRepository(conn).fetch_driver(DriverQuery.of("select 1"), {})
    with tenant_scope(tenant):  # the pool goes on with a good connection
        async with db.tenant_transaction() as conn:
            assert await conn.scalar(select(1)) == 1
