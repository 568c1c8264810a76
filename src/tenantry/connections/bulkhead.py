"""Bulkheads: a per-tenant cap on the concurrent use of one backend.

Each tenant has its own lane on each backend: at most ``max_per_tenant`` of its calls run at
once; the next ones wait (FIFO) up to ``timeout`` seconds and then fail with
:class:`~tenantry.errors.BulkheadFull`. A tenant that floods a backend queues in its own lane,
behind its own calls, so it can hold at most its cap of the backend's connections and the other
tenants find the rest free. The default cap is half of the pool's maximum (the manager sets it).

Lanes exist only while a tenant has calls in flight or waiting, so memory follows the active
tenants, not all tenants. Calls without a tenant (health checks, global tables) pass freely.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from tenantry.errors import BulkheadFull, ConfigError

__all__ = ["Bulkhead"]


class _Lane:
    __slots__ = ("in_use", "waiters")

    def __init__(self) -> None:
        self.in_use = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class Bulkhead:
    """Per-tenant concurrency caps on one backend."""

    def __init__(
        self,
        name: str,
        *,
        max_per_tenant: int,
        timeout: float = 1.0,
        overrides: Mapping[str, int] | None = None,
    ) -> None:
        if max_per_tenant < 1 or timeout < 0:
            raise ConfigError(f"bulkhead {name!r}: need max_per_tenant >= 1 and timeout >= 0")
        self.name = name
        self.max_per_tenant = max_per_tenant
        self.timeout = timeout
        self.overrides = dict(overrides or {})
        self.rejected = 0
        #: calls that got a slot of their tenant's lane (calls without a tenant are not counted)
        self.admitted = 0
        self._lanes: dict[str, _Lane] = {}

    def cap(self, tenant: str) -> int:
        return self.overrides.get(tenant, self.max_per_tenant)

    def in_use(self, tenant: str) -> int:
        lane = self._lanes.get(tenant)
        return lane.in_use if lane else 0

    def try_acquire(self, tenant: str | None) -> bool:
        """Take a slot if one is free now, without waiting."""
        if tenant is None:
            return True
        lane = self._lanes.get(tenant)
        if lane is None:
            lane = self._lanes[tenant] = _Lane()
        if lane.in_use < self.overrides.get(tenant, self.max_per_tenant) and not lane.waiters:
            lane.in_use += 1
            self.admitted += 1
            return True
        return False

    async def acquire(self, tenant: str | None) -> None:
        if self.try_acquire(tenant) or tenant is None:
            return
        lane = self._lanes[tenant]
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release(tenant)  # handed over just as we gave up
            else:
                if waiter in lane.waiters:
                    lane.waiters.remove(waiter)
                self._forget_if_idle(tenant, lane)
            if isinstance(exc, TimeoutError):
                self.rejected += 1
                raise BulkheadFull(
                    f"tenant {tenant!r} has {self.cap(tenant)} calls in flight on {self.name}",
                    retry_after=self.timeout,
                ) from None
            raise
        self.admitted += 1  # handed over by release(): counted in the lane already

    def release(self, tenant: str | None) -> None:
        if tenant is None:
            return
        lane = self._lanes[tenant]
        while lane.waiters:
            waiter = lane.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the next in line
                return
        lane.in_use -= 1
        self._forget_if_idle(tenant, lane)

    def set_cap(self, max_per_tenant: int) -> None:
        """Change every tenant's cap (overrides stay; the performance manager's knob). Calls in
        flight above a lowered cap finish; a raised cap lets waiting calls in now."""
        if type(max_per_tenant) is not int or max_per_tenant < 1:
            raise ConfigError(f"bulkhead {self.name!r}: max_per_tenant must be >= 1")
        self.max_per_tenant = max_per_tenant
        for tenant, lane in list(self._lanes.items()):
            while lane.waiters and lane.in_use < self.cap(tenant):
                waiter = lane.waiters.popleft()
                if not waiter.done():
                    lane.in_use += 1
                    waiter.set_result(None)

    def lanes(self) -> dict[str, int]:
        """Calls in flight per tenant, for the tenants with a lane now."""
        return {tenant: lane.in_use for tenant, lane in self._lanes.items()}

    @asynccontextmanager
    async def slot(self, tenant: str | None) -> AsyncIterator[None]:
        await self.acquire(tenant)
        try:
            yield
        finally:
            self.release(tenant)

    def snapshot(self, top: int = 5) -> dict[str, object]:
        busiest = sorted(self._lanes.items(), key=lambda item: -item[1].in_use)[:top]
        return {
            "max_per_tenant": self.max_per_tenant,
            "tenants_active": len(self._lanes),
            "in_use": sum(lane.in_use for lane in self._lanes.values()),
            "waiting": sum(len(lane.waiters) for lane in self._lanes.values()),
            "rejected": self.rejected,
            "admitted": self.admitted,
            "busiest": {tenant: lane.in_use for tenant, lane in busiest},
        }

    def _forget_if_idle(self, tenant: str, lane: _Lane) -> None:
        if lane.in_use == 0 and not lane.waiters and self._lanes.get(tenant) is lane:
            del self._lanes[tenant]
