"""HTTP routes of the tenants domain: the registry (platform only) and a tenant's settings.

The registry routes take the service token alone (``tenants:admin``); the settings routes act for
the caller's tenant and need ``settings:read`` or ``settings:write``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from tenantry.access.actions import SETTINGS_READ, SETTINGS_WRITE
from tenantry.access.deps import require, require_platform
from tenantry.access.principal import Principal
from tenantry.api.auth import forget_active
from tenantry.api.deps import DatabaseDep, StateDep
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

router = APIRouter()
SettingKey = Annotated[str, Path(pattern=SETTING_KEY_PATTERN)]
Platform = Annotated[Principal, require_platform()]
ReadSettings = Annotated[Principal, require(SETTINGS_READ)]
WriteSettings = Annotated[Principal, require(SETTINGS_WRITE)]


@router.post("/tenants", status_code=status.HTTP_201_CREATED, tags=["tenants"])
async def create_tenant(body: TenantCreate, caller: Platform, db: DatabaseDep) -> Tenant:
    return await TenantRegistry(db).create(
        body.id, body.display_name, tier=body.tier, actor=caller.actor
    )


@router.get("/tenants", tags=["tenants"])
async def list_tenants(
    _: Platform,
    db: DatabaseDep,
    status: TenantStatus | None = None,
    after: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Tenant]:
    return await TenantRegistry(db).list(status=status, after=after, limit=limit)


@router.get("/tenants/{tenant_id}", tags=["tenants"])
async def get_tenant(
    tenant_id: Annotated[TenantId, Path()], _: Platform, db: DatabaseDep
) -> Tenant:
    return await TenantRegistry(db).get(tenant_id)


@router.patch("/tenants/{tenant_id}", tags=["tenants"])
async def update_tenant_status(
    tenant_id: Annotated[TenantId, Path()],
    body: TenantStatusUpdate,
    caller: Platform,
    state: StateDep,
) -> Tenant:
    registry = TenantRegistry(state.database)
    tenant = await registry.update_status(tenant_id, body.status, actor=caller.actor)
    await forget_active(state, tenant_id)  # its service-token requests see the status at once
    return tenant


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
