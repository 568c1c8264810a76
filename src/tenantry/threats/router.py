"""HTTP route of the threat analysis: ``GET /security/threats`` for the caller's tenant."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tenantry.http import Route, provided, require
from tenantry.principal import Principal
from tenantry.threats.manager import MAX_WINDOW, ThreatAnalyzer, ThreatReport

__all__ = ["router"]

router = APIRouter(tags=["security"], route_class=Route)

_MAX_MINUTES = int(MAX_WINDOW.total_seconds() // 60)


#: The app's analyzer (``state.tenantry.threats``, made in the lifespan).
AnalyzerDep = Annotated[ThreatAnalyzer, Depends(provided("threats"))]


@router.get("/security/threats", response_model=ThreatReport)
async def get_threats(
    principal: Annotated[Principal, require("security:read")],
    analyzer: AnalyzerDep,
    window_minutes: Annotated[int, Query(ge=1, le=_MAX_MINUTES)] = 60,
) -> Response:
    """The caller's tenant: threat level overall, per user and IP, with signals and bursts."""
    report = await analyzer.analyze(principal.tenant_id, timedelta(minutes=window_minutes))
    # Serialized once, straight from the report (FastAPI would validate it again first).
    return Response(report.model_dump_json(), media_type="application/json")
