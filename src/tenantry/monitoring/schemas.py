"""Monitoring's value types: how a query aggregates, and what it answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = ["Aggregation", "MetricPoint", "MetricSeries"]


class Aggregation(StrEnum):
    """How the values of a step (every series matching the query, every writer) combine."""

    AVG = "avg"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"

    @property
    def quantile(self) -> float | None:
        return int(self.value[1:]) / 100 if self.value.startswith("p") else None


class MetricPoint(BaseModel):
    """One step of a query: its start and the aggregated value (steps with no value are left
    out)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    value: float


class MetricSeries(BaseModel):
    """A query's answer."""

    model_config = ConfigDict(frozen=True)

    name: str
    aggregation: Aggregation
    step: int
    labels: dict[str, str]
    points: list[MetricPoint]
