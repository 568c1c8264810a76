"""The metric series table (created by migration 0013).

One row per series, time bucket, resolution and writer (a process): ``count``, ``sum``, ``min``,
``max`` and a quantile sketch of the values the writer recorded in the bucket. Several processes
record the same series, each under its own ``writer``, so no write conflicts with another's;
a query merges the writers' rows. ``resolution`` is the bucket's width in seconds (10 as recorded;
60 and 3,600 once downsampled).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import tenant_table

__all__ = ["metric_points"]

metric_points = tenant_table(
    "metric_points",
    Column("name", Text, primary_key=True),
    Column("labels_key", Text, primary_key=True),
    Column("resolution", Integer, primary_key=True),
    Column("bucket_start", DateTime(timezone=True), primary_key=True),
    Column("writer", Text, primary_key=True),
    Column("labels", JSONB, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("sketch", LargeBinary, nullable=False),
    CheckConstraint("resolution in (10, 60, 3600)", name="resolution"),
    CheckConstraint("count > 0", name="count"),
    Index("ix_metric_points_name_time", "tenant_id", "name", "resolution", "bucket_start"),
    info={"sample_row": {"resolution": 10, "count": 1, "labels": {}}},
)
