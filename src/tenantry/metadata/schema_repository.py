"""SQL of the schema registry: subjects and their immutable versions, in a tenant transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import TenantRepository
from tenantry.metadata.models import metadata_schema_subjects as subjects
from tenantry.metadata.models import metadata_schemas as schemas

__all__ = ["SchemaRepository"]


class SchemaRepository(TenantRepository):
    async def ensure_subject(self, name: str, compatibility: str) -> None:
        """Create the subject ``name`` with ``compatibility`` unless it exists. A concurrent
        creation waits for the other's transaction, then does nothing."""
        statement = (
            pg_insert(subjects)
            .values(tenant_id=self.tenant_id, name=name, compatibility=compatibility)
            .on_conflict_do_nothing()
        )
        await self.conn.execute(statement)

    async def subject(self, name: str, *, lock: bool = False) -> RowMapping | None:
        """The subject's row; ``lock``: locked until the transaction ends (to add a version)."""
        query = select(subjects).where(subjects.c.name == name)
        result = await self.conn.execute(query.with_for_update() if lock else query)
        return result.mappings().first()

    async def subjects(self) -> Sequence[RowMapping]:
        return (
            (await self.conn.execute(select(subjects).order_by(subjects.c.name))).mappings().all()
        )

    async def update_subject(
        self, name: str, *, latest: int | None = None, compatibility: str | None = None
    ) -> RowMapping | None:
        values: dict[str, Any] = {"updated_at": func.now()}
        if latest is not None:
            values["latest"] = latest
        if compatibility is not None:
            values["compatibility"] = compatibility
        statement = (
            update(subjects).where(subjects.c.name == name).values(**values).returning(*subjects.c)
        )
        return (await self.conn.execute(statement)).mappings().first()

    async def version(self, name: str, version: int) -> RowMapping | None:
        query = select(schemas).where(schemas.c.name == name, schemas.c.version == version)
        return (await self.conn.execute(query)).mappings().first()

    async def latest(self, name: str) -> RowMapping | None:
        query = (
            select(schemas)
            .where(schemas.c.name == name)
            .order_by(schemas.c.version.desc())
            .limit(1)
        )
        return (await self.conn.execute(query)).mappings().first()

    async def versions(self, name: str) -> Sequence[RowMapping]:
        """Every version of ``name``, version 1 first."""
        query = select(schemas).where(schemas.c.name == name).order_by(schemas.c.version)
        return (await self.conn.execute(query)).mappings().all()

    async def same_as(self, name: str, schema: dict[str, Any]) -> RowMapping | None:
        """The earliest version of ``name`` whose schema equals ``schema`` (as JSON values: the
        order of keys does not matter)."""
        query = (
            select(schemas)
            .where(schemas.c.name == name, schemas.c.schema == cast(schema, JSONB))
            .order_by(schemas.c.version)
            .limit(1)
        )
        return (await self.conn.execute(query)).mappings().first()

    async def insert_version(
        self,
        name: str,
        version: int,
        schema: dict[str, Any],
        compatibility: str,
        created_by: str | None,
    ) -> RowMapping:
        statement = (
            pg_insert(schemas)
            .values(
                tenant_id=self.tenant_id,
                name=name,
                version=version,
                schema=schema,
                compatibility=compatibility,
                created_by=created_by,
            )
            .returning(*schemas.c)
        )
        return (await self.conn.execute(statement)).mappings().one()
