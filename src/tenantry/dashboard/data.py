"""What the dashboard shows, gathered from the managers the app already runs.

Every figure comes from a manager's own answer (the monitoring series, the performance manager's
signals, forecast and scaling advice, the threat analyzer, the security events, the audit log's
checkpoints, the sessions' live totals, the tenant registry, the connections' health, the workflow
manager's listings, the alert manager's states); a source with nothing yet gives an empty list or
None, which the page shows as "no data yet", and a source that fails gives its reason instead of
the whole answer failing. A tenant's view reads only its own tenant; the platform's reads every
tenant, up to :data:`MAX_TENANTS` of them.

Answers are kept :data:`SNAPSHOT_SECONDS` per view (a tenant, or the platform) and the load
forecasts :data:`FORECAST_SECONDS`: however many browsers poll, the managers are asked at that
pace at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tenantry.context import PLATFORM_TENANT, RESERVED_TENANTS
from tenantry.errors import TenantryError
from tenantry.logging import get_logger
from tenantry.performance.scaling import ScalingSpec
from tenantry.workflows.models import RUNNABLE

__all__ = [
    "FORECAST_SECONDS",
    "MAX_TENANTS",
    "PLATFORM_SNAPSHOT_SECONDS",
    "SNAPSHOT_SECONDS",
    "WINDOW",
    "Overview",
    "poll_seconds",
]

_log = get_logger("tenantry.dashboard")
#: Seconds an answer is kept for a tenant's view, and for the platform's (every tenant's).
SNAPSHOT_SECONDS = 5.0
PLATFORM_SNAPSHOT_SECONDS = 15.0
#: Seconds a load forecast (and its scaling advice) is kept: it fits a model.
FORECAST_SECONDS = 300.0
#: The tenants the platform's view lists (by id).
MAX_TENANTS = 50
#: The charts' window and step.
WINDOW = timedelta(minutes=15)
STEP = 10
#: The workflow statuses counted as queues.
QUEUES = (*RUNNABLE, "parked")
#: The recent security events shown.
EVENTS_SHOWN = 15


def _unavailable(exc: Exception) -> dict[str, str]:
    detail = exc.detail if isinstance(exc, TenantryError) else type(exc).__name__
    return {"unavailable": str(detail)}


async def _safely(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
    """``call``'s answer; a reason instead if it fails (one source never fails the page)."""
    try:
        return await call()
    except (TimeoutError, TenantryError, OSError) as exc:
        _log.info("dashboard source unavailable", source=what, error=str(exc)[:200])
        return _unavailable(exc)


@dataclass
class Overview:
    """The dashboard's answers, from the app's managers (``state``: the app's ``AppState``)."""

    state: Any
    _snapshots: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _forecasts: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def view(self, tenant_id: str | None) -> dict[str, Any]:
        """The figures ``tenant_id`` may see (None: the platform's, every tenant's)."""
        key = tenant_id if tenant_id is not None else "*"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            kept = self._snapshots.get(key)
            if kept is not None and time.monotonic() - kept[0] < poll_seconds(tenant_id):
                return kept[1]
            answer = await (self._tenant(tenant_id) if tenant_id is not None else self._platform())
            if len(self._snapshots) > 4 * MAX_TENANTS:  # bounded: the oldest views rebuilt
                self._snapshots.clear()
                self._forecasts.clear()
                self._locks = {key: lock}
            self._snapshots[key] = (time.monotonic(), answer)
            return answer

    # -- a tenant's view -------------------------------------------------------------------------

    async def _tenant(self, tenant_id: str) -> dict[str, Any]:
        end = datetime.now(UTC)
        return {
            "scope": {"tenant": tenant_id, "platform": False},
            "generated_at": end.isoformat(),
            "performance": {
                "charts": await self._tenant_charts(tenant_id, end),
                "forecast": await self._forecast(tenant_id),
                "scaling": {"unavailable": "the scaling advice is the platform's"},
                "signals": None,
                "bottlenecks": None,
            },
            "security": await self._security(tenant_id),
            "business": {
                "tenants": [await self._business(tenant_id, await self._record(tenant_id))]
            },
            "operations": {
                "backends": {"unavailable": "the backends are the platform's"},
                "workflows": [await self._queues(tenant_id)],
                "alerts": await self._alerts([tenant_id]),
            },
        }

    async def _record(self, tenant_id: str) -> Any:
        try:
            return await self.state.tenants.get(tenant_id)
        except TenantryError:
            return None

    async def _series(
        self, tenant_id: str, name: str, end: datetime, aggregation: str, **labels: str
    ) -> list[list[float]] | dict[str, str]:
        async def read() -> list[list[float]]:
            series = await self.state.monitoring.query(
                tenant_id,
                name,
                start=end - WINDOW,
                end=end,
                step=STEP,
                aggregation=aggregation,
                labels=labels or None,
            )
            return [[p.time.timestamp(), p.value] for p in series.points]

        found: list[list[float]] | dict[str, str] = await _safely(name, read)
        return found

    async def _tenant_charts(self, tenant_id: str, end: datetime) -> list[dict[str, Any]]:
        name = "http_request_seconds"
        p95 = await self._series(tenant_id, name, end, "p95")
        count = await self._series(tenant_id, name, end, "count")
        errors = await self._series(tenant_id, name, end, "count", status="5xx")
        refused = await self._series(tenant_id, name, end, "count", status="4xx")
        pool = await self._series(tenant_id, "db_pool_in_use", end, "max")
        return [
            _chart("latency", "Latency p95", "ms", [("p95", _scaled(p95, 1000.0))]),
            _chart("throughput", "Throughput", "req/s", [("requests", _scaled(count, 1 / STEP))]),
            _chart(
                "errors",
                "Errors",
                "req/s",
                [("5xx", _scaled(errors, 1 / STEP)), ("4xx", _scaled(refused, 1 / STEP))],
            ),
            _chart("saturation", "Database connections in use", "connections", [("max", pool)]),
        ]

    # -- the platform's view ---------------------------------------------------------------------

    async def _platform(self) -> dict[str, Any]:
        s = self.state
        end = datetime.now(UTC)
        tenants = await _safely("tenants", lambda: s.tenants.list(limit=MAX_TENANTS + 1))
        ids = (
            [t.id for t in tenants if t.id not in RESERVED_TENANTS][:MAX_TENANTS]
            if isinstance(tenants, list)
            else []
        )
        by_id = {t.id: t for t in tenants} if isinstance(tenants, list) else {}
        current = await _safely("performance", s.performance.get_current_performance)
        return {
            "scope": {"tenant": None, "platform": True},
            "generated_at": end.isoformat(),
            "performance": {
                "charts": await self._platform_charts(end),
                "forecast": await self._forecast(None),
                "scaling": await self._scaling(),
                "signals": current.signals if not isinstance(current, dict) else current,
                "bottlenecks": (
                    [b.model_dump() for b in current.bottlenecks]
                    if not isinstance(current, dict)
                    else []
                ),
            },
            "security": {
                "tenants": [{"tenant_id": t, **(await self._threat(t))} for t in ids],
                "events": await self._events_of(ids),
                "checkpoints": [{"tenant_id": t, **(await self._checkpoint(t))} for t in ids],
            },
            "business": {
                "tenants": [await self._business(t, by_id.get(t)) for t in ids],
                "listed": len(ids),
                "more": isinstance(tenants, list) and len(tenants) > MAX_TENANTS,
            },
            "operations": {
                "backends": s.connections.health().model_dump(mode="json"),
                "workflows": [await self._queues(t) for t in ids],
                "alerts": await self._alerts([*ids, PLATFORM_TENANT]),
            },
        }

    async def _platform_charts(self, end: datetime) -> list[dict[str, Any]]:
        def read(name: str, aggregation: str = "avg") -> Awaitable[Any]:
            return self._series(PLATFORM_TENANT, name, end, aggregation)

        return [
            _chart(
                "latency",
                "Latency p95 (process)",
                "ms",
                [("p95", _scaled(await read("request_latency_p95_seconds", "max"), 1000.0))],
            ),
            _chart(
                "throughput",
                "Throughput (process)",
                "req/s",
                [("requests", await read("requests_per_second"))],
            ),
            _chart(
                "errors",
                "Error ratio (5xx)",
                "%",
                [("5xx", _scaled(await read("request_error_ratio", "max"), 100.0))],
            ),
            _chart(
                "saturation",
                "Saturation",
                "%",
                [
                    ("cpu", await read("process_cpu_percent")),
                    ("db pool", _scaled(await read("db_pool_in_use_ratio", "max"), 100.0)),
                ],
            ),
        ]

    # -- the parts -------------------------------------------------------------------------------

    async def _forecast(self, tenant_id: str | None) -> Any:
        key = tenant_id or "*"
        kept = self._forecasts.get(key)
        if kept is not None and time.monotonic() - kept[0] < FORECAST_SECONDS:
            return kept[1]

        async def read() -> dict[str, Any]:
            f = await self.state.performance.forecast_load(tenant_id=tenant_id, horizon=24)
            start = f.start.timestamp()
            ahead = start + len(f.history) * f.step_seconds
            return {
                "model": f.model,
                "step_seconds": f.step_seconds,
                "history": [[start + i * f.step_seconds, v] for i, v in enumerate(f.history)],
                "forecast": [
                    [ahead + i * f.step_seconds, v, lo, hi]
                    for i, (v, lo, hi) in enumerate(zip(f.forecast, f.lower, f.upper, strict=True))
                ],
            }

        found = await _safely("forecast", read)
        self._forecasts[key] = (time.monotonic(), found)
        return found

    async def _scaling(self) -> Any:
        s = self.state
        scaler = s.autoscaler
        if scaler is not None:
            return {"autoscaler": scaler.status().model_dump(mode="json")}
        kept = self._forecasts.get("scaling")
        if kept is not None and time.monotonic() - kept[0] < FORECAST_SECONDS:
            return kept[1]
        settings = s.settings
        spec = ScalingSpec(
            settings.autoscaling_min_replicas,
            settings.autoscaling_max_replicas,
            settings.autoscaling_target_per_pod,
            scale_down_window_s=settings.autoscaling_stabilization_seconds,
        )

        async def read() -> dict[str, Any]:
            plan = await s.performance.scaling_advice(
                spec,
                current_replicas=settings.autoscaling_min_replicas,
                lead_seconds=settings.autoscaling_lead_seconds,
                deployment=settings.autoscaling_deployment,
            )
            a = plan.advice
            return {
                "advice": {
                    "replicas": a.replicas,
                    "peak_load": a.peak_load,
                    "target_per_pod": settings.autoscaling_target_per_pod,
                    "reason": a.reason,
                }
            }

        found = await _safely("scaling", read)
        self._forecasts["scaling"] = (time.monotonic(), found)
        return found

    async def _threat(self, tenant_id: str) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            report = await self.state.threats.analyze(tenant_id, timedelta(hours=1))
            return {"level": str(report.level), "anomaly_score": report.anomaly_score}

        found: dict[str, Any] = await _safely("threats", read)
        return found

    async def _events(self, tenant_id: str) -> list[dict[str, Any]] | dict[str, str]:
        async def read() -> list[dict[str, Any]]:
            since = datetime.now(UTC) - timedelta(days=1)
            events = await self.state.events.since(tenant_id, since)
            return [
                {
                    "tenant_id": tenant_id,
                    "at": e.occurred_at.isoformat(),
                    "kind": e.kind,
                    "severity": str(e.severity),
                    "principal": e.principal_id,
                }
                for e in sorted(events, key=lambda e: e.occurred_at, reverse=True)[:EVENTS_SHOWN]
            ]

        found: list[dict[str, Any]] | dict[str, str] = await _safely("events", read)
        return found

    async def _events_of(self, ids: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for tenant in ids:
            events = await self._events(tenant)
            if isinstance(events, list):
                found += events
        return sorted(found, key=lambda e: e["at"], reverse=True)[:EVENTS_SHOWN]

    async def _checkpoint(self, tenant_id: str) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            audit = self.state.audit
            size = await audit.size(tenant_id)
            checkpoints = await audit.checkpoints(tenant_id)
            signed = max((c.tree_size for c in checkpoints), default=None)
            return {"entries": size, "checkpointed": signed, "checkpoints": len(checkpoints)}

        found: dict[str, Any] = await _safely("audit", read)
        return found

    async def _security(self, tenant_id: str) -> dict[str, Any]:
        return {
            "tenants": [{"tenant_id": tenant_id, **(await self._threat(tenant_id))}],
            "events": await self._events(tenant_id),
            "checkpoints": [{"tenant_id": tenant_id, **(await self._checkpoint(tenant_id))}],
        }

    async def _business(self, tenant_id: str, tenant: Any) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            sessions, users = await self.state.sessions.live_totals(tenant_id)
            return {"sessions": sessions, "users": users}

        row: dict[str, Any] = {"tenant_id": tenant_id, **(await _safely("sessions", read))}
        if tenant is not None:
            row["status"] = str(tenant.status)
            row["tier"] = str(tenant.tier)
        return row

    async def _queues(self, tenant_id: str) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            return {"counts": await self.state.workflows.counts(tenant_id, QUEUES)}

        return {"tenant_id": tenant_id, **(await _safely("workflows", read))}

    async def _alerts(self, ids: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for tenant in ids:
            try:
                views = await self.state.alerts.alerts(tenant)
            except TenantryError:
                continue
            for v in views:
                if str(v.state.status) in ("firing", "pending"):
                    found.append(
                        {
                            "tenant_id": tenant,
                            "rule": v.rule.name,
                            "severity": str(v.rule.severity),
                            "status": str(v.state.status),
                            "since": _iso(getattr(v.state, "active_since", None)),
                        }
                    )
        return found


def poll_seconds(tenant_id: str | None) -> float:
    """How long a view's answer is kept: polling it faster gets the same answer."""
    return SNAPSHOT_SECONDS if tenant_id is not None else PLATFORM_SNAPSHOT_SECONDS


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _scaled(points: Any, factor: float) -> Any:
    if not isinstance(points, list):
        return points
    return [[t, v * factor] for t, v in points]


def _chart(key: str, title: str, unit: str, lines: list[tuple[str, Any]]) -> dict[str, Any]:
    """A chart's lines ([[unix seconds, value], ...]); a line whose source failed carries its
    reason (``unavailable``) and no points."""
    out = []
    for label, points in lines:
        if isinstance(points, list):
            out.append({"label": label, "points": points})
        else:
            out.append({"label": label, "points": [], **points})
    return {"key": key, "title": title, "unit": unit, "lines": out}
