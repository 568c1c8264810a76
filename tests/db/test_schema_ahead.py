"""A database ahead of this code (a newer release's migration, mid roll-out, or a release rolled
back): the code starts on it without migrating, and readiness and doctor count it as ready; a
database behind the code is not ready."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.doctor import run_doctor
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.migrate import head_revision, schema_position
from tests.conftest import embedded_settings, started_runtime
from tests.support.service import running_app

NEWER = "ffffffffffff"  # no revision of this code


def test_positions() -> None:
    head = head_revision()
    assert schema_position(head) == "head"
    assert schema_position("0011") == "behind"
    assert schema_position(None) == "behind"
    assert schema_position(NEWER) == "ahead"


async def test_a_schema_ahead_starts_and_is_ready_one_behind_is_not(
    embedded_server: EmbeddedPostgres,
) -> None:
    settings = await embedded_settings(embedded_server, "ahead")
    runtime = await started_runtime(settings)
    engine = create_async_engine(runtime.admin_url, poolclass=NullPool)

    async def stamp(revision: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE tenantry.alembic_version SET version_num = :r"), {"r": revision}
            )

    async def ready() -> tuple[int, dict[str, str]]:
        async with running_app(settings) as (_, client):  # starts: it would migrate if behind
            answer = await client.get("/health/ready")
        return answer.status_code, answer.json()["checks"]

    try:
        await stamp(NEWER)
        assert await runtime.migrate() == NEWER  # left as it is
        assert await ready() == (200, {"database": "ok", "migrations": "ok"})
        checks = {c.name: c for c in await run_doctor(settings)}
        assert checks["migrations"].ok
        assert "newer release" in checks["migrations"].detail
        await stamp("0023")  # behind: readiness says so until it is migrated
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT version_num FROM tenantry.alembic_version")) == (
                "0023"
            )
        checks = {c.name: c for c in await run_doctor(settings)}
        assert not checks["migrations"].ok
        assert "tenantry migrate" in checks["migrations"].detail
    finally:
        await engine.dispose()
        await runtime.stop()
