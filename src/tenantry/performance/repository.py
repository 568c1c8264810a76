"""SQL of the knob changes, in the platform's tenant transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from tenantry.db.repository import TenantRepository
from tenantry.performance.models import performance_changes

__all__ = ["ChangesRepository"]

_t = performance_changes


class ChangesRepository(TenantRepository):
    async def insert(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.conn.execute(
                insert(_t), [{"tenant_id": self.tenant_id, "id": uuid.uuid4(), **r} for r in rows]
            )

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` changes, newest first."""
        query = select(_t).order_by(_t.c.created_at.desc(), _t.c.id).limit(limit)
        return [dict(r._mapping) for r in await self.conn.execute(query)]

    async def rolled_back_since(self, since: datetime) -> dict[str, datetime]:
        """knob -> when its latest rolled-back change was made, for changes since ``since``."""
        query = (
            select(_t.c.knob, _t.c.created_at)
            .where(_t.c.outcome == "rolled_back", _t.c.created_at >= since)
            .order_by(_t.c.created_at)
        )
        return {row.knob: row.created_at for row in await self.conn.execute(query)}
