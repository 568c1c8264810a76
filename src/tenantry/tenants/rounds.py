"""Background rounds over the active tenants: a :class:`~tenantry.rounds.TenantRounds` that can
notice every active tenant at once (a sweep), for work that other processes may have left."""

from __future__ import annotations

from typing import TypeVar

from tenantry.db.default import UsesDatabase
from tenantry.rounds import TenantRounds
from tenantry.tenants.manager import TenantRegistry

__all__ = ["ActiveTenantRounds"]

R = TypeVar("R")


class ActiveTenantRounds(UsesDatabase, TenantRounds[R]):
    """Rounds on a database (``self._database``) that :meth:`sweep` every active tenant into."""

    async def sweep(self) -> int:
        """Notice every active tenant (not the reserved ones); how many."""
        tenants = await TenantRegistry(await self._db()).active_ids()
        for tenant_id in tenants:
            self.notice(tenant_id)
        return len(tenants)
