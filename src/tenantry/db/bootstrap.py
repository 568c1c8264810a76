"""What must exist before the first migration: the database, the two roles, the schema.

- the **owner role** (``tenantry_owner``, no login) owns the schema and every table; migrations
  run as it (``SET ROLE``). Because the tables use ``FORCE ROW LEVEL SECURITY``, even it obeys
  the policies.
- the **application role** (``tenantry_app``) logs in, is no superuser, has no ``BYPASSRLS``,
  owns nothing and is no member of the owner role; it gets table privileges through default
  privileges, so a table a later migration creates is usable without a new grant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.metadata import SCHEMA
from tenantry.errors import ConfigError

__all__ = ["ensure_database", "ensure_roles_and_schema", "quote_ident"]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_database(admin_url: URL, database: str) -> None:
    """Create ``database`` on the server of ``admin_url`` if it does not exist."""
    engine = create_async_engine(
        admin_url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            if await _database_exists(conn, database):
                return
            try:
                await conn.execute(text(f"CREATE DATABASE {quote_ident(database)}"))
            except DBAPIError:
                # two processes starting on one data directory at once: the other made it
                if not await _database_exists(conn, database):
                    raise
    finally:
        await engine.dispose()


async def _database_exists(conn: AsyncConnection, database: str) -> bool:
    query = text("select 1 from pg_database where datname = :d")
    return bool(await conn.scalar(query, {"d": database}))


async def _role_exists(conn: AsyncConnection, role: str) -> bool:
    return bool(await conn.scalar(text("select 1 from pg_roles where rolname = :r"), {"r": role}))


async def _create_role(conn: AsyncConnection, role: str, options: str) -> None:
    """``CREATE ROLE`` unless the role exists, also when another process creates it at the same
    time (roles are cluster-wide: two migrations of different databases race for them)."""
    if await _role_exists(conn, role):
        return
    try:
        await conn.execute(text(f"CREATE ROLE {quote_ident(role)} {options}"))
    except DBAPIError:
        if not await _role_exists(conn, role):  # not the race: a real refusal
            raise


async def ensure_roles_and_schema(
    conn: AsyncConnection, *, owner: str, app: str, app_password: str | None
) -> None:
    """Create the roles and the schema, idempotently, on an autocommit admin connection.

    Migrators of one database (replicas starting together) take turns on an advisory lock; the
    roles are cluster-wide, so those of other databases may still race for them (tolerated).
    """
    await conn.execute(text("select pg_advisory_lock(hashtext('tenantry.migrate'))"))
    try:
        await _ensure_roles_and_schema(conn, owner=owner, app=app, app_password=app_password)
    finally:
        await conn.execute(text("select pg_advisory_unlock(hashtext('tenantry.migrate'))"))


async def _ensure_pgvector(conn: AsyncConnection) -> None:
    """Create pgvector where the server has it (only a superuser may: it is not trusted).

    Metadata search stores its vectors in it with an HNSW index; without it (PostgreSQL built
    without the extension, or a bootstrap by a user who is no superuser) the migration gives
    the column another type and search is exact. A later ``tenantry migrate`` does not change
    an existing column's type.
    """
    available = await conn.scalar(
        text("select 1 from pg_available_extensions where name = 'vector'")
    )
    if available is not None:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))


async def _mark_text_match_leakproof(conn: AsyncConnection) -> None:
    """Let PostgreSQL use a full-text index under row-level security (only a superuser may).

    A condition may be tested before a policy's (by an index) only if its function is marked
    *leakproof*: it reveals nothing of the rows it is given except through its result. ``@@``
    (``ts_match_vq(tsvector, tsquery)``) is not marked, so without this metadata search tests
    every row of the tenant (0.7 s at 100,000 records). It qualifies: it has no side effect, and
    it raises no error that depends on the row (its errors are the query's own: stack depth,
    memory, cancellation). ``docs/decisions.md`` records the choice; the function is this
    database's catalogue entry, so other databases of the server are unchanged.
    """
    await conn.execute(text("ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF"))


async def _ensure_roles_and_schema(
    conn: AsyncConnection, *, owner: str, app: str, app_password: str | None
) -> None:
    me: Any = await conn.scalar(text("select current_user"))
    is_super = bool(
        await conn.scalar(text("select rolsuper from pg_roles where rolname = current_user"))
    )
    try:
        await _create_role(conn, owner, "NOLOGIN")
        await _create_role(
            conn, app, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"
        )
        if app_password is not None:
            await conn.execute(
                text(f"ALTER ROLE {quote_ident(app)} PASSWORD :p").bindparams(p=app_password)
            )
        if not is_super and me != owner:
            await conn.execute(text(f"GRANT {quote_ident(owner)} TO {quote_ident(str(me))}"))
    except Exception as exc:
        raise ConfigError(
            f"the database user {me!r} cannot create the roles {owner!r} and {app!r}: {exc}. "
            "Create them once as a superuser, or connect as one for `tenantry migrate`."
        ) from exc
    o, a, s = quote_ident(owner), quote_ident(app), quote_ident(SCHEMA)
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {o}"))
    if is_super:
        await _ensure_pgvector(conn)
        await _mark_text_match_leakproof(conn)
    await conn.execute(text(f"GRANT USAGE ON SCHEMA {s} TO {a}"))
    await conn.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {a}"
        )
    )
    await conn.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {a}"
        )
    )
