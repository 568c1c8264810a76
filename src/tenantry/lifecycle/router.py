"""HTTP routes of the tenant lifecycle, the platform's (the service token alone): provision a
tenant under a tier's policy (a saga; 202), read where a tenant is in its life, export its data
(the sealed archive, streamed), and erase a deleted tenant (its report)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from tenantry.errors import BulkheadFull
from tenantry.http import BACKEND, Route, problems, provided, require_platform
from tenantry.lifecycle.erasure import AuditAfterErasure, KeysAfterErasure, TableErasure
from tenantry.lifecycle.manager import LifecycleManager
from tenantry.principal import Principal
from tenantry.tenants.schemas import TenantId

__all__ = ["MAX_EXPORTS", "ErasureView", "LifecycleBody", "LifecycleView", "router"]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["lifecycle"])
Platform = Annotated[Principal, require_platform()]
Lifecycles = Annotated[LifecycleManager, Depends(provided("lifecycle"))]
#: Exports a process makes at once (each reads a whole tenant and keeps its archive in a
#: temporary directory until it is sent); more are 429.
MAX_EXPORTS: Final = 1
_running: list[str] = []


class LifecycleBody(BaseModel):
    """The tier's policy (``free_tier``, ``standard_tier``, ``premium_tier``,
    ``enterprise_tier``), the tenant's display name, and the user invited as its first admin."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "policy": "enterprise_tier",
                    "display_name": "Aurora Records",
                    "admin_user": "ada@aurora.example",
                }
            ]
        },
    )

    policy: str = Field(default="enterprise_tier", max_length=32)
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    admin_user: str | None = Field(default=None, min_length=1, max_length=200)


class LifecycleView(BaseModel):
    tenant_id: str
    status: str
    policy: str
    quotas: dict[str, Any]
    next_states: list[str]
    provisioning: dict[str, Any] | None


@router.post(
    "/tenants/{tenant_id}/lifecycle",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(409),
)
async def create_tenant_lifecycle(
    tenant_id: Annotated[TenantId, Path()],
    body: LifecycleBody,
    caller: Platform,
    lifecycle: Lifecycles,
) -> LifecycleView:
    """Provision the tenant (idempotent: a tenant being provisioned answers its saga, a
    provisioned one its state); a deleted tenant is 409."""
    state = await lifecycle.create_tenant_lifecycle(
        tenant_id,
        body.policy,
        display_name=body.display_name,
        admin_user=body.admin_user,
        actor=caller.actor,
    )
    return LifecycleView(**state.as_dict())


@router.get("/tenants/{tenant_id}/lifecycle", responses=problems(404))
async def get_tenant_lifecycle(
    tenant_id: Annotated[TenantId, Path()], caller: Platform, lifecycle: Lifecycles
) -> LifecycleView:
    """Where the tenant is: its status, policy and quotas, the states it may move to, and its
    provisioning saga."""
    del caller
    return LifecycleView(**(await lifecycle.lifecycle(tenant_id)).as_dict())


@router.post(
    "/tenants/{tenant_id}/export",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The tenant's export, sealed for it (docs/lifecycle.md#export)",
            "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problems(404, 410),
    },
)
async def export_tenant(
    tenant_id: Annotated[TenantId, Path()], caller: Platform, lifecycle: Lifecycles
) -> FileResponse:
    """Export every tenant table of the tenant (GDPR portability): the tar sealed for it, with
    its manifest's SHA-256 in ``X-Tenantry-Manifest-SHA256`` (the ``tenant.export`` audit entry
    names it too). One export at a time in a process (429 while one runs); a tenant whose keys
    are destroyed is 410."""
    if len(_running) >= MAX_EXPORTS:
        raise BulkheadFull("an export is under way: retry later", retry_after=5.0)
    _running.append(tenant_id)
    folder = tempfile.mkdtemp(prefix="tenantry-export-")

    def done() -> None:  # once sent (or failed): the slot and the disk are given back
        shutil.rmtree(folder, ignore_errors=True)
        _running.remove(tenant_id)

    try:
        report = await lifecycle.export_tenant(
            tenant_id, FilePath(folder) / f"{tenant_id}.tar", actor=caller.actor
        )
    except BaseException:
        done()
        raise
    return FileResponse(
        report.path,
        media_type="application/x-tar",
        filename=f"{tenant_id}-{report.export_id}.tar",
        headers={
            "X-Tenantry-Export-Id": report.export_id,
            "X-Tenantry-Manifest-SHA256": report.manifest_sha256,
        },
        background=BackgroundTask(done),
    )


class ErasureView(BaseModel):
    """An erasure's report (``ErasureReport.as_dict()``) and its SHA-256, the one recorded as
    ``tenant.erase`` on the platform's audit log."""

    tenant_id: str
    status: str
    started_at: datetime
    finished_at: datetime
    passes: int
    tables: list[TableErasure]
    audit: AuditAfterErasure
    keys: KeysAfterErasure
    cache_entries_dropped: int
    platform_workflows_deleted: int
    rows_deleted: int
    rows_left: int
    erased: bool
    report_sha256: str


@router.post("/tenants/{tenant_id}/erase", responses=problems(404, 409))
async def erase_tenant(
    tenant_id: Annotated[TenantId, Path()], caller: Platform, lifecycle: Lifecycles
) -> ErasureView:
    """Erase a deleted tenant: its rows from every tenant table but its audit tree's, its keys
    destroyed; the report that proves it. A tenant that is not deleted, or the platform, is 409;
    erasing again answers a report again."""
    report = await lifecycle.erase_tenant(tenant_id, actor=caller.actor)
    return ErasureView(**report.as_dict(), report_sha256=report.digest())
