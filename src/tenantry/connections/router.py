"""HTTP routes of the connections domain: the admin view of every backend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tenantry.actions import CONNECTIONS_ADMIN
from tenantry.connections.manager import ConnectionManager
from tenantry.connections.schemas import ConnectionsHealth
from tenantry.http import Route, provided, require_platform
from tenantry.principal import Principal

__all__ = ["ConnectionsDep", "router"]

router = APIRouter(route_class=Route)


ConnectionsDep = Annotated[ConnectionManager, Depends(provided("connections"))]


@router.get(
    "/connections/health",
    tags=["connections"],
    summary="Every backend's health, breaker state and pool use (service token)",
)
async def connections_health(
    _: Annotated[Principal, require_platform(CONNECTIONS_ADMIN)], connections: ConnectionsDep
) -> ConnectionsHealth:
    return connections.health()
