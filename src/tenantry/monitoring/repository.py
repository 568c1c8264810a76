"""SQL of the metric series table, in a tenant transaction (row-level security scopes it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import text

from tenantry.db.repository import TenantRepository
from tenantry.monitoring.aggregate import Bucket, labels_key

__all__ = ["MetricsRepository", "PointRow"]

#: A stored bucket as read: (start, count, sum, min, max, sketch).
PointRow = tuple[datetime, int, float, float, float, bytes]

_INSERT = text(
    "INSERT INTO tenantry.metric_points (tenant_id, name, labels_key, resolution, bucket_start, "
    "writer, labels, count, sum, min, max, sketch) SELECT :tenant, u.name, u.key, :resolution, "
    "to_timestamp(u.start), :writer, u.labels::jsonb, u.count, u.sum, u.min, u.max, u.sketch "
    "FROM unnest(CAST(:names AS text[]), CAST(:keys AS text[]), CAST(:starts AS float8[]), "
    "CAST(:labels AS text[]), CAST(:counts AS int8[]), CAST(:sums AS float8[]), "
    "CAST(:mins AS float8[]), CAST(:maxes AS float8[]), CAST(:sketches AS bytea[])) "
    "AS u(name, key, start, labels, count, sum, min, max, sketch)"
)


class MetricsRepository(TenantRepository):
    async def insert(self, buckets: Sequence[Bucket], *, resolution: int, writer: str) -> int:
        """Write this tenant's ``buckets`` (one statement); how many."""
        if not buckets:
            return 0
        await self.conn.execute(
            _INSERT,
            {
                "tenant": self.tenant_id,
                "resolution": resolution,
                "writer": writer,
                "names": [b.name for b in buckets],
                "keys": [labels_key(b.labels) for b in buckets],
                "starts": [b.start for b in buckets],
                "labels": [json.dumps(dict(b.labels), sort_keys=True) for b in buckets],
                "counts": [b.count for b in buckets],
                "sums": [b.total for b in buckets],
                "mins": [b.minimum for b in buckets],
                "maxes": [b.maximum for b in buckets],
                "sketches": [b.sketch.to_bytes() for b in buckets],
            },
        )
        return len(buckets)

    async def read(
        self,
        name: str,
        start: datetime,
        end: datetime,
        *,
        resolution: int,
        labels: dict[str, str],
        limit: int,
    ) -> list[PointRow]:
        """The rows of ``name`` in [start, end) whose labels include ``labels``, of every
        resolution up to ``resolution`` (downsampling deletes what it rolls up, so they never
        overlap), oldest first (at most ``limit``)."""
        result = await self.conn.execute(
            text(
                "SELECT bucket_start, count, sum, min, max, sketch FROM tenantry.metric_points "
                "WHERE name = :name AND resolution <= :resolution "
                "AND bucket_start >= :start AND bucket_start < :end "
                "AND labels @> CAST(:labels AS jsonb) "
                "ORDER BY bucket_start LIMIT :limit"
            ),
            {
                "name": name,
                "resolution": resolution,
                "start": start.astimezone(UTC),
                "end": end.astimezone(UTC),
                "labels": json.dumps(labels),
                "limit": limit,
            },
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in result.all()]
