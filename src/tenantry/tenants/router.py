"""HTTP routes of the tenants domain: the registry (platform only) and a tenant's settings.

The registry routes take the service token alone (``tenants:admin``); the settings routes act for
the caller's tenant and need ``settings:read`` or ``settings:write``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from tenantry.actions import SETTINGS_READ, SETTINGS_WRITE
from tenantry.http import (
    BACKEND,
    DatabaseDep,
    Route,
    problems,
    provided,
    require,
    require_platform,
)
from tenantry.principal import Principal
from tenantry.tenants.manager import TenantRegistry, TenantSettings
from tenantry.tenants.schemas import (
    SETTING_KEY_PATTERN,
    Setting,
    SettingWrite,
    Tenant,
    TenantCreate,
    TenantId,
    TenantStatus,
    TenantStatusUpdate,
)

__all__ = ["router"]

#: Every route reads the registry or the tenant's settings in the database.
router = APIRouter(route_class=Route, responses=problems(*BACKEND))
SettingKey = Annotated[str, Path(pattern=SETTING_KEY_PATTERN)]
Platform = Annotated[Principal, require_platform()]
ReadSettings = Annotated[Principal, require(SETTINGS_READ)]
WriteSettings = Annotated[Principal, require(SETTINGS_WRITE)]
#: The app's registry: a status change drops what the app cached about the tenant being active.
Registry = Annotated[TenantRegistry, Depends(provided("tenants"))]


@router.post("/tenants", status_code=status.HTTP_201_CREATED, tags=["tenants"])
async def create_tenant(body: TenantCreate, caller: Platform, registry: Registry) -> Tenant:
    return await registry.create(body.id, body.display_name, tier=body.tier, actor=caller.actor)


@router.get("/tenants", tags=["tenants"])
async def list_tenants(
    _: Platform,
    registry: Registry,
    status: TenantStatus | None = None,
    after: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Tenant]:
    return await registry.list(status=status, after=after, limit=limit)


@router.get("/tenants/{tenant_id}", tags=["tenants"], responses=problems(404))
async def get_tenant(
    tenant_id: Annotated[TenantId, Path()], _: Platform, registry: Registry
) -> Tenant:
    return await registry.get(tenant_id)


@router.patch("/tenants/{tenant_id}", tags=["tenants"], responses=problems(404, 409))
async def update_tenant_status(
    tenant_id: Annotated[TenantId, Path()],
    body: TenantStatusUpdate,
    caller: Platform,
    registry: Registry,
) -> Tenant:
    """Change the tenant's status: provisioning → active; active ⇄ suspended; active or
    suspended → archived → active; anything but deleted → deleted (final). Any other change
    is 409 and changes nothing. A tenant that is not active has every credential refused."""
    return await registry.update_status(tenant_id, body.status, actor=caller.actor)


@router.get("/settings", tags=["settings"])
async def list_settings(caller: ReadSettings, db: DatabaseDep) -> list[Setting]:
    return await TenantSettings(caller.tenant_id, db).list()


@router.get("/settings/{key}", tags=["settings"])
async def get_setting(key: SettingKey, caller: ReadSettings, db: DatabaseDep) -> Setting:
    return await TenantSettings(caller.tenant_id, db).get(key)


@router.put("/settings/{key}", tags=["settings"])
async def put_setting(
    key: SettingKey, body: SettingWrite, caller: WriteSettings, db: DatabaseDep
) -> Setting:
    return await TenantSettings(caller.tenant_id, db).set(key, body.value, actor=caller.actor)


@router.delete("/settings/{key}", status_code=status.HTTP_204_NO_CONTENT, tags=["settings"])
async def delete_setting(key: SettingKey, caller: WriteSettings, db: DatabaseDep) -> Response:
    await TenantSettings(caller.tenant_id, db).delete(key, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
