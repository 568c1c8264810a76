"""MonitoringManager: metrics recorded in process, flushed to the tenant's series, queried back.

The documents' API: ``MonitoringManager()``, ``start_collection()``, ``record_metric(metric_name,
value, tags)``, ``record_business_metric(name, value, tenant_id)``,
``record_performance_metric(name, value, labels)``, and ``MetricsCollector`` (the background
flush). A value belongs to ``tenant_id`` when given, else to the tenant of the caller's context
(:func:`tenantry.context.tenant_scope`), else to the platform (the service's own metrics).

Recording is an append (:mod:`tenantry.monitoring.aggregate`): no I/O, never blocking. Every
``resolution`` seconds (10) the collector drains the closed slots and writes each tenant's
buckets in one statement of its own tenant transaction; a tenant whose write fails loses that
flush's buckets (logged and counted), not the others'. What a flush wrote is added to the
Prometheus exposition when the manager has one (:mod:`tenantry.monitoring.exposition`). A
query reads the tenant's rows back and aggregates them per step.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from tenantry.context import PLATFORM_TENANT, current_tenant, tenant_scope, validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, TenantryError
from tenantry.logging import get_logger
from tenantry.monitoring.aggregate import Aggregator, Bucket, check_name, labels_of
from tenantry.monitoring.exposition import TenantExposition
from tenantry.monitoring.repository import MetricsRepository
from tenantry.monitoring.retention import Downsampler
from tenantry.monitoring.schemas import Aggregation, MetricPoint, MetricSeries
from tenantry.monitoring.sketch import Sketch
from tenantry.tracing import traced

__all__ = ["MAX_POINTS", "MetricsCollector", "MonitoringManager"]

#: Steps one query may answer, and rows it may read.
MAX_POINTS: Final = 10_000
_MAX_ROWS: Final = 200_000
_log = get_logger("tenantry.monitoring")


class MonitoringManager(UsesDatabase):
    """Records, flushes and queries metric series; see the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        resolution: int = 10,
        max_series: int = 1000,
        aggregator: Aggregator | None = None,
        exposition: TenantExposition | None = None,
    ) -> None:
        self._database = database
        #: Where each flush adds what it wrote, for ``/metrics`` (the app gives one).
        self.exposition = exposition
        #: Where values wait for the next flush (give one to set its clock, in tests).
        self.aggregator = aggregator or Aggregator(resolution=resolution, max_series=max_series)
        self.resolution = self.aggregator.resolution
        #: This process's name in the rows it writes (several processes write one series).
        self.writer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tenants: set[str] = {PLATFORM_TENANT}
        self._collector: MetricsCollector | None = None
        #: Rolls the written buckets up into minutes and hours, and expires them per tier.
        self.downsampler = Downsampler(database)
        #: Buckets lost because their tenant's write failed, per tenant.
        self.lost: dict[str, int] = {}

    # -- recording --------------------------------------------------------------------------------

    def record(
        self,
        name: str,
        value: float,
        tags: Mapping[str, str] | None = None,
        tenant_id: str | None = None,
    ) -> bool:
        """Record ``value`` now (synchronous: an append); False if the tenant's series cap
        dropped it. Bad input raises :class:`InvalidInput`."""
        tenant = tenant_id or current_tenant() or PLATFORM_TENANT
        if tenant not in self._tenants:
            validate_tenant_id(tenant)
            self._tenants.add(tenant)
        if value.__class__ is not float:
            value = _number(value)
        if not math.isfinite(value):
            raise InvalidInput("a metric value must be a finite number")
        return self.aggregator.record(tenant, name, value, labels_of(tags))

    async def record_metric(
        self,
        metric_name: str,
        value: float,
        tags: Mapping[str, str] | None = None,
        *,
        tenant_id: str | None = None,
    ) -> bool:
        """The documents' call: :meth:`record` from a coroutine."""
        return self.record(metric_name, value, tags, tenant_id)

    async def record_business_metric(
        self, name: str, value: float, tenant_id: str, tags: Mapping[str, str] | None = None
    ) -> bool:
        """A metric of ``tenant_id``'s business (active users, releases, streams...)."""
        return self.record(name, value, tags, tenant_id)

    async def record_performance_metric(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        *,
        tenant_id: str | None = None,
    ) -> bool:
        """A latency or throughput (seconds for times: 0.045 is 45 ms)."""
        return self.record(name, value, labels, tenant_id)

    # -- flushing ---------------------------------------------------------------------------------

    @traced("monitoring.flush")
    async def flush(self, *, everything: bool = False) -> int:
        """Write the closed slots' buckets (and the open slot's with ``everything``); how many
        were written."""
        by_tenant: dict[str, list[Bucket]] = defaultdict(list)
        for bucket in self.aggregator.drain(everything=everything):
            by_tenant[bucket.tenant_id].append(bucket)
        db, written = await self._db(), 0
        for tenant_id, buckets in by_tenant.items():
            try:
                with tenant_scope(tenant_id):
                    async with db.tenant_transaction() as conn:
                        written += await MetricsRepository(conn).insert(
                            buckets, resolution=self.resolution, writer=self.writer
                        )
            except TenantryError as exc:  # one tenant's failure (a deleted tenant) is its own
                self.lost[tenant_id] = self.lost.get(tenant_id, 0) + len(buckets)
                _log.warning("metrics flush failed", tenant=tenant_id, error=exc.detail)
            else:
                self.downsampler.notice(tenant_id)
                if self.exposition is not None:
                    self.exposition.add(buckets)
        return written

    async def start_collection(self, interval: float | None = None) -> MetricsCollector:
        """Flush in the background every ``interval`` seconds (default: the resolution)."""
        if self._collector is None:
            self._collector = MetricsCollector(self, interval or float(self.resolution))
            self._collector.start()
            await self.downsampler.start()
        return self._collector

    async def close(self) -> None:
        """Stop collecting and write what was recorded, the open slot included."""
        if self._collector is not None:
            await self._collector.close()
            self._collector = None
        await self.downsampler.close()
        await self.flush(everything=True)

    # -- reading ----------------------------------------------------------------------------------

    @traced("monitoring.query")
    async def query(
        self,
        tenant_id: str,
        name: str,
        *,
        start: datetime,
        end: datetime,
        step: int = 60,
        aggregation: Aggregation | str = Aggregation.AVG,
        labels: Mapping[str, str] | None = None,
    ) -> MetricSeries:
        """``name``'s values in [start, end) per ``step`` seconds, over every series whose
        labels include ``labels``, combined by ``aggregation``. Buckets of every resolution up
        to ``step`` are read (10 s, and the 1-minute and 1-hour ones downsampling made); one
        coarser than a step that does not divide it counts in the step of its start."""
        validate_tenant_id(tenant_id)
        check_name(name)
        agg = _aggregation(aggregation)
        wanted = dict(labels_of(labels))
        if any(not isinstance(v, str) for v in wanted.values()):
            raise InvalidInput("labels must map label names to strings")
        start, end = _aware(start, "start"), _aware(end, "end")
        if not isinstance(step, int) or step < self.resolution or step % self.resolution:
            raise InvalidInput(f"step must be a multiple of {self.resolution} seconds")
        if end <= start:
            raise InvalidInput("end must be after start")
        if (end - start).total_seconds() / step > MAX_POINTS:
            raise InvalidInput(f"at most {MAX_POINTS} steps a query: widen the step")
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await MetricsRepository(conn).read(
                    name, start, end, resolution=step, labels=wanted, limit=_MAX_ROWS + 1
                )
        if len(rows) > _MAX_ROWS:
            raise InvalidInput("the query reads too many rows: narrow the range or the labels")
        steps: dict[int, list[tuple[int, float, float, float, bytes]]] = defaultdict(list)
        for at, count, total, low, high, sketch in rows:
            steps[int((at - start).total_seconds() // step)].append(
                (count, total, low, high, sketch)
            )
        points = [
            MetricPoint(time=start + timedelta(seconds=n * step), value=value)
            for n in sorted(steps)
            if (value := _combine(agg, steps[n], step)) is not None
        ]
        return MetricSeries(name=name, aggregation=agg, step=step, labels=wanted, points=points)


def _combine(
    agg: Aggregation, rows: list[tuple[int, float, float, float, bytes]], step: int
) -> float | None:
    count = sum(r[0] for r in rows)
    if agg is Aggregation.COUNT:
        return float(count)
    if agg is Aggregation.SUM:
        return math.fsum(r[1] for r in rows)
    if agg is Aggregation.AVG:
        return math.fsum(r[1] for r in rows) / count
    if agg is Aggregation.MIN:
        return min(r[2] for r in rows)
    if agg is Aggregation.MAX:
        return max(r[3] for r in rows)
    merged = Sketch()
    for row in rows:
        merged.merge(Sketch.from_bytes(row[4]))
    quantile = agg.quantile
    return None if quantile is None else merged.quantile(quantile)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput("a metric value must be a number")
    return float(value)


def _aggregation(value: Aggregation | str) -> Aggregation:
    try:
        return Aggregation(value)
    except ValueError:
        names = ", ".join(a.value for a in Aggregation)
        raise InvalidInput(f"aggregation must be one of {names}") from None


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MetricsCollector:
    """The background flush of a :class:`MonitoringManager`, every ``interval`` seconds."""

    def __init__(self, manager: MonitoringManager, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.manager, self.interval = manager, interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()  # a context of its own: no caller's tenant follows
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.manager.flush()
            except Exception:  # noqa: BLE001 - the collection outlives one flush's failure
                _log.exception("metrics flush failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
