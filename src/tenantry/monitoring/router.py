"""HTTP route of the metric series: ``GET /monitoring/metrics``, for the caller's tenant only
(``monitoring:read``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from tenantry.actions import MONITORING_READ
from tenantry.errors import InvalidInput
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.monitoring.manager import MonitoringManager
from tenantry.monitoring.schemas import Aggregation, MetricSeries
from tenantry.principal import Principal

__all__ = ["router"]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["monitoring"])
Reader = Annotated[Principal, require(MONITORING_READ)]
Monitoring = Annotated[MonitoringManager, Depends(provided("monitoring"))]


class MetricsQuery(BaseModel):
    """``GET /monitoring/metrics``'s query."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    start: datetime
    end: datetime
    step: int = Field(default=60, ge=10, le=86_400)
    aggregation: Aggregation = Aggregation.AVG
    labels: str | None = Field(
        default=None,
        max_length=4000,
        description='Labels every series read must have, as a JSON object: {"route": "/x"}',
    )


@router.get("/monitoring/metrics")
async def query_metrics(
    query: Annotated[MetricsQuery, Query()], caller: Reader, monitoring: Monitoring
) -> MetricSeries:
    """The caller's tenant's series ``name``, per ``step`` seconds, combined by
    ``aggregation`` over every series with ``labels``."""
    return await monitoring.query(
        caller.tenant_id,
        query.name,
        start=query.start,
        end=query.end,
        step=query.step,
        aggregation=query.aggregation,
        labels=_labels(query.labels),
    )


def _labels(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput('labels must be a JSON object of strings, e.g. {"route": "/x"}')
    return value
