"""The managers' own metrics, sampled into the tenants' series every ``interval`` seconds.

The service's request metrics are recorded as requests end (``api/middleware.py``); this adds
what the managers know, through the same :class:`~tenantry.monitoring.MonitoringManager` path:

- per tenant the cache served in the interval: ``cache_lookups`` (hits and misses in the
  interval) and ``cache_hit_ratio`` (hits over lookups, when there were lookups);
- the platform's: ``breaker_open`` per backend (``backend`` label: 1 open, 0.5 half open,
  0 closed);
- per tenant ``sessions_created``: the sessions this process's session manager created in the
  interval (one value a sample, for the tenants that had any);
- per tenant ``audit_backlog``: the tenant's audit entries committed to the audit queue and not
  yet in its tree (``audit_pending``, whichever process queued them), for the tenants this
  process queued entries for in the interval and those whose backlog was not 0 at the last
  sample (so a backlog is followed down to 0). Integration moves an entry within milliseconds of
  its commit, so a backlog that stays above 0 means the tree is not being written (keys
  destroyed, the database refusing).

It lives in the assembly because it reads managers of several layers; monitoring itself sits
below them.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Final

from tenantry.audit.outbox import AuditOutbox
from tenantry.cache.manager import CacheManager
from tenantry.connections.breaker import BreakerState
from tenantry.connections.manager import ConnectionManager
from tenantry.context import PLATFORM_TENANT
from tenantry.errors import TenantryError
from tenantry.logging import get_logger
from tenantry.monitoring.manager import MonitoringManager
from tenantry.sessions.manager import SessionManager

__all__ = ["ServiceSampler"]

_OPEN: Final = {BreakerState.OPEN: 1.0, BreakerState.HALF_OPEN: 0.5, BreakerState.CLOSED: 0.0}
_log = get_logger("tenantry.monitoring")


class ServiceSampler:
    """Samples the cache's and the breakers' state into the series; see the module docstring."""

    def __init__(
        self,
        monitoring: MonitoringManager,
        cache: CacheManager,
        connections: ConnectionManager,
        *,
        sessions: SessionManager | None = None,
        audit: AuditOutbox | None = None,
        interval: float = 10.0,
    ) -> None:
        self.monitoring, self.cache, self.connections = monitoring, cache, connections
        self.sessions, self.audit = sessions, audit
        self.interval = interval
        self._backlogged: set[str] = set()  # tenants whose audit backlog was > 0 last time
        self._seen: dict[str, tuple[int, int]] = {}  # tenant -> (hits, misses) at the last sample
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> int:
        """Record one sample; how many values were recorded."""
        recorded = 0
        for tenant in self.cache.tenants():
            stats = self.cache.stats(tenant)
            hits, misses = self._seen.get(tenant, (0, 0))
            new_hits, new_misses = stats.hits - hits, stats.misses - misses
            self._seen[tenant] = (stats.hits, stats.misses)
            lookups = new_hits + new_misses
            if lookups <= 0:
                continue
            try:
                self.monitoring.record("cache_lookups", float(lookups), None, tenant)
                self.monitoring.record("cache_hit_ratio", new_hits / lookups, None, tenant)
                recorded += 2
            except TenantryError as exc:  # a cache namespace that is no tenant id
                _log.debug("cache sample skipped", tenant=tenant, error=exc.detail)
        for member in self.connections.members:
            state = _OPEN.get(member.breaker.state, 0.0)
            labels = {"backend": member.name}
            self.monitoring.record("breaker_open", state, labels, PLATFORM_TENANT)
            recorded += 1
        if self.sessions is not None:
            for tenant, created in self.sessions.take_created().items():
                self.monitoring.record("sessions_created", float(created), None, tenant)
                recorded += 1
        return recorded

    async def sample_audit(self) -> int:
        """Record the audit backlog of the tenants to follow; how many values were recorded."""
        if self.audit is None:
            return 0
        tenants, recorded = self.audit.take_queued() | self._backlogged, 0
        self._backlogged = set()
        for tenant in sorted(tenants):
            try:
                backlog = await self.audit.backlog(tenant)
            except TenantryError as exc:  # a deleted tenant, the database away: followed
                # again once the tenant queues entries again
                _log.debug("audit backlog sample skipped", tenant=tenant, error=exc.detail)
                continue
            self.monitoring.record("audit_backlog", float(backlog), None, tenant)
            recorded += 1
            if backlog:
                self._backlogged.add(tenant)
        return recorded

    async def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.sample()
                await self.sample_audit()
            except Exception:  # noqa: BLE001 - sampling outlives one sample's failure
                _log.exception("service metrics sample failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
