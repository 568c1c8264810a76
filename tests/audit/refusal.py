"""Make the audit write fail for real: triggers that refuse one tenant's audit rows.

Created as the database's admin (the owner, or the embedded server's superuser) on the test's
database, dropped afterwards. They refuse every row of ``tenant`` written to its queue
(``audit_pending``) or to its tree itself (``audit_entries``: where entries are appended
directly), from the (``after`` + 1)-th such row on. A worker runs its tests one at a time, so no
other test of the database sees them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.context import PLATFORM_TENANT, validate_tenant_id

__all__ = ["REFUSED", "allow", "refuse", "refusing"]

#: The triggers' message (the database's text: it must never reach a caller).
REFUSED = "audit entries refused by the test"
_TABLES = ("audit_pending", "audit_entries")


async def _run(admin_url: URL, *statements: str) -> None:
    engine = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def refuse(admin_url: URL, tenant: str = PLATFORM_TENANT, *, after: int = 0) -> str:
    """Install the triggers; returns their name, for :func:`allow`."""
    name = f"refuse_{uuid.uuid4().hex[:10]}"
    validate_tenant_id(tenant)  # quoted below as a literal
    await _run(
        admin_url,
        f"CREATE SEQUENCE tenantry.{name}",
        f"""CREATE FUNCTION tenantry.{name}() RETURNS trigger LANGUAGE plpgsql
            SECURITY DEFINER SET search_path = pg_catalog AS $$
            BEGIN
                IF nextval('tenantry.{name}') > {after:d} THEN
                    RAISE EXCEPTION '{REFUSED}';
                END IF;
                RETURN NEW;
            END $$""",
        *[
            f"""CREATE TRIGGER {name} BEFORE INSERT ON tenantry.{table} FOR EACH ROW
                WHEN (NEW.tenant_id = '{tenant}') EXECUTE FUNCTION tenantry.{name}()"""
            for table in _TABLES
        ],
    )
    return name


async def allow(admin_url: URL, name: str) -> None:
    await _run(
        admin_url,
        *[f"DROP TRIGGER IF EXISTS {name} ON tenantry.{table}" for table in _TABLES],
        f"DROP FUNCTION IF EXISTS tenantry.{name}()",
        f"DROP SEQUENCE IF EXISTS tenantry.{name}",
    )


@asynccontextmanager
async def refusing(
    admin_url: URL, tenant: str = PLATFORM_TENANT, *, after: int = 0
) -> AsyncIterator[None]:
    name = await refuse(admin_url, tenant, after=after)
    try:
        yield
    finally:
        await allow(admin_url, name)
