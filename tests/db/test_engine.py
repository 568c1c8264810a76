"""Tenant transactions: context per transaction, commit/rollback, pool hygiene, error mapping."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError, InternalError

from tenantry.context import tenant_scope
from tenantry.db.engine import Database, begin_statement, translate_error
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    InvalidTenantId,
    IsolationViolation,
    ReferenceMissing,
    TenantContextError,
    TransactionRolledBack,
)
from tests.conftest import NewTenant

SETTING = "select current_setting('tenantry.tenant_id', true)"


def test_begin_statement_carries_the_tenant_in_one_message() -> None:
    assert begin_statement(None) == "BEGIN"
    assert begin_statement("acme-records") == (
        "BEGIN; SET LOCAL tenantry.tenant_id = 'acme-records'"
    )


@pytest.mark.parametrize("bad", ["x'; drop table t; --", "AB", "a b", "", "ab", "-abc", "a" * 64])
def test_begin_statement_refuses_anything_but_a_tenant_id(bad: str) -> None:
    with pytest.raises(InvalidTenantId):
        begin_statement(bad)


async def test_tenant_transaction_sets_the_context_for_its_own_duration(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant()
    with tenant_scope(tenant.id):
        async with db.tenant_transaction() as conn:
            assert await conn.scalar(text(SETTING)) == tenant.id
            assert await conn.scalar(text("select current_user")) == "tenantry_app"


async def test_tenant_transaction_needs_a_scope(db: Database) -> None:
    with pytest.raises(TenantContextError, match="tenant_scope"):
        async with db.tenant_transaction():
            pass


async def test_nested_transactions_join_the_outer_one(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    with tenant_scope(tenant.id):
        async with db.tenant_transaction() as outer, db.tenant_transaction() as inner:
            assert inner is outer


async def test_a_transaction_cannot_be_joined_for_another_tenant(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant()
    with tenant_scope(tenant.id):
        async with db.tenant_transaction():
            with pytest.raises(TenantContextError):
                async with db.transaction():
                    pass


async def test_an_error_rolls_back_everything(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    with tenant_scope(tenant.id):
        with pytest.raises(RuntimeError):
            async with db.tenant_transaction() as conn:
                await conn.execute(
                    text(
                        "insert into tenantry.tenant_settings (tenant_id, key, value) "
                        "values (:t, 'k', '1')"
                    ),
                    {"t": tenant.id},
                )
                raise RuntimeError("boom")
        async with db.tenant_transaction() as conn:
            assert await conn.scalar(text("select count(*) from tenantry.tenant_settings")) == 0


async def test_a_swallowed_statement_error_fails_the_commit(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant()
    with tenant_scope(tenant.id), pytest.raises(TransactionRolledBack):
        async with db.tenant_transaction() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            with pytest.raises(Exception, match="division by zero"):
                await driver.execute("select 1/0")


async def test_database_errors_map_to_the_hierarchy(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    insert = text(
        "insert into tenantry.tenant_settings (tenant_id, key, value) values (:t, :k, '1')"
    )
    with tenant_scope(tenant.id):
        with pytest.raises(IsolationViolation):
            async with db.tenant_transaction() as conn:
                await conn.execute(insert, {"t": "someone-else", "k": "k"})
        with pytest.raises(InvalidInput):
            async with db.tenant_transaction() as conn:
                await conn.execute(insert, {"t": tenant.id, "k": "not a valid key!"})
    with tenant_scope("no-such-tenant"), pytest.raises(ReferenceMissing):
        async with db.tenant_transaction() as conn:
            await conn.execute(insert, {"t": "no-such-tenant", "k": "k"})


#: Words of PostgreSQL's own messages that must never reach a caller.
SERVER_TEXT = ("violates", "constraint", "syntax", "encoding", "0x00", "escape", "tenant_settings")


@pytest.mark.parametrize(
    "case",
    [
        ("self", "k", '"a\\u0000b"', InvalidInput, "NUL"),  # 22P05 in jsonb
        ("self", "a\x00b", "1", InvalidInput, "NUL"),  # 22021 in text
        ("self", "k", "NaN", InvalidInput, "JSON has no NaN"),  # 22P02
        ("self", "not a valid key!", "1", InvalidInput, "rule of the database"),  # 23514
        ("ghost", "k", "1", ReferenceMissing, "tenant 'lim-ghost-tenant' does not exist"),
        ("self", "dup", "1", Conflict, "exists already"),  # 23505 (inserted twice)
    ],
)
async def test_database_errors_carry_our_words_not_the_servers(
    db: Database, new_tenant: NewTenant, case: tuple[str, str, str, type[Exception], str]
) -> None:
    tenant_of_row, key, value, error, says = case
    tenant = "lim-ghost-tenant" if tenant_of_row == "ghost" else (await new_tenant()).id
    insert = text(
        "insert into tenantry.tenant_settings (tenant_id, key, value) "
        "values (:t, :k, cast(:v as jsonb))"
    )
    with tenant_scope(tenant), pytest.raises(error) as raised:
        async with db.tenant_transaction() as conn:
            await conn.execute(insert, {"t": tenant, "k": key, "v": value})
            if key == "dup":
                await conn.execute(insert, {"t": tenant, "k": key, "v": value})
    detail = raised.value.detail  # type: ignore[attr-defined]
    assert says in detail
    assert not [word for word in SERVER_TEXT if word in detail], detail
    assert raised.value.__cause__ is not None  # the server's text stays on the cause, for logs


async def test_cancellation_leaves_no_transaction_on_the_pooled_connection(
    runtime: DatabaseRuntime, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant()
    single = Database(runtime.app_url, pool_size=1, max_overflow=0)
    try:

        async def slow() -> None:
            with tenant_scope(tenant.id):
                async with single.tenant_transaction() as conn:
                    await conn.execute(text("select pg_sleep(5)"))

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with single.transaction() as conn:
            assert await conn.scalar(text(SETTING)) in (None, "")
        assert single.pool.stats()["checked_out"] == 0
    finally:
        await single.dispose()


async def test_concurrent_tenants_never_see_each_others_context(
    db: Database, new_tenant: NewTenant
) -> None:
    tenants = [(await new_tenant()).id for _ in range(8)]

    async def check(tenant_id: str) -> None:
        for _ in range(10):
            with tenant_scope(tenant_id):
                async with db.tenant_transaction() as conn:
                    assert await conn.scalar(text(SETTING)) == tenant_id
                    await asyncio.sleep(0)

    await asyncio.gather(*(check(t) for t in tenants))


async def test_a_server_side_closed_connection_is_replaced(runtime: DatabaseRuntime) -> None:
    """BEGIN doubles as the pre-ping: a killed pooled connection is dropped and retried."""
    single = Database(runtime.app_url, pool_size=1, max_overflow=0)
    try:
        async with single.transaction() as conn:
            pid = await conn.scalar(text("select pg_backend_pid()"))
        from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415
        from sqlalchemy.pool import NullPool  # noqa: PLC0415

        admin = create_async_engine(runtime.admin_url, poolclass=NullPool)
        async with admin.connect() as conn:
            await conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
        await admin.dispose()
        await asyncio.sleep(0.1)
        async with single.transaction() as conn:
            assert await conn.scalar(text("select pg_backend_pid()")) != pid
    finally:
        await single.dispose()


def test_begin_statement_of_a_read_transaction_is_read_only() -> None:
    assert begin_statement("acme-records", read_only=True) == (
        "BEGIN READ ONLY; SET LOCAL tenantry.tenant_id = 'acme-records'"
    )


async def test_read_transactions_are_read_only_and_join_an_open_one(
    db: Database, new_tenant: NewTenant
) -> None:
    """Unrouted, a read transaction runs on this database, READ ONLY as it would on a replica:
    a write in one fails here too. Inside an open transaction it joins it (sees its writes)."""
    tenant = await new_tenant()
    insert = text(
        "insert into tenantry.tenant_settings (tenant_id, key, value) values (:t, 'r', '1')"
    )
    with tenant_scope(tenant.id):
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with db.tenant_read_transaction() as conn:
                await conn.execute(insert, {"t": tenant.id})
        async with db.tenant_transaction() as outer:
            await outer.execute(insert, {"t": tenant.id})
            async with db.tenant_read_transaction() as conn:
                assert conn is outer
                assert await conn.scalar(text("select count(*) from tenantry.tenant_settings"))
    async with db.read_transaction() as conn:
        assert await conn.scalar(text(SETTING)) in (None, "")


def test_a_connection_broken_mid_statement_is_unavailable_not_a_500() -> None:
    """A server restarted under a statement can leave asyncpg's protocol mid-operation: its
    InternalClientError (under SQLAlchemy's adapter, no SQLSTATE) is the database being
    unavailable, a 503, like the connection errors; found by ``bench_load_faults``' restart."""
    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)
    broken = asyncpg.InternalClientError(
        "cannot switch to state 11; another operation is in progress"
    )
    try:
        try:
            raise broken
        except asyncpg.InternalClientError as driver_error:
            raise dbapi.InternalError(str(driver_error)) from driver_error
    except dbapi.InternalError as adapted:
        wrapped = InternalError("INSERT ...", {}, adapted)
    assert isinstance(translate_error(wrapped), DatabaseUnavailable)
    other = InternalError("INSERT ...", {}, dbapi.InternalError("a programming error"))
    assert translate_error(other) is other  # anything else passes through unchanged


async def test_the_drivers_mid_operation_error_in_a_transaction_is_unavailable(
    db: Database, new_tenant: NewTenant
) -> None:
    """The same error raised by the driver used directly (``fetch_driver``), not through
    SQLAlchemy, leaves the transaction as DatabaseUnavailable too."""
    tenant = (await new_tenant()).id
    broken = asyncpg.InternalClientError(
        "cannot switch to state 12; another operation is in progress"
    )
    with tenant_scope(tenant), pytest.raises(DatabaseUnavailable):
        async with db.tenant_transaction():
            raise broken
