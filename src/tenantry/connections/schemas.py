"""Output shapes of the connections domain: what ``GET /connections/health`` answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from tenantry.connections.backends import HealthState
from tenantry.connections.breaker import BreakerState

__all__ = [
    "BackendInfo",
    "BreakerInfo",
    "BulkheadInfo",
    "ConnectionsHealth",
    "GateInfo",
    "PoolInfo",
    "RetryBudgetInfo",
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class BreakerInfo(_Out):
    name: str
    state: BreakerState
    failure_rate: float
    slow_call_rate: float
    calls_in_window: int
    window_size: int
    minimum_calls: int
    opened_at: float | None
    retry_in: float
    half_open_probes: int
    times_opened: int
    rejected: int


class GateInfo(_Out):
    """The adaptive pool size and its use."""

    limit: int
    min_size: int
    max_size: int
    in_use: int
    waiting: int
    peak_in_use: int
    wait_ewma_ms: float
    grown: int
    shrunk: int
    timeouts: int


class BulkheadInfo(_Out):
    max_per_tenant: int
    tenants_active: int
    in_use: int
    waiting: int
    rejected: int
    #: calls that got a slot of their tenant's lane, since start
    admitted: int
    busiest: dict[str, int]


class PoolInfo(_Out):
    gate: GateInfo
    bulkhead: BulkheadInfo
    #: the driver's own figures (SQLAlchemy, redis-py); empty for HTTP
    driver: dict[str, int] = {}


class BackendInfo(_Out):
    name: str
    kind: Literal["postgres", "redis", "http"]
    role: str
    group: str | None = None
    health: HealthState
    last_error: str | None
    in_flight: int
    calls: int
    failures: int
    latency_ewma_ms: float
    breaker: BreakerInfo
    pool: PoolInfo


class RetryBudgetInfo(_Out):
    calls: int
    retries: int
    allowed: int
    refused: int


class ConnectionsHealth(_Out):
    """``ok``: all healthy and closed; ``degraded``: some not; ``down``: the primary is not."""

    status: Literal["ok", "degraded", "down"]
    backends: list[BackendInfo]
    retry_budget: RetryBudgetInfo
