"""HTTP routes of access control: the roles of a principal in the caller's tenant.

``GET /roles/{principal_id}`` lists them; ``PUT`` and ``DELETE /roles/{principal_id}/{role}``
grant and revoke one (idempotent: ``changed`` says whether anything changed). All need
``roles:manage`` (the admin role); a grant or revocation is audited with the caller as actor.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from tenantry.access.actions import ROLES_MANAGE
from tenantry.access.deps import require
from tenantry.access.policy import ASSIGNABLE_ROLES
from tenantry.access.principal import Principal
from tenantry.api.deps import StateDep
from tenantry.api.state import AppState

__all__ = ["router"]

router = APIRouter(tags=["access"])
Manager = Annotated[Principal, require(ROLES_MANAGE)]
PrincipalId = Annotated[str, Path(min_length=1, max_length=200)]
Role = Annotated[str, Path(pattern="^(" + "|".join(ASSIGNABLE_ROLES) + ")$")]


class Roles(BaseModel):
    principal_id: str
    roles: list[str]


class RoleChange(Roles):
    changed: bool


@router.get("/roles/{principal_id}")
async def list_roles(principal_id: PrincipalId, caller: Manager, state: StateDep) -> Roles:
    roles = await state.access.roles_of(caller.tenant_id, principal_id)
    return Roles(principal_id=principal_id, roles=sorted(roles))


@router.put("/roles/{principal_id}/{role}")
async def grant_role(
    principal_id: PrincipalId, role: Role, caller: Manager, state: StateDep
) -> RoleChange:
    changed = await state.access.grant(caller.tenant_id, principal_id, role, actor=caller.actor)
    return await _after(state, caller, principal_id, changed)


@router.delete("/roles/{principal_id}/{role}")
async def revoke_role(
    principal_id: PrincipalId, role: Role, caller: Manager, state: StateDep
) -> RoleChange:
    changed = await state.access.revoke(caller.tenant_id, principal_id, role, actor=caller.actor)
    return await _after(state, caller, principal_id, changed)


async def _after(
    state: AppState, caller: Principal, principal_id: str, changed: bool
) -> RoleChange:
    roles = await state.access.roles_of(caller.tenant_id, principal_id)
    return RoleChange(principal_id=principal_id, roles=sorted(roles), changed=changed)
