"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from tenantry.api.state import StateDep
from tenantry.db.migrate import current_revision, head_revision
from tenantry.errors import TenantryError
from tenantry.http import public

__all__ = ["router"]

#: Probes (load balancers, Kubernetes) and Prometheus call these without credentials; they
#: expose process health and aggregate metrics, no tenant's data.
router = APIRouter(
    tags=["health"], dependencies=[public("liveness, readiness and metrics for probes")]
)


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="The database answers and its schema is at head")
async def ready(state: StateDep) -> JSONResponse:
    checks: dict[str, str] = {}
    head = head_revision()
    try:
        async with state.database.transaction() as conn:
            await conn.execute(text("select 1"))
            checks["database"] = "ok"
            revision = await current_revision(conn)
        checks["migrations"] = "ok" if revision == head else f"at {revision}, head is {head}"
    except (TenantryError, OSError) as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values()) and "migrations" in checks
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get("/metrics", summary="Prometheus exposition", response_class=Response)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
