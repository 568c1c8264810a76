"""Load forecasts from the series, and the scaling advice they give ahead of the load.

- **The load.** A tenant's: its requests per second per hour, from the count of its
  ``http_request_seconds`` (every request the service answered for it). In total: the
  process's ``requests_per_second`` (the performance sampler's), averaged per hour: with
  several worker processes or pods, one pod's load, the per-pod metric an HPA scales on.
  An hour without a value counts as no load.
- **The forecast.** The default load forecaster (:func:`tenantry.ai.fit_load`: MSTL over a day
  and a week, 24 and 168 buckets, those the history holds more than two cycles of; parameters
  estimated for ``horizon`` hours ahead; Box-Cox when no hour is without load; outliers
  cleaned) on the last ``hours`` of that series (28 days by default: four weeks, the weekly
  pattern's average over more than two; at most 90, the PREMIUM tier's retention of hourly
  buckets), for the next ``horizon`` hours, with its prediction interval.
- **The advice.** :class:`~tenantry.performance.scaling.ScalingAdvisor` (the HPA's rule, its
  tolerance and stabilization windows) on the forecast's peak over the pods' start-up time, and
  the HPA fragment that applies the same settings to the live metric. The advisor is kept
  between calls with the same settings, so its windows see the earlier recommendations.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from tenantry.ai import fit_load
from tenantry.errors import InvalidInput
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.load import hourly_load
from tenantry.performance.scaling import (
    Advice,
    ScalingAdvisor,
    ScalingSpec,
    hpa_manifest_fragment,
    hpa_manifest_yaml,
)

__all__ = [
    "DEFAULT_HISTORY_HOURS",
    "HOUR",
    "MAX_HISTORY_HOURS",
    "MAX_HORIZON_HOURS",
    "LoadForecast",
    "LoadPlanner",
    "ScalingPlan",
]

HOUR: Final = 3600
#: The hours of history a forecast may read (the PREMIUM tier's retention of hourly buckets,
#: monitoring.retention.RETENTION), and the hours it may look ahead.
MAX_HISTORY_HOURS: Final = 24 * 90
MAX_HORIZON_HOURS: Final = 24 * 7
#: The hours read by default: four weeks, so the weekly period has more than two cycles.
DEFAULT_HISTORY_HOURS: Final = 24 * 28
_DAY: Final = 24
#: Scaling settings whose advisors (and windows) are kept at once.
_MAX_ADVISORS: Final = 16


@dataclass(frozen=True, slots=True)
class LoadForecast:
    """Requests per second per hour: the history read, and the forecast with its interval."""

    tenant_id: str | None  # None: the process's (one pod's) load
    start: datetime  # of the first hour of ``history``
    step_seconds: int
    history: tuple[float, ...]
    forecast: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    model: str  # the forecaster's kind: multiseasonal, seasonal, trend, level; none without load


@dataclass(frozen=True, slots=True)
class ScalingPlan:
    """The advice for the forecast's peak ahead, and the HPA that does the same live."""

    forecast: LoadForecast
    advice: Advice
    manifest: dict[str, Any]
    manifest_yaml: str


def _hours(value: object, what: str, top: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise InvalidInput(f"{what} is a whole number of hours from 1 to {top}")


class LoadPlanner:
    """Forecasts and scaling advice over a monitoring manager's series (module docstring)."""

    def __init__(self, monitoring: MonitoringManager) -> None:
        self.monitoring = monitoring
        self._advisors: dict[ScalingSpec, ScalingAdvisor] = {}

    async def forecast(
        self,
        now: datetime,
        *,
        tenant_id: str | None = None,
        hours: int = DEFAULT_HISTORY_HOURS,
        horizon: int = 24,
    ) -> LoadForecast:
        """The forecast of ``tenant_id``'s load (None: the process's) for ``horizon`` hours
        from the hour ``now`` is in, fitted on the ``hours`` before it."""
        _hours(hours, "hours", MAX_HISTORY_HOURS)
        _hours(horizon, "horizon", MAX_HORIZON_HOURS)
        end = now.replace(minute=0, second=0, microsecond=0)  # the hour in progress: not whole
        start = end - timedelta(hours=hours)
        history = await hourly_load(self.monitoring, start, end, tenant_id)
        if not any(history):  # nothing served in the window: nothing to fit, no load ahead
            none = (0.0,) * horizon
            return LoadForecast(tenant_id, start, HOUR, tuple(history), none, none, none, "none")
        day = _DAY if hours >= 2 * _DAY else 1
        fitted = await asyncio.to_thread(fit_load, history, day, horizon)
        ahead = fitted.forecast(horizon)
        return LoadForecast(
            tenant_id,
            start,
            HOUR,
            tuple(history),
            tuple(max(0.0, v) for v in ahead.mean),
            tuple(max(0.0, v) for v in ahead.lower),
            tuple(max(0.0, v) for v in ahead.upper),
            fitted.kind,
        )

    async def plan(
        self,
        now: datetime,
        spec: ScalingSpec,
        *,
        current_replicas: int,
        lead_seconds: float = 180.0,
        deployment: str = "tenantry",
        metric_name: str = "tenantry_requests_per_second",
        hours: int = DEFAULT_HISTORY_HOURS,
        tenant_id: str | None = None,
    ) -> ScalingPlan:
        """The replicas to run now for the forecast load: the HPA's rule on its peak over
        ``lead_seconds`` (the pods' start-up), and the HPA fragment for ``deployment``. The load
        is the process's (one pod's, times ``current_replicas``), or ``tenant_id``'s requests
        (a tenant served by pods of its own)."""
        if isinstance(current_replicas, bool) or not isinstance(current_replicas, int):
            raise InvalidInput("current_replicas is a whole number")
        steps = max(1, -(-int(lead_seconds) // HOUR))
        horizon = min(MAX_HORIZON_HOURS, steps)
        ahead = await self.forecast(now, tenant_id=tenant_id, hours=hours, horizon=horizon)
        pods = current_replicas if tenant_id is None else 1  # one pod's load, or the tenant's
        total = [v * pods for v in ahead.forecast]
        advisor = self._advisors.pop(spec, None) or ScalingAdvisor(spec)
        self._advisors[spec] = advisor  # the most recent last; the oldest forgotten past the cap
        while len(self._advisors) > _MAX_ADVISORS:
            del self._advisors[next(iter(self._advisors))]
        advice = advisor.advise(
            time.monotonic(), current_replicas, total, step_s=HOUR, lead_s=lead_seconds
        )
        manifest = hpa_manifest_fragment(
            spec, name=deployment, deployment=deployment, metric_name=metric_name
        )
        return ScalingPlan(ahead, advice, manifest, hpa_manifest_yaml(manifest))
