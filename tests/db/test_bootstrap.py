"""Role creation tolerates a concurrent migration (roles are cluster-wide: two test workers, or
two services migrating different databases of one server, race to create them)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.bootstrap import ensure_roles_and_schema
from tenantry.db.embedded import EmbeddedPostgres
from tests.conftest import database_name, recreate_database


async def test_concurrent_bootstraps_create_the_roles_once(
    embedded_server: EmbeddedPostgres,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    owner, app = f"race_owner_{suffix}", f"race_app_{suffix}"
    admin = embedded_server.url("postgres")
    name = database_name("bootstrap_race")
    await recreate_database(admin, name)
    engines = [
        create_async_engine(
            embedded_server.url(name), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        for _ in range(6)
    ]

    async def bootstrap(index: int) -> None:
        async with engines[index].connect() as conn:
            await ensure_roles_and_schema(conn, owner=owner, app=app, app_password=None)

    try:
        for _ in range(3):  # the race is narrow: give it a few chances
            await asyncio.gather(*(bootstrap(i) for i in range(len(engines))))
            async with engines[0].connect() as conn:
                found = await conn.scalar(
                    text("select count(*) from pg_roles where rolname in (:o, :a)"),
                    {"o": owner, "a": app},
                )
                assert found == 2
                for role in (app, owner):  # and again from no roles at all
                    await conn.execute(text(f'DROP OWNED BY "{role}"'))
                    await conn.execute(text(f'DROP ROLE "{role}"'))
    finally:
        for engine in engines:
            await engine.dispose()
        cleanup = create_async_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        async with cleanup.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for role in (app, owner):
                await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await cleanup.dispose()
