"""SQL of the tenants domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import DriverQuery, Repository, TenantRepository
from tenantry.tenants.models import tenant_settings, tenants

__all__ = ["SettingsRepository", "TenantsRepository"]

_GET_SETTING = DriverQuery.compiled(
    select(tenant_settings.c.key, tenant_settings.c.value, tenant_settings.c.updated_at).where(
        tenant_settings.c.key == bindparam("key")
    )
)


class TenantsRepository(Repository):
    async def insert(
        self, tenant_id: str, display_name: str, tier: str, status: str
    ) -> RowMapping | None:
        """Insert a tenant; ``None`` when the id is taken."""
        statement = (
            pg_insert(tenants)
            .values(id=tenant_id, display_name=display_name, tier=tier, status=status)
            .on_conflict_do_nothing(index_elements=[tenants.c.id])
            .returning(*tenants.c)
        )
        return (await self.conn.execute(statement)).mappings().first()

    async def get(self, tenant_id: str, *, lock: bool = False) -> RowMapping | None:
        """The tenant's row; ``lock``: locked until the transaction ends (to change it)."""
        query = select(tenants).where(tenants.c.id == tenant_id)
        result = await self.conn.execute(query.with_for_update() if lock else query)
        return result.mappings().first()

    async def list(
        self, *, status: str | None, after: str | None, limit: int
    ) -> Sequence[RowMapping]:
        query = select(tenants).order_by(tenants.c.id).limit(limit)
        if status is not None:
            query = query.where(tenants.c.status == status)
        if after is not None:
            query = query.where(tenants.c.id > after)
        return (await self.conn.execute(query)).mappings().all()

    async def set_status(self, tenant_id: str, status: str) -> RowMapping | None:
        statement = (
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(status=status, updated_at=func.now())
            .returning(*tenants.c)
        )
        return (await self.conn.execute(statement)).mappings().first()


class SettingsRepository(TenantRepository):
    async def get(self, key: str) -> asyncpg.Record | None:
        """The setting (key, value, updated_at), a hot point read: straight to asyncpg (whose
        connection decodes ``jsonb`` as SQLAlchemy set it up to)."""
        rows = await self.fetch_driver(_GET_SETTING, {"key": key})
        return rows[0] if rows else None

    async def list(self) -> Sequence[RowMapping]:
        query = select(
            tenant_settings.c.key, tenant_settings.c.value, tenant_settings.c.updated_at
        ).order_by(tenant_settings.c.key)
        return (await self.conn.execute(query)).mappings().all()

    async def put(self, key: str, value: Any) -> RowMapping:
        row = pg_insert(tenant_settings).values(tenant_id=self.tenant_id, key=key, value=value)
        statement = row.on_conflict_do_update(
            index_elements=[tenant_settings.c.tenant_id, tenant_settings.c.key],
            set_={"value": row.excluded.value, "updated_at": func.now()},
        ).returning(tenant_settings.c.key, tenant_settings.c.value, tenant_settings.c.updated_at)
        return (await self.conn.execute(statement)).mappings().one()

    async def delete(self, key: str) -> bool:
        statement = tenant_settings.delete().where(tenant_settings.c.key == key)
        return bool((await self.conn.execute(statement)).rowcount)
