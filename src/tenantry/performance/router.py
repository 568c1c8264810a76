"""HTTP routes of the performance manager: the process's, so the operator's (service token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tenantry.actions import PERFORMANCE_READ, PERFORMANCE_WRITE
from tenantry.http import Route, problems, provided, require_platform
from tenantry.performance.manager import PerformanceManager
from tenantry.performance.schemas import (
    CurrentPerformance,
    OptimizationResult,
    OptimizeRequest,
    PerformanceAnalytics,
)
from tenantry.principal import Principal

__all__ = ["PerformanceDep", "router"]

router = APIRouter(route_class=Route, tags=["performance"])

PerformanceDep = Annotated[PerformanceManager, Depends(provided("performance"))]


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
