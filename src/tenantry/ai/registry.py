"""MLModelManager: each tenant's model registry, in PostgreSQL behind row-level security.

A model has a name and a type; each training adds an immutable version (numbered from 1, never
reused) holding its file, the file's SHA-256, metrics, parameters and the lineage of its data.
Aliases name versions: ``challenger`` (the newest candidate) and ``champion`` (what predictions
use); moving one is an upsert in one transaction, so a reader sees the old version or the new.

Bounds per tenant: :data:`MAX_MODELS` models, :data:`MAX_VERSIONS_KEPT` versions per model (a
new version removes those older than the newest :data:`MAX_VERSIONS_KEPT` that no alias
names), :data:`MAX_FILE_BYTES` per file. Every change (a version, an alias moved, a version
pruned) is audited in its transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.ai.catalogue import MODEL_TYPES
from tenantry.ai.files import digest
from tenantry.ai.kinds import Trained
from tenantry.ai.models import ALIASES
from tenantry.ai.schemas import ModelVersionView, ModelView, VersionFile
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import Conflict, ContentTooLarge, InvalidInput, NotFound

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_MODELS",
    "MAX_VERSIONS_KEPT",
    "MLModelManager",
    "validate_model_name",
]

MAX_MODELS: Final = 50
MAX_VERSIONS_KEPT: Final = 10
MAX_FILE_BYTES: Final = 32 * 1024 * 1024
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}")
_VERSION_COLUMNS: Final = (
    "version, created_at, file_format, octet_length(file), sha256, metrics, parameters, "
    "lineage, trained_by"
)


def validate_model_name(name: object) -> str:
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidInput(
            f"invalid model name {InvalidInput.excerpt(name)}: 1-128 characters of a-z, 0-9, "
            "'_', '.' and '-', starting with a letter or digit"
        )
    return name


def _alias(alias: object) -> str:
    if alias not in ALIASES:
        raise InvalidInput(f"an alias is one of {', '.join(ALIASES)}")
    return str(alias)


def _version_view(row: Sequence[Any]) -> ModelVersionView:
    version, created, fmt, size, sha, metrics, parameters, lineage, by = row
    return ModelVersionView(
        version, created, fmt, int(size), bytes(sha).hex(), metrics, parameters, lineage, by
    )


class MLModelManager(RecordsChanges):
    """The registry; see the module docstring."""

    def __init__(self, database: Database | None = None, *, audit: ChangeLog | None = None):
        self._database, self._audit = database, audit

    async def add_version(
        self,
        tenant_id: str,
        name: str,
        model_type: str,
        trained: Trained,
        lineage: dict[str, Any],
        *,
        actor: str | None = None,
        promote_over: int | bool | None = False,
    ) -> tuple[int, bool]:
        """Store ``trained`` as the next version of ``name`` (made if new), the ``challenger``.

        ``promote_over``: ``False`` to leave the champion alone; else the champion version the
        caller measured the new one against (None: there was none), and the new version becomes
        champion only if that is still the champion. Returns (version, promoted).
        """
        validate_tenant_id(tenant_id)
        validate_model_name(name)
        if len(trained.file) > MAX_FILE_BYTES:
            raise ContentTooLarge(f"a model file is at most {MAX_FILE_BYTES:,} bytes")
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext('tenantry.ai:' || :t))"),
                    {"t": tenant_id},
                )
                version = await self._next_version(conn, tenant_id, name, model_type)
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.ai_model_versions (tenant_id, model_name, version, "
                        "file_format, file, sha256, metrics, parameters, lineage, trained_by) "
                        "VALUES (:t, :n, :v, :fmt, :file, :sha, CAST(:metrics AS jsonb), "
                        "CAST(:params AS jsonb), CAST(:lineage AS jsonb), :by)"
                    ),
                    {
                        "t": tenant_id, "n": name, "v": version, "fmt": trained.file_format,
                        "file": trained.file, "sha": digest(trained.file),
                        "metrics": _json(trained.metrics), "params": _json(trained.parameters),
                        "lineage": _json(lineage), "by": actor or "",
                    },
                )  # fmt: skip
                await trail.record(
                    tenant_id, "ai.model.version.create", f"ai_model:{name}:{version}",
                    actor=actor, detail={"model_type": model_type, "sha256": digest(
                        trained.file).hex(), "rows": lineage.get("row_count")},
                )  # fmt: skip
                await self._move(
                    conn, trail, tenant_id, name, alias="challenger", version=version, actor=actor
                )
                promoted = False
                if promote_over is not False:
                    current = await _alias_version(conn, name, "champion")
                    if current == promote_over:
                        await self._move(
                            conn,
                            trail,
                            tenant_id,
                            name,
                            alias="champion",
                            version=version,
                            actor=actor,
                        )
                        await _drop_alias(conn, name, "challenger")
                        promoted = True
                await self._prune(conn, trail, tenant_id, name)
        return version, promoted

    async def _next_version(
        self, conn: AsyncConnection, tenant_id: str, name: str, model_type: str
    ) -> int:
        if name in MODEL_TYPES and name != model_type:
            raise Conflict(f"{name} is a model type's name: name this {model_type} otherwise")
        row = (
            await conn.execute(
                text("SELECT model_type FROM tenantry.ai_models WHERE name = :n FOR UPDATE"),
                {"n": name},
            )
        ).first()
        if row is None:
            count = await conn.scalar(text("SELECT count(*) FROM tenantry.ai_models"))
            if int(count or 0) >= MAX_MODELS:
                raise Conflict(f"a tenant has at most {MAX_MODELS} models: delete one")
            await conn.execute(
                text(
                    "INSERT INTO tenantry.ai_models (tenant_id, name, model_type) "
                    "VALUES (:t, :n, :type)"
                ),
                {"t": tenant_id, "n": name, "type": model_type},
            )
        elif row[0] != model_type:
            raise Conflict(f"model {name} is a {row[0]}, not a {model_type}")
        version = await conn.scalar(
            text(
                "UPDATE tenantry.ai_models SET latest_version = latest_version + 1, "
                "updated_at = now() WHERE name = :n RETURNING latest_version"
            ),
            {"n": name},
        )
        return int(version or 0)

    async def _move(
        self, conn: AsyncConnection, trail: ChangeLog, tenant_id: str, name: str, *, alias: str,
        version: int, actor: str | None,
    ) -> None:  # fmt: skip
        before = await _alias_version(conn, name, alias)
        await conn.execute(
            text(
                "INSERT INTO tenantry.ai_model_aliases (tenant_id, model_name, alias, version) "
                "VALUES (:t, :n, :a, :v) ON CONFLICT (tenant_id, model_name, alias) "
                "DO UPDATE SET version = excluded.version, updated_at = now()"
            ),
            {"t": tenant_id, "n": name, "a": alias, "v": version},
        )
        await trail.record(
            tenant_id, "ai.model.alias", f"ai_model:{name}", actor=actor,
            detail={"alias": alias, "version": version, "was": before},
        )  # fmt: skip

    async def _prune(
        self, conn: AsyncConnection, trail: ChangeLog, tenant_id: str, name: str
    ) -> None:
        gone = (
            await conn.execute(
                text(
                    "DELETE FROM tenantry.ai_model_versions WHERE model_name = :n AND "
                    "(tenant_id, version) IN (SELECT tenant_id, version FROM "
                    "tenantry.ai_model_versions WHERE model_name = :n ORDER BY version DESC "
                    "OFFSET :keep) AND (tenant_id, version) NOT IN (SELECT tenant_id, version "
                    "FROM tenantry.ai_model_aliases WHERE model_name = :n) RETURNING version"
                ),
                {"n": name, "keep": MAX_VERSIONS_KEPT},
            )
        ).all()
        if gone:
            await trail.record(
                tenant_id, "ai.model.version.prune", f"ai_model:{name}",
                detail={"versions": sorted(v for (v,) in gone)},
            )  # fmt: skip

    async def set_alias(
        self, tenant_id: str, name: str, alias: str, version: int, *, actor: str | None = None
    ) -> ModelView:
        """Point ``alias`` of ``name`` at ``version`` (a kept one). Making a version champion
        drops the ``challenger`` alias if it named that version."""
        validate_tenant_id(tenant_id)
        validate_model_name(name)
        alias = _alias(alias)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                exists = await conn.scalar(
                    text(
                        "SELECT 1 FROM tenantry.ai_model_versions WHERE model_name = :n AND "
                        "version = :v FOR SHARE"
                    ),
                    {"n": name, "v": version},
                )
                if exists is None:
                    raise NotFound(f"no version {version} of model {name}")
                await self._move(
                    conn, trail, tenant_id, name, alias=alias, version=version, actor=actor
                )
                if alias == "champion" and await _alias_version(conn, name, "challenger") == (
                    version
                ):
                    await _drop_alias(conn, name, "challenger")
                return await _model(conn, name)

    async def models(self, tenant_id: str) -> list[ModelView]:
        """Every model of the tenant, by name."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                names = await conn.scalars(text("SELECT name FROM tenantry.ai_models ORDER BY 1"))
                return [await _model(conn, n) for n in list(names)]

    async def model(self, tenant_id: str, name: str) -> ModelView:
        """One model; :class:`~tenantry.errors.NotFound` if the tenant has none of that name."""
        validate_tenant_id(tenant_id)
        validate_model_name(name)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await _model(conn, name)

    async def resolve(self, tenant_id: str, name: str, alias: str) -> int:
        """The version ``alias`` of ``name`` names; NotFound without the model, Conflict when
        no version carries the alias."""
        validate_tenant_id(tenant_id)
        validate_model_name(name)
        alias = _alias(alias)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                version = await _alias_version(conn, name, alias)
                if version is None:
                    await _model_type(conn, name)  # NotFound first
                    raise Conflict(f"model {name} has no {alias}: promote a version")
                return version

    async def version_file(self, tenant_id: str, name: str, version: int) -> VersionFile:
        """A kept version's file, digest and parameters."""
        validate_tenant_id(tenant_id)
        validate_model_name(name)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT m.model_type, v.file_format, v.file, v.sha256, v.parameters, "
                            "v.lineage FROM tenantry.ai_model_versions v JOIN tenantry.ai_models "
                            "m ON m.tenant_id = v.tenant_id AND m.name = v.model_name "
                            "WHERE v.model_name = :n AND v.version = :v"
                        ),
                        {"n": name, "v": version},
                    )
                ).first()
        if row is None:
            raise NotFound(f"no version {version} of model {name}")
        model_type, fmt, file, sha, parameters, lineage = row
        return VersionFile(
            name, model_type, version, fmt, bytes(file), bytes(sha), parameters, lineage
        )


async def _alias_version(conn: AsyncConnection, name: str, alias: str) -> int | None:
    found = await conn.scalar(
        text("SELECT version FROM tenantry.ai_model_aliases WHERE model_name = :n AND alias = :a"),
        {"n": name, "a": alias},
    )
    return None if found is None else int(found)


async def _drop_alias(conn: AsyncConnection, name: str, alias: str) -> None:
    await conn.execute(
        text("DELETE FROM tenantry.ai_model_aliases WHERE model_name = :n AND alias = :a"),
        {"n": name, "a": alias},
    )


async def _model_type(conn: AsyncConnection, name: str) -> str:
    found = await conn.scalar(
        text("SELECT model_type FROM tenantry.ai_models WHERE name = :n"), {"n": name}
    )
    if found is None:
        raise NotFound(f"no model {name}")
    return str(found)


async def _model(conn: AsyncConnection, name: str) -> ModelView:
    row = (
        await conn.execute(
            text(
                "SELECT name, model_type, created_at, updated_at FROM tenantry.ai_models "
                "WHERE name = :n"
            ),
            {"n": name},
        )
    ).first()
    if row is None:
        raise NotFound(f"no model {name}")
    versions = await conn.execute(
        text(
            f"SELECT {_VERSION_COLUMNS} FROM tenantry.ai_model_versions WHERE model_name = :n "
            "ORDER BY version DESC"
        ),
        {"n": name},
    )
    aliases = await conn.execute(
        text("SELECT alias, version FROM tenantry.ai_model_aliases WHERE model_name = :n"),
        {"n": name},
    )
    return ModelView(
        row[0], row[1], {a: int(v) for a, v in aliases}, [_version_view(r) for r in versions],
        row[2], row[3],
    )  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, default=str)
