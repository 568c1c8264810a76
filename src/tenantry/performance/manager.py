"""PerformanceManager: the process's signals sampled, its bottlenecks named, its knobs tuned.

The documents' API: ``PerformanceManager()`` (and ``PerformanceManagerFactory``),
``initialize()``, ``start_monitoring()``, ``get_current_performance()``,
``get_analytics(hours=24)`` with its ``trends``, and
``optimize_performance(strategy=OptimizationStrategy.ADAPTIVE)``.

- Sampling (``sampler.py``) every ``interval`` seconds (``PERFORMANCE_MONITORING_INTERVAL``):
  process, host, database pool and requests into the platform's series, each tenant's part of
  the pool into its own; the event loop's lag measured all the time (``lag.py``). With
  ``ENABLE_REAL_TIME_MONITORING`` the lag is measured every 0.1 s (else every 0.5 s) and the
  pool sampled every second (else with the rest), so a saturation of a few seconds is seen.
- Detection (``detection.py``) after each sample: the bottlenecks are recorded as the platform's
  ``bottleneck`` series (label ``kind``; 1 while found, 0 once gone), so an alert rule
  ``bottleneck_max > 0`` on the platform fires, and answered by :meth:`get_current_performance`.
- Optimization (``optimizer.py``, ``knobs.py``): bounded changes to live knobs, measured before
  and after, rolled back when worse; every change stored (``performance_changes``, platform)
  and audited (``performance.change``). On request, and with ``ENABLE_AI_OPTIMIZATION`` also
  after a sample that found bottlenecks (``adaptive``, at most one round every 5 intervals).
- Forecasts and scaling advice (``planning.py``): :meth:`forecast_load` per tenant or for the
  process, :meth:`scaling_advice` (the HPA's rule on the forecast's peak ahead, and the HPA
  fragment), answered while ``ENABLE_PREDICTIVE_SCALING`` is on.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tenantry.ai.manager import AIManager
from tenantry.audit.manager import AuditLog
from tenantry.cache.manager import CacheManager
from tenantry.config import Settings, load_settings
from tenantry.connections.manager import ConnectionManager
from tenantry.context import PLATFORM_TENANT, tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import Conflict, FeatureDisabled, InvalidInput, TenantryError
from tenantry.logging import get_logger
from tenantry.monitoring.manager import MonitoringManager
from tenantry.monitoring.schemas import Aggregation, MetricSeries
from tenantry.performance.detection import Bottleneck, Thresholds, anomaly_scores, detect
from tenantry.performance.knobs import Knob, knobs_of
from tenantry.performance.lag import LoopLag
from tenantry.performance.optimizer import (
    Measurement,
    OptimizationStrategy,
    PlannedChange,
    measure_window,
    plan,
)
from tenantry.performance.planning import (
    DEFAULT_HISTORY_HOURS,
    HOUR,
    MAX_HORIZON_HOURS,
    LoadForecast,
    LoadPlanner,
    ScalingPlan,
)
from tenantry.performance.repository import ChangesRepository
from tenantry.performance.sampler import PerformanceSampler, RequestTally
from tenantry.performance.scaling import ScalingSpec
from tenantry.performance.schemas import (
    BottleneckInfo,
    CurrentPerformance,
    KnobChange,
    OptimizationResult,
    PerformanceAnalytics,
    SlowStatementsInfo,
)
from tenantry.performance.statements import SlowStatements, StatementReport
from tenantry.performance.trends import Trend, trend_of
from tenantry.performance.window import SignalWindow
from tenantry.validation import parse_enum

__all__ = ["Measure", "PerformanceManager", "PerformanceManagerFactory"]

#: How a round measures the live signals: called with "before" and then "after" the change.
Measure = Callable[[str], Awaitable[Measurement]]
_log = get_logger("tenantry.performance")
_MAX_CACHE_TENANTS: Final = 20
#: trend name -> (series, aggregation) over the platform's series.
_PROCESS_TRENDS: Final = {
    "cpu_trend": ("process_cpu_percent", Aggregation.AVG),
    "memory_trend": ("process_rss_bytes", Aggregation.AVG),
    "host_memory_trend": ("host_memory_percent", Aggregation.AVG),
    "latency_trend": ("request_latency_p95_seconds", Aggregation.AVG),
    "throughput_trend": ("requests_per_second", Aggregation.AVG),
    "error_rate_trend": ("request_error_ratio", Aggregation.AVG),
    "loop_lag_trend": ("event_loop_lag_seconds", Aggregation.P99),
    "pool_use_trend": ("db_pool_in_use_ratio", Aggregation.AVG),
}


class PerformanceManager(RecordsChanges):
    """See the module docstring. Give it the service's components; any left out is not
    sampled (no cache: no cache knobs; no connections: the database's own pool is read; no
    ``ai`` or ``audit_log``: no knobs of their batches)."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        monitoring: MonitoringManager | None = None,
        cache: CacheManager | None = None,
        connections: ConnectionManager | None = None,
        audit: ChangeLog | None = None,
        ai: AIManager | None = None,
        audit_log: AuditLog | None = None,
        settings: Settings | None = None,
        thresholds: Thresholds | None = None,
        measure: Measure | None = None,
        measure_seconds: float = 10.0,
        tolerance: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings = settings or load_settings()
        #: The wall clock of the series' times (the tests' to move).
        self.clock = clock
        self._database, self._audit = database, audit
        self.monitoring, self.cache, self.connections = monitoring, cache, connections
        self._owns_monitoring = monitoring is None
        self.thresholds = thresholds or Thresholds()
        self.interval = settings.performance_monitoring_interval
        self.real_time = settings.enable_real_time_monitoring
        self.auto_optimize = settings.enable_ai_optimization
        self.measure_seconds, self.tolerance = measure_seconds, tolerance
        self._measure = measure
        self._planner: LoadPlanner | None = None
        #: Every request of the process (the service's middleware tells it).
        self.requests = RequestTally()
        self.knobs: dict[str, Knob] = knobs_of(
            cache,
            connections,
            batcher=ai.batcher if ai is not None else None,
            audit_batch=audit_log.combiner if audit_log is not None else None,
        )
        self.bottlenecks: list[Bottleneck] = []
        self.statements = StatementReport(False, "not read yet")
        self._window = SignalWindow(max(900.0, self.thresholds.window * 3))
        self._sampler: PerformanceSampler | None = None
        self._lag: LoopLag | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._raised: set[str] = set()
        self._lock = asyncio.Lock()
        self._last_auto = -math.inf

    # -- lifecycle --------------------------------------------------------------------------------

    async def database(self) -> Database:
        """The database this manager samples and records on."""
        return await self._db()

    async def initialize(self) -> None:
        """Resolve the database and the monitoring manager (one of its own when none was given),
        and look for ``pg_stat_statements``."""
        if self._sampler is not None:
            return
        database = await self._db()
        if self.monitoring is None:
            self.monitoring = MonitoringManager(database)
        self._sampler = PerformanceSampler(
            self.monitoring,
            self._window,
            database=database,
            connections=self.connections,
            requests=self.requests,
        )
        self.statements = await SlowStatements(database).top()
        self._planner = LoadPlanner(self.monitoring)

    @property
    def sampler(self) -> PerformanceSampler:
        if self._sampler is None:
            raise Conflict("call initialize() first")
        return self._sampler

    async def start_monitoring(self) -> None:
        """Sample every ``interval`` seconds and measure the loop's lag (see the module)."""
        await self.initialize()
        if self._tasks:
            return
        sampler = self.sampler
        self._lag = LoopLag(sampler.sample_lag, interval=0.1 if self.real_time else 0.5)
        self._lag.start()
        if self._owns_monitoring and self.monitoring is not None:
            await self.monitoring.start_collection()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run(), context=contextvars.Context()))
        if self.real_time:
            self._tasks.append(loop.create_task(self._run_pool(), context=contextvars.Context()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._lag is not None:
            await self._lag.close()
        if self._owns_monitoring and self.monitoring is not None:
            await self.monitoring.close()

    async def _run(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample_round(statements=rounds % 6 == 0)
                rounds += 1
                await self._maybe_optimize()
            except Exception:  # noqa: BLE001 - monitoring outlives one round's failure
                _log.exception("performance sample failed")

    async def _run_pool(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.sampler.sample_pool()

    async def sample_round(self, *, statements: bool = False) -> list[Bottleneck]:
        """One sample, then detection and the ``bottleneck`` series (what the background task
        does every interval); the bottlenecks found."""
        self.sampler.sample()
        if statements:
            self.statements = await SlowStatements(await self._db()).top()
            for found in self.statements.statements:
                self._record("slow_statement_mean_seconds", found.mean_seconds, found.queryid)
        return await self.detect()

    def _record(self, name: str, value: float, queryid: str) -> None:
        if self.monitoring is not None:
            self.monitoring.record(name, value, {"queryid": queryid}, PLATFORM_TENANT)

    async def detect(self) -> list[Bottleneck]:
        """The bottlenecks of the recent window; raised and cleared in the ``bottleneck``
        series."""
        self.sampler  # noqa: B018 - initialized
        found = detect(self._window, self.thresholds, cache_ratios=await self._cache_ratios())
        kinds = {b.kind for b in found}
        monitoring = self.monitoring
        if monitoring is not None:
            for kind in kinds | self._raised:
                value = 1.0 if kind in kinds else 0.0
                monitoring.record("bottleneck", value, {"kind": kind}, PLATFORM_TENANT)
        for bottleneck in found:
            if bottleneck.kind not in self._raised:
                _log.warning("bottleneck", kind=bottleneck.kind, evidence=bottleneck.evidence)
        self._raised = kinds
        self.bottlenecks = found
        return found

    async def _cache_ratios(self) -> dict[str, tuple[float, float]]:
        """tenant -> (hit ratio, lookups) over the window, from the ``cache_hit_ratio`` and
        ``cache_lookups`` series the service samples (for the tenants holding the most of the
        L1, at most 20)."""
        if self.cache is None or self.monitoring is None:
            return {}
        l1 = self.cache.l1
        tenants = sorted(self.cache.tenants(), key=lambda t: -l1.stats(t).bytes)
        resolution = self.monitoring.resolution
        step = resolution * math.ceil(self.thresholds.window / resolution)
        end = self.clock() + timedelta(seconds=resolution)
        start = end - timedelta(seconds=step)
        ratios = {}
        for tenant in tenants[:_MAX_CACHE_TENANTS]:
            try:
                validate_tenant_id(tenant)
                ratio = await self.monitoring.query(
                    tenant, "cache_hit_ratio", start=start, end=end, step=step
                )
                lookups = await self.monitoring.query(
                    tenant,
                    "cache_lookups",
                    start=start,
                    end=end,
                    step=step,
                    aggregation=Aggregation.SUM,
                )
            except TenantryError:
                continue
            if ratio.points and lookups.points:
                ratios[tenant] = (ratio.points[-1].value, sum(p.value for p in lookups.points))
        return ratios

    # -- reading ----------------------------------------------------------------------------------

    async def get_current_performance(self) -> CurrentPerformance:
        """The last sample of each signal, the bottlenecks, the anomaly scores, the slow
        statements and the knobs' values, after a fresh sample."""
        await self.initialize()
        found = await self.sample_round()
        window = self._window
        signals = {
            name: value
            for name in window.names()
            if not name.startswith("db_pool_tenant_share:")
            and (value := window.last(name)) is not None
        }
        report = self.statements
        return CurrentPerformance(
            at=self.clock(),
            signals=signals,
            bottlenecks=[_info(b) for b in found],
            anomaly_scores=anomaly_scores(window),
            slow_statements=SlowStatementsInfo(
                available=report.available,
                reason=report.reason,
                statements=[
                    {
                        "queryid": s.queryid,
                        "query": s.query,
                        "calls": s.calls,
                        "mean_seconds": s.mean_seconds,
                        "total_seconds": s.total_seconds,
                    }
                    for s in report.statements
                ],
            ),
            knobs={name: knob.read() for name, knob in self.knobs.items()},
        )

    async def forecast_load(
        self,
        *,
        tenant_id: str | None = None,
        hours: int = DEFAULT_HISTORY_HOURS,
        horizon: int = 24,
    ) -> LoadForecast:
        """The load forecast of ``tenant_id`` (None: the process's) for the next ``horizon``
        hours from the last ``hours`` (see :mod:`tenantry.performance.planning`)."""
        await self.initialize()
        assert self._planner is not None  # noqa: S101 - initialize() made it
        return await self._planner.forecast(
            self.clock(), tenant_id=tenant_id, hours=hours, horizon=horizon
        )

    async def scaling_advice(
        self,
        spec: ScalingSpec,
        *,
        current_replicas: int,
        lead_seconds: float = 180.0,
        deployment: str = "tenantry",
        tenant_id: str | None = None,
    ) -> ScalingPlan:
        """The replicas to run for the forecast load (the process's, or ``tenant_id``'s), ahead
        of it, and the HPA fragment that applies ``spec`` live. While
        ``ENABLE_PREDICTIVE_SCALING`` is off: :class:`~tenantry.errors.FeatureDisabled`."""
        if not self.settings.enable_predictive_scaling:
            raise FeatureDisabled(
                "predictive scaling is off: set ENABLE_PREDICTIVE_SCALING=true to get advice"
            )
        if not 0 <= lead_seconds <= MAX_HORIZON_HOURS * HOUR:
            raise InvalidInput(f"lead_seconds is 0 to {MAX_HORIZON_HOURS * HOUR}")
        await self.initialize()
        assert self._planner is not None  # noqa: S101 - initialize() made it
        return await self._planner.plan(
            self.clock(),
            spec,
            current_replicas=current_replicas,
            lead_seconds=lead_seconds,
            deployment=deployment,
            tenant_id=tenant_id,
        )

    async def get_analytics(
        self, hours: int = 24, *, tenant_id: str | None = None
    ) -> PerformanceAnalytics:
        """Each signal's trend over the last ``hours`` (1-168): process-wide, or ``tenant_id``'s
        requests (latency p95, throughput, error rate from its ``http_request_seconds``), cache
        hit ratio and pool use."""
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 168:
            raise InvalidInput("hours must be an integer from 1 to 168")
        await self.initialize()
        monitoring = self.monitoring
        assert monitoring is not None  # noqa: S101 - initialize() made one
        resolution = monitoring.resolution
        step = resolution * max(1, math.ceil(hours * 3600 / 240 / resolution))
        end = self.clock()
        start = end - timedelta(hours=hours)
        span: dict[str, Any] = {
            "start": start,
            "end": end + timedelta(seconds=step),
            "step": step,
        }
        trends: dict[str, Trend] = {}
        if tenant_id is None:
            for name, (series, aggregation) in _PROCESS_TRENDS.items():
                found = await monitoring.query(
                    PLATFORM_TENANT, series, aggregation=aggregation, **span
                )
                trends[name] = _trend(found)
        else:
            validate_tenant_id(tenant_id)
            trends = await self._tenant_trends(monitoring, tenant_id, step, span)
        return PerformanceAnalytics(
            hours=hours, tenant_id=tenant_id, start=start, end=end, step=step, trends=trends
        )

    @staticmethod
    async def _tenant_trends(
        monitoring: MonitoringManager, tenant: str, step: int, span: dict[str, Any]
    ) -> dict[str, Trend]:
        def query(name: str, agg: Aggregation, **labels: str) -> Awaitable[MetricSeries]:
            return monitoring.query(tenant, name, aggregation=agg, labels=labels, **span)

        latency = await query("http_request_seconds", Aggregation.P95)
        count = await query("http_request_seconds", Aggregation.COUNT)
        errors = {
            p.time: p.value
            for p in (await query("http_request_seconds", Aggregation.COUNT, status="5xx")).points
        }
        rates = [(p.time, errors.get(p.time, 0.0) / p.value) for p in count.points if p.value]
        return {
            "latency_trend": _trend(latency),
            "throughput_trend": trend_of([(p.time, p.value / step) for p in count.points]),
            "error_rate_trend": trend_of(rates),
            "cache_hit_trend": _trend(await query("cache_hit_ratio", Aggregation.AVG)),
            "pool_use_trend": _trend(await query("db_pool_in_use", Aggregation.AVG)),
        }

    async def changes(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest knob changes, newest first."""
        db = await self._db()
        with tenant_scope(PLATFORM_TENANT):
            async with db.tenant_transaction() as conn:
                return await ChangesRepository(conn).recent(limit)

    # -- optimizing -------------------------------------------------------------------------------

    async def optimize_performance(
        self,
        strategy: OptimizationStrategy | str = OptimizationStrategy.BALANCED,
        *,
        actor: str = "library",
    ) -> OptimizationResult:
        """One round: detect, plan by ``strategy``, measure, apply, measure again, keep or roll
        back, record and audit (see ``optimizer.py``). A round already running: Conflict."""
        chosen = parse_enum(OptimizationStrategy, strategy)
        await self.initialize()
        if self._lock.locked():
            raise Conflict("an optimization round is running; try again when it ends")
        async with self._lock:
            return await self._round(chosen, actor)

    async def _round(self, strategy: OptimizationStrategy, actor: str) -> OptimizationResult:
        found = await self.sample_round()
        db = await self._db()
        rolled_back: dict[str, datetime] = {}
        if strategy is OptimizationStrategy.ADAPTIVE:
            with tenant_scope(PLATFORM_TENANT):
                async with db.tenant_transaction() as conn:
                    since = self.clock() - timedelta(hours=1)
                    rolled_back = await ChangesRepository(conn).rolled_back_since(since)
        planned = plan(strategy, found, self.knobs, rolled_back=rolled_back)
        round_id = uuid.uuid4()
        if not planned:
            return _result(round_id, strategy, found, [], Measurement(), Measurement(), "unchanged")
        before = await self._measure_phase("before")
        applied: list[PlannedChange] = []
        try:
            for change in planned:
                self.knobs[change.knob].set(change.new)
                applied.append(change)
            after = await self._measure_phase("after")
        except BaseException:
            _undo(self.knobs, applied)
            raise
        worse = after.score > before.score * (1 + self.tolerance) + 1e-9
        outcome = "rolled_back" if worse else "kept"
        if worse:
            _undo(self.knobs, applied)
        await self._store(round_id, strategy, applied, before, after, outcome, actor)
        _log.info("optimization round", strategy=strategy.value, outcome=outcome)
        return _result(round_id, strategy, found, applied, before, after, outcome)

    async def _measure_phase(self, phase: str) -> Measurement:
        if self._measure is not None:
            return await self._measure(phase)
        if phase == "after":
            started = time.monotonic()
            await asyncio.sleep(self.measure_seconds)
            self.sampler.sample()
            return measure_window(self._window, time.monotonic() - started, self.thresholds)
        return measure_window(self._window, self.measure_seconds, self.thresholds)

    async def _store(  # noqa: PLR0917 - a round's parts, once
        self,
        round_id: uuid.UUID,
        strategy: OptimizationStrategy,
        applied: list[PlannedChange],
        before: Measurement,
        after: Measurement,
        outcome: str,
        actor: str,
    ) -> None:
        db, trail = await self._db(), await self._trail(PLATFORM_TENANT)
        rows = [
            {
                "round_id": round_id,
                "knob": c.knob,
                "strategy": strategy.value,
                "old_value": c.old,
                "new_value": c.new,
                "reason": c.reason,
                "score_before": before.score,
                "score_after": after.score,
                "outcome": outcome,
                "actor": actor,
            }
            for c in applied
        ]
        with tenant_scope(PLATFORM_TENANT):
            async with db.tenant_transaction() as conn:
                await ChangesRepository(conn).insert(rows)
                for row in rows:
                    detail = {  # canonical JSON: numbers as text
                        k: v if isinstance(v, str) else f"{v:g}"
                        for k, v in row.items()
                        if k not in {"round_id", "actor"}
                    }
                    detail["round_id"] = str(round_id)
                    await trail.record(
                        PLATFORM_TENANT,
                        "performance.change",
                        f"knob:{row['knob']}",
                        actor=actor,
                        detail=detail,
                    )

    async def record_platform_change(
        self, action: str, resource: str, *, actor: str, detail: dict[str, str]
    ) -> None:
        """An entry of the platform's audit log, in a transaction of its own (the
        autoscaler's changes of the Deployment)."""
        db, trail = await self._db(), await self._trail(PLATFORM_TENANT)
        with tenant_scope(PLATFORM_TENANT):
            async with db.tenant_transaction():
                await trail.record(PLATFORM_TENANT, action, resource, actor=actor, detail=detail)

    async def _maybe_optimize(self) -> None:
        """``ENABLE_AI_OPTIMIZATION``: an adaptive round after a sample that found bottlenecks,
        at most one every 5 intervals."""
        now = time.monotonic()
        if not (self.auto_optimize and self.bottlenecks) or self._lock.locked():
            return
        if now - self._last_auto < 5 * self.interval:
            return
        self._last_auto = now
        await self.optimize_performance(OptimizationStrategy.ADAPTIVE, actor="auto")


def _undo(knobs: dict[str, Knob], applied: list[PlannedChange]) -> None:
    for change in reversed(applied):
        knobs[change.knob].write(change.old)


def _trend(series: MetricSeries) -> Trend:
    return trend_of([(p.time, p.value) for p in series.points])


def _info(found: Bottleneck) -> BottleneckInfo:
    return BottleneckInfo(
        kind=found.kind,
        subject=found.subject,
        severity=round(found.severity, 3),
        evidence=found.evidence,
    )


def _result(  # noqa: PLR0917 - a round's parts, once
    round_id: uuid.UUID,
    strategy: OptimizationStrategy,
    found: list[Bottleneck],
    applied: list[PlannedChange],
    before: Measurement,
    after: Measurement,
    outcome: str,
) -> OptimizationResult:
    return OptimizationResult(
        round_id=str(round_id),
        strategy=strategy,
        bottlenecks=[_info(b) for b in found],
        changes=[
            KnobChange(knob=c.knob, old_value=c.old, new_value=c.new, reason=c.reason)
            for c in applied
        ],
        before=before.values,
        after=after.values,
        score_before=before.score,
        score_after=after.score,
        outcome=outcome,
    )


class PerformanceManagerFactory:
    """The documents' factory."""

    @staticmethod
    def create_production_manager(
        database: Database | None = None,
        *,
        cache: CacheManager | None = None,
        connections: ConnectionManager | None = None,
        monitoring: MonitoringManager | None = None,
        ai: AIManager | None = None,
        audit_log: AuditLog | None = None,
    ) -> PerformanceManager:
        """The environment's settings; changes judged over 30 s of live signals."""
        return PerformanceManager(
            database,
            cache=cache,
            connections=connections,
            monitoring=monitoring,
            ai=ai,
            audit_log=audit_log,
            measure_seconds=30.0,
        )

    @staticmethod
    def create_development_manager(database: Database | None = None) -> PerformanceManager:
        """Changes judged over 5 s."""
        return PerformanceManager(database, measure_seconds=5.0)
