"""HTTP routes of the tenant lifecycle, the platform's (the service token alone): provision a
tenant under a tier's policy (a saga; 202), and read where a tenant is in its life."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field

from tenantry.http import BACKEND, Route, problems, provided, require_platform
from tenantry.lifecycle.manager import LifecycleManager
from tenantry.principal import Principal
from tenantry.tenants.schemas import TenantId

__all__ = ["LifecycleBody", "LifecycleView", "router"]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["lifecycle"])
Platform = Annotated[Principal, require_platform()]
Lifecycles = Annotated[LifecycleManager, Depends(provided("lifecycle"))]


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
