"""HTTP routes of the performance manager: the process's, so the operator's (service token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from tenantry.actions import PERFORMANCE_READ, PERFORMANCE_WRITE
from tenantry.http import Route, problems, provided, require_platform
from tenantry.performance.autoscaler import AutoScaler
from tenantry.performance.manager import PerformanceManager
from tenantry.performance.planning import (
    DEFAULT_HISTORY_HOURS,
    MAX_HISTORY_HOURS,
    MAX_HORIZON_HOURS,
    LoadForecast,
    ScalingPlan,
)
from tenantry.performance.scaling import MAX_REPLICAS, ScalingSpec
from tenantry.performance.schemas import (
    AutoScalerStatus,
    CurrentPerformance,
    OptimizationResult,
    OptimizeRequest,
    PerformanceAnalytics,
)
from tenantry.principal import Principal

__all__ = ["PerformanceDep", "router"]

router = APIRouter(route_class=Route, tags=["performance"])

PerformanceDep = Annotated[PerformanceManager, Depends(provided("performance"))]
AutoScalerDep = Annotated[AutoScaler | None, Depends(provided("autoscaler"))]


@router.get(
    "/performance/current",
    summary="The process's signals now, its bottlenecks with their evidence (service token)",
)
async def current(
    _: Annotated[Principal, require_platform(PERFORMANCE_READ)], performance: PerformanceDep
) -> CurrentPerformance:
    return await performance.get_current_performance()


@router.post(
    "/performance/optimize",
    summary="One optimization round: bounded knob changes, measured, kept or rolled back",
    responses=problems(409),
)
async def optimize(
    body: OptimizeRequest,
    principal: Annotated[Principal, require_platform(PERFORMANCE_WRITE)],
    performance: PerformanceDep,
) -> OptimizationResult:
    return await performance.optimize_performance(body.strategy, actor=principal.principal_id)


@router.get(
    "/performance/analytics",
    summary="Trends over the last hours: process-wide, or one tenant's (service token)",
)
async def analytics(
    _: Annotated[Principal, require_platform(PERFORMANCE_READ)],
    performance: PerformanceDep,
    hours: Annotated[int, Query(ge=1, le=168)] = 24,
    tenant: Annotated[
        str | None, Query(description="a tenant's requests, cache and pool use instead")
    ] = None,
) -> PerformanceAnalytics:
    return await performance.get_analytics(hours, tenant_id=tenant)


@router.get(
    "/performance/forecast",
    summary="The load forecast, requests per second per hour: the process's or a tenant's",
)
async def forecast(
    _: Annotated[Principal, require_platform(PERFORMANCE_READ)],
    performance: PerformanceDep,
    hours: Annotated[int, Query(ge=1, le=MAX_HISTORY_HOURS, description="history read")] = (
        DEFAULT_HISTORY_HOURS
    ),
    horizon: Annotated[int, Query(ge=1, le=MAX_HORIZON_HOURS, description="hours ahead")] = 24,
    tenant: Annotated[str | None, Query(description="a tenant's requests instead")] = None,
) -> LoadForecast:
    return await performance.forecast_load(tenant_id=tenant, hours=hours, horizon=horizon)


class ScalingQuery(BaseModel):
    """What the advice needs: the replicas running, the load one pod should serve, the bounds,
    the pods' start-up time and the scale-down window (the HPA's settings)."""

    model_config = ConfigDict(extra="forbid")

    current_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    target_per_pod: float = Field(gt=0, le=1e9, description="requests per second per pod")
    min_replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    max_replicas: int = Field(default=10, ge=1, le=MAX_REPLICAS)
    lead_seconds: float = Field(default=180, ge=0, le=3600, description="the pods' start-up")
    scale_down_window_seconds: int = Field(default=300, ge=0, le=3600)
    deployment: str = Field(default="tenantry", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    tenant: str | None = Field(default=None, description="a tenant served by pods of its own")


@router.get(
    "/performance/scaling",
    summary="Replicas for the forecast load ahead of it (the HPA's rule), and the HPA fragment",
    responses=problems(409),
)
async def scaling(
    _: Annotated[Principal, require_platform(PERFORMANCE_READ)],
    performance: PerformanceDep,
    query: Annotated[ScalingQuery, Query()],
) -> ScalingPlan:
    spec = ScalingSpec(
        query.min_replicas,
        query.max_replicas,
        query.target_per_pod,
        scale_down_window_s=query.scale_down_window_seconds,
    )
    return await performance.scaling_advice(
        spec,
        current_replicas=query.current_replicas,
        lead_seconds=query.lead_seconds,
        deployment=query.deployment,
        tenant_id=query.tenant,
    )


@router.get(
    "/performance/autoscaler",
    summary="The autoscaler (AUTO_SCALING_ENABLED): its Deployment, last round, failures",
)
async def autoscaler(
    _: Annotated[Principal, require_platform(PERFORMANCE_READ)], scaler: AutoScalerDep
) -> AutoScalerStatus:
    return scaler.status() if scaler is not None else AutoScalerStatus(enabled=False)
