"""The metadata migrations on a database that already holds records: 0012 widens the vectors to
both encoders' and makes every tenant's records due for embedding again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.bootstrap import ensure_roles_and_schema, quote_ident
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.migrate import alembic_config, head_revision, upgrade
from tests.conftest import embedded_settings

TENANTS = ("mig-a", "mig-b")


async def test_0012_makes_every_tenants_records_due_again(
    embedded_server: EmbeddedPostgres,
) -> None:
    tenants = TENANTS
    settings = await embedded_settings(embedded_server, "migrations")
    admin = embedded_server.url(settings.embedded_database)
    owner, app = settings.owner_role, settings.app_role
    engine = create_async_engine(admin, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await ensure_roles_and_schema(conn, owner=owner, app=app, app_password=None)
        async with engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL ROLE {quote_ident(owner)}"))
            await conn.run_sync(
                lambda sync: command.upgrade(alembic_config(connection=sync, app_role=app), "0011")
            )
        async with engine.begin() as conn:  # as the superuser: no policy applies
            for tenant in tenants:
                await conn.execute(
                    text("INSERT INTO tenantry.tenants (id, display_name) VALUES (:t, :t)"),
                    {"t": tenant},
                )
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.metadata_records (tenant_id, id, metadata_type, "
                        "version, search_text, embedding, embedding_model, embedded_version) "
                        "VALUES (:t, :id, 'business', 1, 'Blue Hour', "
                        "array_fill(0.05, ARRAY[384])::vector, 'e5', 1)"
                    ),
                    {"t": tenant, "id": f"md_{tenant}.1"},
                )
        assert await upgrade(admin, owner=owner, app=app, app_password=None) == head_revision()
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT tenant_id, embedded_version, embedding_model, embedding "
                        "FROM tenantry.metadata_records ORDER BY tenant_id"
                    )
                )
            ).all()
            kind = await conn.scalar(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid "
                    "= 'tenantry.metadata_records'::regclass AND attname = 'embedding'"
                )
            )
            forced = await conn.scalar(
                text(
                    "SELECT relforcerowsecurity FROM pg_class "
                    "WHERE oid = 'tenantry.metadata_records'::regclass"
                )
            )
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [(t, None, None, None) for t in tenants]
    assert kind == "vector(896)"
    assert forced is True  # the policy binds the owner again
