"""The load series read back from the metrics: requests per second per hour.

- A tenant's load: the count of its ``http_request_seconds`` (every request the service answered
  for it) per hour, divided by 3600.
- The process's (``tenant_id=None``): the performance sampler's ``requests_per_second`` of the
  platform, averaged per hour (one pod's load, the per-pod metric an HPA scales on).

An hour without a value counts as no load. The load planner (:mod:`tenantry.performance.planning`)
and the automatic training of the ``load_forecasting`` models (:mod:`tenantry.ai.auto`) read the
same series.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from tenantry.context import PLATFORM_TENANT, validate_tenant_id
from tenantry.monitoring.manager import MonitoringManager

__all__ = ["HOUR", "REQUESTS_METRIC", "hourly_load"]

HOUR: Final = 3600
#: The metric each answered request records (its duration), per tenant.
REQUESTS_METRIC: Final = "http_request_seconds"


async def hourly_load(
    monitoring: MonitoringManager, start: datetime, end: datetime, tenant_id: str | None = None
) -> list[float]:
    """The load in the whole hours from ``start`` to ``end`` (oldest first): ``tenant_id``'s
    requests per second, or the process's with None (see the module docstring)."""
    if tenant_id is None:
        tenant, name, aggregation, scale = PLATFORM_TENANT, "requests_per_second", "avg", 1.0
    else:
        tenant, name = validate_tenant_id(tenant_id), REQUESTS_METRIC
        aggregation, scale = "count", 1.0 / HOUR
    found = await monitoring.query(
        tenant, name, start=start, end=end, step=HOUR, aggregation=aggregation
    )
    by_hour = {int((p.time - start).total_seconds()) // HOUR: p.value for p in found.points}
    count = int((end - start).total_seconds()) // HOUR
    return [by_hour.get(i, 0.0) * scale for i in range(count)]
