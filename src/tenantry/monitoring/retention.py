"""Downsampling and retention of the metric series, tenant by tenant, in the background.

A visit of a tenant (a :class:`~tenantry.tenants.rounds.ActiveTenantRounds` round, every minute:
the tenants whose buckets the collector wrote since the last round, and every active tenant
every ``sweep_every`` rounds, an hour):

1. rolls its 10-second buckets older than ``RAW_KEEP`` into 1-minute buckets (every writer's rows
   of a minute merged into one row, writer ``rollup``: counts and sums added, sketches merged),
   and deletes what it rolled, in one transaction;
2. rolls its 1-minute buckets older than ``MINUTE_KEEP`` into 1-hour buckets the same way;
3. deletes its buckets older than its tier's retention (``RETENTION``).

A bucket is rolled only once its whole coarser bucket is older than the keep time, so a rolled
minute or hour is complete and is written once; finer rows are deleted as they are rolled, so
the resolutions never overlap in time and a query may read them all. A visit rolls at most
``batch`` rows a step and comes back next round for the rest.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.monitoring.sketch import Sketch
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.rounds import ActiveTenantRounds
from tenantry.tenants.schemas import TenantTier

__all__ = ["MINUTE_KEEP", "RAW_KEEP", "RETENTION", "Downsampler", "RetentionStep"]

#: How long buckets stay at 10 s, and at 1 min, before they are rolled up.
RAW_KEEP: Final = timedelta(hours=2)
MINUTE_KEEP: Final = timedelta(days=2)
#: How long a tier's hourly buckets are kept.
RETENTION: Final = {
    TenantTier.FREE: timedelta(days=7),
    TenantTier.STANDARD: timedelta(days=30),
    TenantTier.PREMIUM: timedelta(days=90),
    TenantTier.ENTERPRISE: timedelta(days=395),
}
_ROLLUP = "rollup"


@dataclass(frozen=True, slots=True)
class RetentionStep:
    """One visit: rows rolled to minutes, to hours, rows expired; whether more are left."""

    tenant_id: str
    to_minutes: int = 0
    to_hours: int = 0
    expired: int = 0
    more: bool = False


class Downsampler(ActiveTenantRounds[RetentionStep]):
    """Rolls up and expires tenants' metric buckets; see the module docstring."""

    work = "metrics downsampling"

    def __init__(
        self,
        database: Database | None = None,
        *,
        interval: float = 60.0,
        sweep_every: int = 60,
        batch: int = 20_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if sweep_every < 1 or batch < 1:
            raise ValueError("sweep_every and batch must be >= 1")
        self._database = database
        super().__init__(interval=interval)
        self.sweep_every, self.batch, self._clock = sweep_every, batch, clock
        #: How long each tier's hourly buckets are kept (the app sets its tier policies').
        self.retention: Mapping[TenantTier, timedelta] = dict(RETENTION)

    async def visit(self, tenant_id: str) -> RetentionStep:
        return await self.downsample(tenant_id)

    def again(self, result: RetentionStep) -> bool:
        return result.more

    async def downsample(self, tenant_id: str) -> RetentionStep:
        """One visit of ``tenant_id`` (see the module docstring)."""
        validate_tenant_id(tenant_id)
        db, now = await self._db(), self._clock()
        tier = (await TenantRegistry(db).get(tenant_id)).tier
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                minutes, more_m = await self._roll(conn, tenant_id, 10, 60, now - RAW_KEEP)
            async with db.tenant_transaction() as conn:
                hours, more_h = await self._roll(conn, tenant_id, 60, 3600, now - MINUTE_KEEP)
            async with db.tenant_transaction() as conn:
                result = await conn.execute(
                    text("DELETE FROM tenantry.metric_points WHERE bucket_start < :before"),
                    {"before": now - self.retention[TenantTier(tier)]},
                )
        expired = int(getattr(result, "rowcount", 0) or 0)
        return RetentionStep(tenant_id, minutes, hours, expired, more_m or more_h)

    async def _roll(
        self, conn: AsyncConnection, tenant_id: str, finer: int, coarser: int, keep: datetime
    ) -> tuple[int, bool]:
        """Roll ``finer`` buckets of whole ``coarser`` buckets older than ``keep``; (rows
        rolled, whether more are left). One process at a time per tenant (worker processes,
        nodes): two reading the same rows would both write their roll-up, counting them twice;
        the one that finds the tenant's lock taken leaves the roll to the holder."""
        locked = await conn.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtext('tenantry.downsample:' || :t))"),
            {"t": tenant_id},
        )
        if not locked:
            return 0, False
        cutoff = datetime.fromtimestamp(keep.timestamp() // coarser * coarser, UTC)
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT name, labels_key, labels, bucket_start, writer, count, sum, "
                        "min, max, sketch "
                        "FROM tenantry.metric_points WHERE resolution = :finer "
                        "AND bucket_start < :cutoff "
                        "ORDER BY bucket_start, name, labels_key LIMIT :limit"
                    ),
                    {"finer": finer, "cutoff": cutoff, "limit": self.batch + 1},
                )
            )
            .mappings()
            .all()
        )
        more = len(rows) > self.batch
        rows = rows[: self.batch]
        if more:  # roll whole coarser buckets only: leave the last one for the next visit
            last = int(rows[-1]["bucket_start"].timestamp()) // coarser
            rows = [r for r in rows if int(r["bucket_start"].timestamp()) // coarser < last]
        if not rows:
            return 0, more
        rolled: dict[tuple[str, str, int], _Rollup] = {}
        for row in rows:
            slot = int(row["bucket_start"].timestamp()) // coarser
            key = (row["name"], row["labels_key"], slot)
            found = rolled.get(key)
            if found is None:
                found = rolled[key] = _Rollup(row["labels"])
            found.add(
                row["count"], row["sum"], row["min"], row["max"], Sketch.from_bytes(row["sketch"])
            )
        writer = f"{_ROLLUP}-{uuid.uuid4().hex[:8]}"  # never the same row as another run's
        await conn.execute(
            text(
                "INSERT INTO tenantry.metric_points (tenant_id, name, labels_key, resolution, "
                "bucket_start, writer, labels, count, sum, min, max, sketch) VALUES "
                "(current_setting('tenantry.tenant_id'), :name, :key, :coarser, :start, "
                ":writer, CAST(:labels AS jsonb), :count, :sum, :min, :max, :sketch)"
            ),
            [
                {
                    "name": name,
                    "key": key,
                    "coarser": coarser,
                    "start": datetime.fromtimestamp(slot * coarser, UTC),
                    "writer": writer,
                    "labels": json.dumps(value.labels, sort_keys=True),
                    "count": value.count,
                    "sum": value.total,
                    "min": value.minimum,
                    "max": value.maximum,
                    "sketch": value.sketch.to_bytes(),
                }
                for (name, key, slot), value in rolled.items()
            ],
        )
        # exactly the rows rolled: a late flush of an old slot, committed meanwhile, stays
        await conn.execute(
            text(
                "DELETE FROM tenantry.metric_points AS p USING unnest(CAST(:names AS text[]), "
                "CAST(:keys AS text[]), CAST(:starts AS timestamptz[]), CAST(:writers AS text[])) "
                "AS u(name, key, start, writer) WHERE p.resolution = :finer AND p.name = u.name "
                "AND p.labels_key = u.key AND p.bucket_start = u.start AND p.writer = u.writer"
            ),
            {
                "finer": finer,
                "names": [r["name"] for r in rows],
                "keys": [r["labels_key"] for r in rows],
                "starts": [r["bucket_start"] for r in rows],
                "writers": [r["writer"] for r in rows],
            },
        )
        return len(rows), more


@dataclass(slots=True)
class _Rollup:
    """The buckets of one series merged into one coarser bucket."""

    labels: dict[str, str]
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    sketch: Sketch = field(default_factory=Sketch)

    def add(self, count: int, total: float, low: float, high: float, sketch: Sketch) -> None:
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, low)
        self.maximum = max(self.maximum, high)
        self.sketch.merge(sketch)
