"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text

from tenantry.actions import METRICS_READ
from tenantry.api.multiprocess import render
from tenantry.api.state import StateDep
from tenantry.db.migrate import current_revision, head_revision, schema_position
from tenantry.errors import TenantryError
from tenantry.http import Route, public, require_platform
from tenantry.principal import Principal

__all__ = ["router"]

router = APIRouter(tags=["health"], route_class=Route)
#: Probes (load balancers, Kubernetes) call these without credentials: they say whether the
#: process is up and ready, and nothing about any tenant.
_PROBE = public("liveness and readiness for probes")


@router.get("/health/live", summary="The process is up", dependencies=[_PROBE])
async def live() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(BaseModel):
    """Whether the service can serve: each check `ok`, or what is wrong."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


_READY_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {"model": Readiness, "description": "Not ready: a check is not `ok`"}
}


@router.get(
    "/health",
    summary="The documents' health check: the same answer as /health/ready",
    dependencies=[_PROBE],
    response_model=Readiness,
    responses=_READY_RESPONSES,
)
@router.get(
    "/health/ready",
    summary="The database answers and its schema is at head (or ahead: a newer release's)",
    dependencies=[_PROBE],
    response_model=Readiness,
    responses=_READY_RESPONSES,
)
async def ready(state: StateDep) -> JSONResponse:
    checks: dict[str, str] = {}
    head = head_revision()
    try:
        async with state.database.transaction() as conn:
            await conn.execute(text("select 1"))
            checks["database"] = "ok"
            revision = await current_revision(conn)
        # ahead of this code (a newer release's expand-only migration, mid roll-out): ready
        if schema_position(revision) == "behind":
            checks["migrations"] = f"at {revision}, head is {head}"
        else:
            checks["migrations"] = "ok"
    except (TenantryError, OSError) as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values()) and "migrations" in checks
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus exposition (the service token: it names the most active tenants)",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(
    _: Annotated[Principal, require_platform(METRICS_READ)], state: StateDep
) -> Response:
    """Every worker's metrics added up when there are several (``api/multiprocess.py``)."""
    return Response(render(state.registry), media_type=CONTENT_TYPE_LATEST)
