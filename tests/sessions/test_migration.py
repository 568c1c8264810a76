"""Migration 0023 on a database that holds behaviour models: each tenant's ``behaviour_models`` row
becomes version 1 and champion of its ``session_behaviour`` in the AI registry (a file that loads,
SHA-256 checked, and scores as the row did), the table is dropped, the policies bind the owner
again; the downgrade copies the champions back."""

from __future__ import annotations

import json

import numpy as np
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.db.bootstrap import ensure_roles_and_schema, quote_ident
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.migrate import alembic_config, head_revision, upgrade
from tenantry.sessions import stored
from tenantry.sessions.behaviour import FEATURE_NAMES, FittedModel
from tests.conftest import embedded_settings

TENANTS = ("bmig-a", "bmig-b")
REGISTRY = ("ai_models", "ai_model_versions", "ai_model_aliases")


def _fitted(seed: int) -> FittedModel:
    rows = np.random.default_rng(seed).normal(size=(40, len(FEATURE_NAMES)))
    return FittedModel.fit(rows, seed, 5)


async def _migrate(
    conn: AsyncConnection, owner: str, app: str, revision: str, *, down: bool
) -> None:
    await conn.execute(text(f"SET LOCAL ROLE {quote_ident(owner)}"))
    step = command.downgrade if down else command.upgrade
    await conn.run_sync(lambda sync: step(alembic_config(connection=sync, app_role=app), revision))


async def test_0023_moves_each_tenants_behaviour_model_into_its_registry(
    embedded_server: EmbeddedPostgres,
) -> None:
    settings = await embedded_settings(embedded_server, "behaviour_migration")
    admin = embedded_server.url(settings.embedded_database)
    owner, app = settings.owner_role, settings.app_role
    models = {tenant: _fitted(i) for i, tenant in enumerate(TENANTS)}
    engine = create_async_engine(admin, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await ensure_roles_and_schema(conn, owner=owner, app=app, app_password=None)
        async with engine.begin() as conn:
            await _migrate(conn, owner, app, "0022", down=False)
        async with engine.begin() as conn:  # as the superuser: no policy applies
            for i, (tenant, fitted) in enumerate(models.items()):
                meta, arrays = fitted.encode()
                await conn.execute(
                    text("INSERT INTO tenantry.tenants (id, display_name) VALUES (:t, :t)"),
                    {"t": tenant},
                )
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.behaviour_models (tenant_id, version, format, meta, "
                        "arrays, through, samples) VALUES (:t, :v, 1, CAST(:meta AS jsonb), :a, "
                        ":through, 40)"
                    ),
                    {"t": tenant, "v": 3 + i, "meta": json.dumps(meta), "a": arrays,
                     "through": 100 + i},
                )  # fmt: skip
        assert await upgrade(admin, owner=owner, app=app, app_password=None) == head_revision()
        async with engine.begin() as conn:
            rows = (
                (
                    await conn.execute(
                        text(
                            "SELECT v.tenant_id, v.version, a.alias, m.model_type, "
                            "m.latest_version, v.file_format, v.file, v.sha256, v.lineage, "
                            "v.metrics FROM "
                            "tenantry.ai_model_versions v JOIN tenantry.ai_model_aliases a USING "
                            "(tenant_id, model_name, version) JOIN tenantry.ai_models m ON "
                            "m.tenant_id = v.tenant_id AND m.name = v.model_name "
                            "WHERE v.model_name = 'session_behaviour' ORDER BY 1"
                        )
                    )
                )
                .mappings()
                .all()
            )
            gone = await conn.scalar(text("SELECT to_regclass('tenantry.behaviour_models')"))
            forced = await conn.scalar(
                text(
                    "SELECT bool_and(relforcerowsecurity) FROM pg_class WHERE oid = ANY(ARRAY["
                    "'tenantry.ai_models', 'tenantry.ai_model_versions', "
                    "'tenantry.ai_model_aliases']::regclass[])"
                )
            )
        assert gone is None
        assert forced is True  # the policies bind the owner again
        assert [r.tenant_id for r in rows] == list(TENANTS)
        x = np.random.default_rng(9).normal(size=(5, len(FEATURE_NAMES)))
        for i, row in enumerate(rows):
            assert (row.version, row.alias, row.model_type, row.latest_version) == (
                1, "champion", "session_behaviour", 1,
            )  # fmt: skip
            assert row.file_format == stored.FILE_FORMAT
            assert row.lineage["previous_version"] == 3 + i
            assert row.lineage["through"] == 100 + i
            assert row.lineage["row_count"] == row.metrics["samples"] == 40
            moved = stored.load(bytes(row.file), bytes(row.sha256))
            original = models[row.tenant_id]
            assert np.array_equal(moved.forest(x), original.forest(x))
            assert np.array_equal(moved.z(x), original.z(x))

        # the downgrade copies each champion back, and the registry loses the model
        async with engine.begin() as conn:
            await _migrate(conn, owner, app, "0022", down=True)
        async with engine.begin() as conn:
            back = (
                (
                    await conn.execute(
                        text(
                            "SELECT tenant_id, version, format, meta, arrays, through, samples "
                            "FROM tenantry.behaviour_models ORDER BY 1"
                        )
                    )
                )
                .mappings()
                .all()
            )
            left = await conn.scalar(
                text("SELECT count(*) FROM tenantry.ai_models WHERE name = 'session_behaviour'")
            )
        assert left == 0
        assert [(r.tenant_id, r.version, r.through, r.samples) for r in back] == [
            (t, 1, 100 + i, 40) for i, t in enumerate(TENANTS)
        ]
        for r in back:
            again = FittedModel.decode(r.meta, bytes(r.arrays))
            assert np.array_equal(again.forest(x), models[r.tenant_id].forest(x))
    finally:
        await engine.dispose()
