"""HTTP routes of the connections domain: the admin view of every backend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tenantry.access.actions import CONNECTIONS_ADMIN
from tenantry.access.deps import require_platform
from tenantry.access.principal import Principal
from tenantry.connections.manager import ConnectionManager
from tenantry.connections.schemas import ConnectionsHealth

__all__ = ["ConnectionsDep", "router"]

router = APIRouter()


def _connections(request: Request) -> ConnectionManager:
    manager: ConnectionManager = request.app.state.tenantry.connections
    return manager


ConnectionsDep = Annotated[ConnectionManager, Depends(_connections)]


@router.get(
    "/connections/health",
    tags=["connections"],
    summary="Every backend's health, breaker state and pool use (service token)",
)
async def connections_health(
    _: Annotated[Principal, require_platform(CONNECTIONS_ADMIN)], connections: ConnectionsDep
) -> ConnectionsHealth:
    return connections.health()
