"""Where the database is and who connects to it.

Embedded mode (no ``TENANTRY_DATABASE_URL``): tenantry starts PostgreSQL in ``<data dir>/pgdata``
and creates its database on first start. Server mode: the URL names the database; the user in it
runs migrations, and the application connects as the application role.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.config import Settings
from tenantry.db.bootstrap import ensure_database
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.migrate import current_revision, head_revision, upgrade

__all__ = ["DatabaseRuntime"]


class DatabaseRuntime:
    """Starts (embedded) or locates (server) the database; migrates; opens the app's pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = EmbeddedPostgres(settings.data_dir) if settings.embedded else None

    async def start(self) -> None:
        if self.embedded is not None:
            await self.embedded.start_async()
            await ensure_database(self.embedded.url("postgres"), self.settings.embedded_database)

    async def stop(self) -> None:
        if self.embedded is not None:
            await self.embedded.stop_async()

    @property
    def admin_url(self) -> URL:
        """The URL that runs migrations (a superuser in embedded mode)."""
        if self.embedded is not None:
            return self.embedded.url(self.settings.embedded_database)
        return self.settings.server_owner_url()

    @property
    def app_url(self) -> URL:
        """The URL of the application role."""
        if self.embedded is not None:
            return self.embedded.url(self.settings.embedded_database, self.settings.app_role)
        return self.settings.server_app_url()

    async def migrate(self) -> str | None:
        password = self.settings.app_db_password
        return await upgrade(
            self.admin_url,
            owner=self.settings.owner_role,
            app=self.settings.app_role,
            app_password=password.get_secret_value() if password else None,
        )

    def open_database(self) -> Database:
        return Database(self.app_url, pool_size=self.settings.postgres_pool_size)

    async def revision_status(self) -> tuple[str | None, str | None]:
        """(the database's revision, the code's head revision), read as the admin user."""
        engine = create_async_engine(self.admin_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                schema_exists = await conn.scalar(
                    text("select 1 from pg_namespace where nspname = 'tenantry'")
                )
                current = await current_revision(conn) if schema_exists else None
        finally:
            await engine.dispose()
        return current, head_revision()
