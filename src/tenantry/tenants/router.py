"""HTTP routes of the tenants domain: the registry (service token) and a tenant's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from tenantry.api.deps import CurrentTenant, DatabaseDep, ServiceToken
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


@router.post("/tenants", status_code=status.HTTP_201_CREATED, tags=["tenants"])
async def create_tenant(body: TenantCreate, _: ServiceToken, db: DatabaseDep) -> Tenant:
    return await TenantRegistry(db).create(body.id, body.display_name, tier=body.tier)


@router.get("/tenants", tags=["tenants"])
async def list_tenants(
    _: ServiceToken,
    db: DatabaseDep,
    status: TenantStatus | None = None,
    after: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Tenant]:
    return await TenantRegistry(db).list(status=status, after=after, limit=limit)


@router.get("/tenants/{tenant_id}", tags=["tenants"])
async def get_tenant(
    tenant_id: Annotated[TenantId, Path()], _: ServiceToken, db: DatabaseDep
) -> Tenant:
    return await TenantRegistry(db).get(tenant_id)


@router.patch("/tenants/{tenant_id}", tags=["tenants"])
async def update_tenant_status(
    tenant_id: Annotated[TenantId, Path()],
    body: TenantStatusUpdate,
    _: ServiceToken,
    db: DatabaseDep,
) -> Tenant:
    return await TenantRegistry(db).update_status(tenant_id, body.status)


@router.get("/settings", tags=["settings"])
async def list_settings(tenant: CurrentTenant, db: DatabaseDep) -> list[Setting]:
    return await TenantSettings(tenant, db).list()


@router.get("/settings/{key}", tags=["settings"])
async def get_setting(key: SettingKey, tenant: CurrentTenant, db: DatabaseDep) -> Setting:
    return await TenantSettings(tenant, db).get(key)


@router.put("/settings/{key}", tags=["settings"])
async def put_setting(
    key: SettingKey, body: SettingWrite, tenant: CurrentTenant, db: DatabaseDep
) -> Setting:
    return await TenantSettings(tenant, db).set(key, body.value)


@router.delete("/settings/{key}", status_code=status.HTTP_204_NO_CONTENT, tags=["settings"])
async def delete_setting(key: SettingKey, tenant: CurrentTenant, db: DatabaseDep) -> Response:
    await TenantSettings(tenant, db).delete(key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
