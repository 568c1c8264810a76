"""SQL of the access domain: role assignments, inside a tenant transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from tenantry.access.models import role_assignments
from tenantry.db.repository import DriverQuery, TenantRepository

__all__ = ["RoleAssignmentsRepository"]

_ROLES_OF = DriverQuery.compiled(
    select(role_assignments.c.role).where(role_assignments.c.principal_id == bindparam("principal"))
)


class RoleAssignmentsRepository(TenantRepository):
    async def add(self, principal_id: str, role: str) -> bool:
        """Assign ``role``; ``False`` when it was assigned already."""
        statement = (
            pg_insert(role_assignments)
            .values(tenant_id=self.tenant_id, principal_id=principal_id, role=role)
            .on_conflict_do_nothing()
            .returning(role_assignments.c.role)
        )
        return (await self.conn.execute(statement)).first() is not None

    async def remove(self, principal_id: str, role: str) -> bool:
        """Take ``role`` away; ``False`` when it was not assigned."""
        statement = role_assignments.delete().where(
            role_assignments.c.principal_id == principal_id, role_assignments.c.role == role
        )
        return bool((await self.conn.execute(statement)).rowcount)

    async def roles_of(self, principal_id: str) -> Sequence[str]:
        """The roles assigned to ``principal_id`` (read on every session load: the driver's)."""
        return [row[0] for row in await self.fetch_driver(_ROLES_OF, {"principal": principal_id})]
