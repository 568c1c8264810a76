"""Migrations: the bootstrap (roles, schema), then Alembic to head, as the owner role.

A database may be *ahead* of this code: at a revision this release does not know, written by a
newer release's migration during a rolling update, or left there when a release is rolled back.
Migrations only expand within a release (docs/operations.md, "Upgrades and migrations"), so this
code runs on it unchanged: :func:`upgrade` leaves such a database as it is, and readiness counts
it as ready (:func:`schema_position`). A database *behind* (at a revision this code knows, older
than its head) is not ready until it is migrated."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.bootstrap import ensure_roles_and_schema, quote_ident
from tenantry.db.metadata import SCHEMA

__all__ = [
    "SchemaPosition",
    "alembic_config",
    "app_role",
    "current_revision",
    "head_revision",
    "schema_position",
    "upgrade",
]

#: Where a database's revision stands against this code's head.
SchemaPosition = Literal["head", "ahead", "behind"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(**attributes: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes.update(attributes)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_position(revision: str | None) -> SchemaPosition:
    """``head``; ``ahead`` (a revision this code does not know: a newer release's); or ``behind``
    (no revision yet, or a known one older than the head)."""
    script = ScriptDirectory.from_config(alembic_config())
    if revision == script.get_current_head():
        return "head"
    if revision is None:
        return "behind"
    try:
        known = script.get_revision(revision) is not None
    except (CommandError, ResolutionError):  # not a revision of this code
        known = False
    return "behind" if known else "ahead"


def app_role() -> str:
    """The application role's name, for migrations that grant or revoke (inside a migration)."""
    from alembic import context  # noqa: PLC0415 - only valid while a migration runs

    return str(context.config.attributes["app_role"])


async def current_revision(conn: AsyncConnection) -> str | None:
    def read(sync: Connection) -> str | None:
        context = MigrationContext.configure(sync, opts={"version_table_schema": SCHEMA})
        return context.get_current_revision()

    return await conn.run_sync(read)


async def upgrade(admin_url: URL, *, owner: str, app: str, app_password: str | None) -> str | None:
    """Bring the database at ``admin_url`` to the head revision; returns the revision (a
    database ahead of this code is left as it is: see the module docstring)."""
    engine = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await ensure_roles_and_schema(conn, owner=owner, app=app, app_password=app_password)
        # One transaction: a failed migration leaves nothing behind, and the advisory lock
        # lets one migrator run at a time when several replicas start together.
        async with engine.begin() as conn:
            await conn.execute(text("select pg_advisory_xact_lock(hashtext('tenantry.migrate'))"))
            await conn.execute(text(f"SET LOCAL ROLE {quote_ident(owner)}"))
            found = await current_revision(conn)
            if schema_position(found) == "ahead":  # a newer release migrated it: left as it is
                return found
            await conn.run_sync(_run_alembic, app)
            await conn.execute(
                text(
                    f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "{SCHEMA}".alembic_version '
                    f"FROM {quote_ident(app)}"
                )
            )
            return await current_revision(conn)
    finally:
        await engine.dispose()


def _run_alembic(sync: Connection, app: str) -> None:
    command.upgrade(alembic_config(connection=sync, app_role=app), "head")
