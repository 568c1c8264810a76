"""Background rounds over the active tenants: a :class:`~tenantry.rounds.TenantRounds` that can
notice every active tenant at once (a sweep), for work that other processes may have left."""

from __future__ import annotations

from typing import TypeVar

from tenantry.context import PLATFORM_TENANT
from tenantry.db.default import UsesDatabase
from tenantry.rounds import TenantRounds
from tenantry.tenants.manager import TenantRegistry

__all__ = ["ActiveTenantRounds"]

R = TypeVar("R")


class ActiveTenantRounds(UsesDatabase, TenantRounds[R]):
    """Rounds on a database (``self._database``) that :meth:`sweep` every active tenant into:
    before the first round and every ``sweep_every`` rounds (0: never), for work other processes
    or a restart left."""

    #: Rounds between sweeps; 0 leaves sweeping to the subclass.
    sweep_every: int = 0
    #: Whether a sweep notices the platform (:data:`~tenantry.context.PLATFORM_TENANT`) too:
    #: for work the platform has as a tenant of its own (its alerts).
    with_platform: bool = False

    async def before_round(self, number: int) -> None:
        if self.sweep_every and (number == 1 or number % self.sweep_every == 0):
            await self.sweep()

    async def sweep(self) -> int:
        """Notice every active tenant (not the reserved ones, but the platform with
        :attr:`with_platform`); how many."""
        tenants = await TenantRegistry(await self._db()).active_ids()
        if self.with_platform:
            tenants = (*tenants, PLATFORM_TENANT)
        for tenant_id in tenants:
            self.notice(tenant_id)
        return len(tenants)
