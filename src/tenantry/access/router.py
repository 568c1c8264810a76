"""HTTP routes of access control: the roles of a principal in the caller's tenant.

``GET /roles/{principal_id}`` lists them; ``PUT`` and ``DELETE /roles/{principal_id}/{role}``
grant and revoke one (idempotent: ``changed`` says whether anything changed). All need
``roles:manage`` (the admin role); a grant or revocation is audited with the caller as actor.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from tenantry.access.manager import DEFAULT_ROLE_CHOICES, AccessControl
from tenantry.access.policy import ASSIGNABLE_ROLES
from tenantry.actions import ROLES_MANAGE
from tenantry.http import Route, provided, require
from tenantry.principal import Principal

__all__ = ["router"]

router = APIRouter(tags=["access"], route_class=Route)
Manager = Annotated[Principal, require(ROLES_MANAGE)]
AccessDep = Annotated[AccessControl, Depends(provided("access"))]
PrincipalId = Annotated[str, Path(min_length=1, max_length=200)]
Role = Annotated[str, Path(pattern="^(" + "|".join(ASSIGNABLE_ROLES) + ")$")]


class Roles(BaseModel):
    principal_id: str
    roles: list[str]


class RoleChange(Roles):
    changed: bool


@router.get("/roles/{principal_id}")
async def list_roles(principal_id: PrincipalId, caller: Manager, access: AccessDep) -> Roles:
    roles = await access.roles_of(caller.tenant_id, principal_id)
    return Roles(principal_id=principal_id, roles=sorted(roles))


@router.put("/roles/{principal_id}/{role}")
async def grant_role(
    principal_id: PrincipalId, role: Role, caller: Manager, access: AccessDep
) -> RoleChange:
    changed = await access.grant(caller.tenant_id, principal_id, role, actor=caller.actor)
    return await _after(access, caller, principal_id, changed)


@router.delete("/roles/{principal_id}/{role}")
async def revoke_role(
    principal_id: PrincipalId, role: Role, caller: Manager, access: AccessDep
) -> RoleChange:
    changed = await access.revoke(caller.tenant_id, principal_id, role, actor=caller.actor)
    return await _after(access, caller, principal_id, changed)


async def _after(
    access: AccessControl, caller: Principal, principal_id: str, changed: bool
) -> RoleChange:
    roles = await access.roles_of(caller.tenant_id, principal_id)
    return RoleChange(principal_id=principal_id, roles=sorted(roles), changed=changed)


class DefaultRole(BaseModel):
    role: str


Choice = Annotated[str, Path(pattern="^(" + "|".join(DEFAULT_ROLE_CHOICES) + ")$")]


@router.get("/default-role")
async def get_default_role(caller: Manager, access: AccessDep) -> DefaultRole:
    """The role of the tenant's users who hold none (``none``: they can do nothing)."""
    return DefaultRole(role=await access.default_role(caller.tenant_id) or "none")


@router.put("/default-role/{role}")
async def set_default_role(role: Choice, caller: Manager, access: AccessDep) -> DefaultRole:
    """Choose it (``viewer``, ``editor`` or ``none``); audited, and live sessions see it at once."""
    return DefaultRole(
        role=await access.set_default_role(caller.tenant_id, role, actor=caller.actor)
    )
