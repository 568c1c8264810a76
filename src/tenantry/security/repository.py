"""SQL of the security domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import TenantRepository
from tenantry.security.models import security_events

__all__ = ["SecurityEventsRepository"]


class SecurityEventsRepository(TenantRepository):
    async def add(self, **values: Any) -> RowMapping:
        statement = (
            insert(security_events)
            .values(tenant_id=self.tenant_id, **values)
            .returning(*security_events.c)
        )
        return (await self.conn.execute(statement)).mappings().one()

    async def since(
        self, since: datetime, *, kinds: Sequence[str] = (), limit: int = 10_000
    ) -> Sequence[RowMapping]:
        query = (
            select(security_events)
            .where(security_events.c.occurred_at >= since)
            .order_by(security_events.c.occurred_at.desc())
            .limit(limit)
        )
        if kinds:
            query = query.where(security_events.c.kind.in_(kinds))
        return (await self.conn.execute(query)).mappings().all()
