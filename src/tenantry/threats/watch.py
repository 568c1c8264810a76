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

from datetime import timedelta

from tenantry.errors import BackendUnavailable, TenantryError
from tenantry.rounds import TenantRounds
from tenantry.threats.manager import ThreatAnalyzer

__all__ = ["ThreatWatch"]


class ThreatWatch(TenantRounds[str]):
    """Analyses the tenants that recorded events, every ``interval`` seconds."""

    work = "threat analysis"

    def __init__(
        self,
        analyzer: ThreatAnalyzer,
        *,
        interval: float = 30.0,
        window: timedelta = timedelta(hours=1),
    ) -> None:
        super().__init__(interval=interval)
        self.analyzer = analyzer
        self.window = window

    async def visit(self, tenant_id: str) -> str:
        await self.analyzer.analyze(tenant_id, self.window, fresh=True)
        return tenant_id

    def retry(self, error: TenantryError) -> bool:
        # its lane is full (a flood?), or the database is out: analysed next round
        return isinstance(error, BackendUnavailable)
