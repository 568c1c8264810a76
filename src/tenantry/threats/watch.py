"""Continuous threat detection: every tenant that recorded security events is analysed, on a
schedule, without anyone asking for a report.

Each :class:`~tenantry.threats.SecurityEvents` of a database tells the watches registered for it
(:func:`~tenantry.threats.events.on_events`) which tenant recorded an event; a
:class:`ThreatWatch` collects those tenants and, every ``interval`` seconds, runs the analyzer
over each one's last ``window``. The analyzer hands every subject at HIGH or above to its
``on_threat`` callbacks (the :class:`~tenantry.security.SecurityManager` writes it to the
tenant's audit log), deduplicated per (tenant, subject, level). A tenant with no new event is not
analysed again, so the cost follows the events, not the number of tenants.

Each process watches the events it records itself; with several processes, each analyses its
own tenants' windows, which hold every process's events (they are rows in PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextvars
from datetime import timedelta

from tenantry.errors import BackendUnavailable, TenantryError
from tenantry.logging import get_logger
from tenantry.threats.manager import ThreatAnalyzer

__all__ = ["ThreatWatch"]

_log = get_logger("tenantry.threats")


class ThreatWatch:
    """Analyses the tenants that recorded events, every ``interval`` seconds."""

    def __init__(
        self,
        analyzer: ThreatAnalyzer,
        *,
        interval: float = 30.0,
        window: timedelta = timedelta(hours=1),
    ) -> None:
        self.analyzer = analyzer
        self.interval = interval
        self.window = window
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def noticed(self) -> frozenset[str]:
        """The tenants the next round analyses."""
        return frozenset(self._pending)

    def notice(self, tenant_id: str) -> None:
        """``tenant_id`` recorded a security event: analyse it in the next round."""
        self._pending.add(tenant_id)

    async def run_once(self) -> int:
        """Analyse every tenant noticed since the last round; how many were analysed."""
        tenants, self._pending = sorted(self._pending), set()
        for tenant_id in tenants:
            try:
                await self.analyzer.analyze(tenant_id, self.window, fresh=True)
            except TenantryError as exc:  # one tenant's failure must not stop the others
                _log.warning("threat analysis failed", tenant=tenant_id, error=exc.detail)
                if isinstance(exc, BackendUnavailable):  # its lane is full (a flood?), or the
                    self._pending.add(tenant_id)  # database is out: analysed next round
        return len(tenants)

    async def start(self) -> None:
        """Run rounds in the background until :meth:`close` (in a context of its own)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.run_once()
