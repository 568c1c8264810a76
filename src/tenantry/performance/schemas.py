"""What the performance manager answers: now, over hours, and for an optimization round."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tenantry.performance.optimizer import OptimizationStrategy
from tenantry.performance.trends import Trend

__all__ = [
    "AutoScalerStatus",
    "BottleneckInfo",
    "CurrentPerformance",
    "KnobChange",
    "OptimizationResult",
    "OptimizeRequest",
    "PerformanceAnalytics",
    "SlowStatementsInfo",
]


class BottleneckInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    subject: str
    severity: float
    evidence: str


class SlowStatementsInfo(BaseModel):
    """``pg_stat_statements``' slowest statements by mean time, or why they are unavailable."""

    available: bool
    reason: str = ""
    statements: list[dict[str, Any]] = []


class CurrentPerformance(BaseModel):
    """The process's signals now (the last sample of each), the bottlenecks found, each
    anomaly-scored signal's robust z-score, and the slow statements."""

    at: datetime
    signals: dict[str, float]
    bottlenecks: list[BottleneckInfo]
    anomaly_scores: dict[str, float]
    slow_statements: SlowStatementsInfo
    knobs: dict[str, float]


class PerformanceAnalytics(BaseModel):
    """Trends over ``hours``: process-wide, or one tenant's request signals when ``tenant_id``."""

    hours: int
    tenant_id: str | None
    start: datetime
    end: datetime
    step: int
    trends: dict[str, Trend]


class KnobChange(BaseModel):
    knob: str
    old_value: float
    new_value: float
    reason: str


class OptimizationResult(BaseModel):
    """An optimization round: what was found, changed, measured, and whether it was kept."""

    round_id: str
    strategy: OptimizationStrategy
    bottlenecks: list[BottleneckInfo]
    changes: list[KnobChange]
    before: dict[str, float]
    after: dict[str, float]
    score_before: float
    score_after: float
    outcome: str = Field(description="kept, rolled_back, or unchanged (nothing to change)")


class OptimizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: OptimizationStrategy = OptimizationStrategy.BALANCED


class AutoScalerStatus(BaseModel):
    """The autoscaler (``AUTO_SCALING_ENABLED``): off, or its Deployment, its last round and
    its failed rounds by kind."""

    model_config = ConfigDict(frozen=True)

    enabled: bool
    applies: bool | None = Field(
        default=None,
        description="true: patches the Deployment; false: only publishes the advice (an HPA's)",
    )
    namespace: str | None = None
    deployment: str | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_per_pod: float | None = None
    stabilization_seconds: float | None = None
    next_round_seconds: float | None = None
    last_action: str | None = Field(default=None, description="scaled, unchanged, held or advised")
    last_reason: str | None = None
    replicas: int | None = None
    advised: int | None = None
    errors: dict[str, int] = {}
