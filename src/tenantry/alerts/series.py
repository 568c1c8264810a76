"""What a rule's condition reads: a tenant's metric series and its threat analysis, by name.

- ``<metric>_<agg>`` (``session_creation_time_p95``, ``error_rate_avg``; ``agg`` one of p50, p90,
  p95, p99, avg, sum, min, max, count) is ``<metric>``'s values over the last ``WINDOW`` (five
  minutes) combined by ``agg``; a bare ``<metric>`` is their average. A label selector
  (``name{route="/x"}``) keeps the series that have those labels. No value in the window: the
  series is missing, and a condition that needs it is not met.
- ``threat_level`` (``"low"`` ... ``"critical"``) and ``anomaly_score`` (0 to 1) are the tenant's
  threat analysis of the last hour, when the source was given the analyzer.

Values are read once per evaluation of a tenant, whatever the number of rules that read them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Protocol

from tenantry.alerts.expressions import SeriesRef
from tenantry.monitoring.manager import MonitoringManager
from tenantry.monitoring.schemas import Aggregation

__all__ = ["WINDOW", "SeriesSource", "Threats"]

#: The window a metric's value is computed over.
WINDOW: Final = timedelta(minutes=5)
_THREAT_WINDOW: Final = timedelta(hours=1)
_SUFFIXES: Final = {f"_{a.value}": a for a in Aggregation}


class Threats(Protocol):
    """What the source needs of :class:`tenantry.threats.ThreatAnalyzer`."""

    async def analyze(
        self, tenant_id: str, window: timedelta = ..., *, now: datetime | None = ...
    ) -> object: ...


class SeriesSource:
    """Reads the values of a tenant's condition series at one evaluation time."""

    def __init__(self, monitoring: MonitoringManager, threats: Threats | None = None) -> None:
        self.monitoring, self.threats = monitoring, threats

    async def read(
        self, tenant_id: str, refs: set[SeriesRef], now: datetime
    ) -> dict[str, float | str]:
        """The values of ``refs`` at ``now``, by :attr:`SeriesRef.key`; missing ones left out."""
        values: dict[str, float | str] = {}
        report: object = None
        for ref in sorted(refs, key=lambda r: r.key):
            if ref.name in ("threat_level", "anomaly_score") and not ref.labels:
                if self.threats is None:
                    continue
                if report is None:
                    report = await self.threats.analyze(tenant_id, _THREAT_WINDOW, now=now)
                level = getattr(report, "level", None)
                found: float | str | None = (
                    str(getattr(level, "value", level))
                    if ref.name == "threat_level"
                    else float(getattr(report, "anomaly_score", 0.0))
                )
            else:
                found = await self._metric(tenant_id, ref, now)
            if found is not None:
                values[ref.key] = found
        return values

    async def _metric(self, tenant_id: str, ref: SeriesRef, now: datetime) -> float | None:
        name, aggregation = ref.name, Aggregation.AVG
        for suffix, agg in _SUFFIXES.items():
            if name.endswith(suffix) and len(name) > len(suffix):
                name, aggregation = name[: -len(suffix)], agg
                break
        step = int(WINDOW.total_seconds())
        series = await self.monitoring.query(
            tenant_id,
            name,
            start=now - WINDOW,
            end=now,
            step=step,
            aggregation=aggregation,
            labels=dict(ref.labels),
        )
        return series.points[-1].value if series.points else None
