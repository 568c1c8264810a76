"""Attacks on one tenant-owned table, through the application role.

Each function raises :class:`IsolationBreach` when the boundary fails. The suite runs them on
every tenant table it finds; ``test_suite_can_fail.py`` weakens a policy on purpose and checks
that they do raise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, func, select, text
from sqlalchemy.exc import DBAPIError

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import TenantryError

from .rows import insert_sample

__all__ = ["IsolationBreach", "attack_pooled_connection", "attack_table", "seed"]


class IsolationBreach(AssertionError):
    """The tenant boundary let something through."""


def _key_of(table: Table, row: dict[str, Any]) -> Any:
    return and_(*(column == row[column.name] for column in table.primary_key.columns))


def _q(table: Table) -> str:
    return f'"{table.schema}"."{table.name}"'


async def seed(db: Database, table: Table, tenant: str) -> dict[str, Any]:
    """Insert a sample row (and the rows it references) as ``tenant``."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            return await insert_sample(conn, table, tenant, {})


async def _refused(db: Database, tenant: str | None, statement: Any) -> bool:
    """True when the statement fails (as it must); the transaction is rolled back either way."""
    try:
        if tenant is None:
            async with db.transaction() as conn:
                await conn.execute(statement)
        else:
            with tenant_scope(tenant):
                async with db.tenant_transaction() as conn:
                    await conn.execute(statement)
    except (TenantryError, DBAPIError):
        return True
    return False


async def _rowcount(
    db: Database, tenant: str | None, statement: Any, params: dict[str, Any]
) -> int | None:
    """Rows the statement changed in its own transaction (rolled back), or None if refused."""
    try:
        if tenant is None:
            async with db.transaction() as conn:
                result = await conn.execute(statement, params)
                raise _Undo(result.rowcount)
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                result = await conn.execute(statement, params)
                raise _Undo(result.rowcount)
    except _Undo as undo:
        return undo.count
    except (TenantryError, DBAPIError):
        return None


class _Undo(Exception):
    """Control flow: leave the probe's transaction by rolling it back."""

    def __init__(self, count: int) -> None:
        self.count = count


async def attack_table(db: Database, table: Table, a: str, b: str) -> None:
    """Tenant ``a`` attacks the row of tenant ``b`` in ``table`` in every way SQL allows."""
    name = table.name
    try:
        row_a = await seed(db, table, a)
        row_b = await seed(db, table, b)
    except (TenantryError, DBAPIError) as exc:
        raise IsolationBreach(f"{name}: a tenant cannot write its own row: {exc}") from exc

    with tenant_scope(a):
        async with db.tenant_transaction() as conn:
            own = await conn.scalar(select(func.count()).select_from(table))
            if own != 1:
                # The positive control: without it, a table that denies everything would pass.
                raise IsolationBreach(f"{name}: tenant A sees {own} rows of its own, expected 1")
            raw = await conn.execute(text(f"select tenant_id from {_q(table)}"))
            leaked = [r.tenant_id for r in raw if r.tenant_id != a]
            if leaked:
                raise IsolationBreach(f"{name}: raw SELECT as A returned rows of {set(leaked)}")
            seen = await conn.scalar(
                select(func.count()).select_from(table).where(table.c.tenant_id == b)
            )
            if seen:
                raise IsolationBreach(f"{name}: A selected {seen} rows of B by tenant_id")
    for verb, statement in (
        ("updated", f"update {_q(table)} set tenant_id = tenant_id where tenant_id = :b"),
        ("deleted", f"delete from {_q(table)} where tenant_id = :b"),
    ):
        changed = await _rowcount(db, a, text(statement), {"b": b})
        if changed:  # None: refused outright (an append-only table); 0: no row visible
            raise IsolationBreach(f"{name}: A {verb} {changed} rows of B")

    forged = {**row_a, "tenant_id": b}
    if not await _refused(db, a, table.insert().values(**forged)):
        raise IsolationBreach(f"{name}: A inserted a row owned by B")
    move = table.update().where(_key_of(table, row_a)).values(tenant_id=b)
    if not await _refused(db, a, move):
        raise IsolationBreach(f"{name}: A moved its row to B")

    # No tenant context: no rows, no writes.
    async with db.transaction() as conn:
        visible = await conn.scalar(select(func.count()).select_from(table))
        if visible:
            raise IsolationBreach(f"{name}: {visible} rows visible without a tenant context")
    for verb, statement in (
        ("changed", f"update {_q(table)} set tenant_id = tenant_id"),
        ("removed", f"delete from {_q(table)}"),
    ):
        if await _rowcount(db, None, text(statement), {}):
            raise IsolationBreach(f"{name}: a statement without tenant context {verb} rows")
    if not await _refused(db, None, table.insert().values(**{**row_b, "tenant_id": b})):
        raise IsolationBreach(f"{name}: an INSERT without tenant context succeeded")

    # B's row is intact, seen by B.
    with tenant_scope(b):
        async with db.tenant_transaction() as conn:
            still = await conn.scalar(
                select(func.count()).select_from(table).where(_key_of(table, row_b))
            )
    if still != 1:
        raise IsolationBreach(f"{name}: B's row is gone after A's attacks")


async def attack_pooled_connection(db: Database, table: Table, a: str) -> None:
    """The tenant set in one transaction is gone in the next use of the same connection.

    ``db`` must have a pool of one connection, so both transactions use the same one.
    """
    await seed(db, table, a)
    with tenant_scope(a):
        async with db.tenant_transaction() as conn:
            pid_a = await conn.scalar(text("select pg_backend_pid()"))
    async with db.transaction() as conn:
        pid = await conn.scalar(text("select pg_backend_pid()"))
        setting = await conn.scalar(text("select current_setting('tenantry.tenant_id', true)"))
        visible = await conn.scalar(select(func.count()).select_from(table))
    if pid != pid_a:
        raise AssertionError("the pool handed out another connection; the test needs one")
    if setting not in (None, ""):
        raise IsolationBreach(
            f"the next transaction on the connection still has tenant {setting!r}"
        )
    if visible:
        raise IsolationBreach(f"{table.name}: the next transaction sees {visible} rows")
