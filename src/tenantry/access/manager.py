"""AccessControl: roles per tenant, and the decision whether a principal may perform an action.

Roles are assigned per tenant (``grant``/``revoke``/``roles_of``, stored behind row-level
security); decisions (``allowed``/``check``) read the roles authentication put on the
:class:`~tenantry.principal.Principal` and ask the :class:`~tenantry.access.policy.Policy`
(casbin, cached). An API key is further limited by its scopes: ``settings:read`` names one
action, ``settings:*`` every action of a domain, ``*`` all of them.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable

from tenantry.access.policy import ASSIGNABLE_ROLES, Policy
from tenantry.access.repository import RoleAssignmentsRepository
from tenantry.actions import ACTIONS, is_action
from tenantry.context import RESERVED_TENANTS, tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import (
    InvalidInput,
    PermissionDenied,
    ReferenceMissing,
    SettingNotFound,
    TenantNotFound,
)
from tenantry.principal import Principal, PrincipalKind
from tenantry.tenants.manager import TenantSettings

__all__ = [
    "DEFAULT_ROLE",
    "DEFAULT_ROLE_CHOICES",
    "DEFAULT_ROLE_SETTING",
    "AccessControl",
    "RolesListener",
    "scope_allows",
]

#: Awaited with (tenant id, principal id) after that principal's roles changed; principal id
#: None: the roles of every principal of the tenant may have changed (its default role did).
RolesListener = Callable[[str, str | None], Awaitable[None]]
#: The role of a tenant's users who hold none (Keycloak's "default roles"), unless the tenant
#: chose another with :meth:`AccessControl.set_default_role`.
DEFAULT_ROLE = "viewer"
#: What a tenant may choose as its default role ("none": users without a role can do nothing).
DEFAULT_ROLE_CHOICES = ("viewer", "editor", "none")
#: The tenant setting that holds the choice (changed only through AccessControl).
DEFAULT_ROLE_SETTING = "default_role"

_MAX_PRINCIPAL_ID = 200


def scope_allows(scopes: frozenset[str], action: str) -> bool:
    """Does one of an API key's ``scopes`` cover ``action``?"""
    if action in scopes or "*" in scopes:
        return True
    domain, _, _ = action.partition(":")
    return f"{domain}:*" in scopes


def _check_role(role: object) -> str:
    if not isinstance(role, str) or role not in ASSIGNABLE_ROLES:
        raise InvalidInput(f"invalid role {role!r}: use one of {', '.join(ASSIGNABLE_ROLES)}")
    return role


def _check_principal_id(principal_id: object) -> str:
    if (
        not isinstance(principal_id, str)
        or not principal_id.strip()
        or len(principal_id) > _MAX_PRINCIPAL_ID
    ):
        raise InvalidInput(f"a principal id is 1-{_MAX_PRINCIPAL_ID} characters")
    return principal_id


class AccessControl(RecordsChanges):
    """Role assignments per tenant, and policy decisions. ``database`` defaults to the process's.

    ``policy`` defaults to a fresh :class:`Policy` with the default grants; share one
    AccessControl per process (the app keeps it in its state) so the decision cache is shared.
    A grant or revocation that changes something writes ``role.grant``/``role.revoke`` to the
    tenant's audit log, in its transaction (``actor``: who asked for it), and then awaits every
    listener (:meth:`listen`) with the tenant and principal: a session manager drops the cached
    sessions of that principal on every node, so the change reaches them before the call returns.
    The reserved ``platform`` tenant has no roles to give: it is the operator's alone.
    """

    def __init__(
        self,
        database: Database | None = None,
        policy: Policy | None = None,
        *,
        audit: ChangeLog | None = None,
    ) -> None:
        self._database = database
        self._audit = audit
        self.policy = policy or Policy()
        self._listeners: list[Callable[[], RolesListener | None]] = []

    def listen(self, listener: RolesListener) -> None:
        """Await ``listener(tenant_id, principal_id)`` after each change of a principal's roles.

        A bound method is held weakly: a session manager that is dropped stops listening, so an
        access control shared by many managers keeps none of them alive.
        """
        if any(ref() == listener for ref in self._listeners):
            return
        if inspect.ismethod(listener):
            self._listeners.append(weakref.WeakMethod(listener))
        else:
            self._listeners.append(lambda: listener)

    async def _notify(self, tenant_id: str, principal_id: str | None) -> None:
        """Tell every live listener that roles in ``tenant_id`` changed (None: the default's)."""
        live = [(ref, listener) for ref in self._listeners if (listener := ref()) is not None]
        self._listeners = [ref for ref, _ in live]
        for _, listener in live:
            await listener(tenant_id, principal_id)

    async def grant(
        self, tenant_id: str, principal_id: str, role: str, *, actor: str | None = None
    ) -> bool:
        """Give ``principal_id`` the ``role`` in ``tenant_id``; ``False`` if it had it already."""
        return await self._change(tenant_id, principal_id, role, actor, grant=True)

    async def revoke(
        self, tenant_id: str, principal_id: str, role: str, *, actor: str | None = None
    ) -> bool:
        """Take ``role`` from ``principal_id`` in ``tenant_id``; ``False`` if it did not have it."""
        return await self._change(tenant_id, principal_id, role, actor, grant=False)

    async def _change(
        self, tenant_id: str, principal_id: str, role: str, actor: str | None, *, grant: bool
    ) -> bool:
        validate_tenant_id(tenant_id)
        if tenant_id in RESERVED_TENANTS:
            raise PermissionDenied(f"tenant {tenant_id!r} is tenantry's own: it gives no roles")
        _check_principal_id(principal_id)
        _check_role(role)
        db, trail = await self._db(), await self._trail(tenant_id)
        try:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction() as conn:
                    repo = RoleAssignmentsRepository(conn)
                    changed = await (repo.add if grant else repo.remove)(principal_id, role)
                    if changed:
                        action = "role.grant" if grant else "role.revoke"
                        resource = f"principal:{principal_id}"
                        detail = {"role": role}
                        await trail.record(tenant_id, action, resource, actor=actor, detail=detail)
        except ReferenceMissing:
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist") from None
        if changed:
            await self._notify(tenant_id, principal_id)
        return changed

    async def default_role(self, tenant_id: str) -> str | None:
        """The role of the tenant's users who hold none (None: no role)."""
        try:
            setting = await TenantSettings(tenant_id, await self._db()).get(DEFAULT_ROLE_SETTING)
        except SettingNotFound:
            return DEFAULT_ROLE
        value = setting.value
        return value if isinstance(value, str) and value in ("viewer", "editor") else None

    async def set_default_role(self, tenant_id: str, role: str, *, actor: str | None = None) -> str:
        """Choose the role of the tenant's users who hold none (``viewer``, ``editor``, ``none``);
        every live session of the tenant sees the change before this returns."""
        validate_tenant_id(tenant_id)
        if tenant_id in RESERVED_TENANTS:
            raise PermissionDenied(f"tenant {tenant_id!r} is tenantry's own: it gives no roles")
        if role not in DEFAULT_ROLE_CHOICES:
            raise InvalidInput(
                f"invalid default role {role!r}: use one of {', '.join(DEFAULT_ROLE_CHOICES)}"
            )
        db = await self._db()
        await TenantSettings(tenant_id, db, audit=self._audit).set_managed(
            DEFAULT_ROLE_SETTING, role, actor=actor
        )
        await self._notify(tenant_id, None)
        return role

    async def effective_roles(self, tenant_id: str, principal_id: str) -> frozenset[str]:
        """The roles ``principal_id`` acts with: its own, else the tenant's default role."""
        roles = await self.roles_of(tenant_id, principal_id)
        if roles:
            return roles
        default = await self.default_role(tenant_id)
        return frozenset() if default is None else frozenset({default})

    async def roles_of(self, tenant_id: str, principal_id: str) -> frozenset[str]:
        """The roles ``principal_id`` holds in ``tenant_id`` (none in every other tenant)."""
        validate_tenant_id(tenant_id)
        _check_principal_id(principal_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                return frozenset(await RoleAssignmentsRepository(conn).roles_of(principal_id))

    def allowed(self, principal: Principal, action: str) -> bool:
        """May ``principal`` perform ``action``? Deny by default; no I/O (cached decisions)."""
        if not self.policy.decide(principal.roles, action):
            return False
        if principal.cap is not None and action not in principal.cap:
            return False
        return principal.kind is not PrincipalKind.API_KEY or scope_allows(principal.scopes, action)

    def ceiling(self, principal: Principal) -> frozenset[str] | None:
        """The catalogued actions ``principal`` may perform: the ceiling of a session it mints
        (None when it may perform every one: no ceiling)."""
        allowed = frozenset(action for action in ACTIONS if self.allowed(principal, action))
        return None if allowed == frozenset(ACTIONS) else allowed

    def needs_admin(self, action: str) -> bool:
        """Whether ``action`` is an admin action: one the admin role has and the editor has not.

        Sessions (of any type and level) need a fresh passkey step-up for these.
        """
        return action in self.policy.actions_of("admin") - self.policy.actions_of("editor")

    def check(self, principal: Principal, action: str) -> None:
        """Raise :class:`PermissionDenied` unless ``principal`` may perform ``action``."""
        if not self.allowed(principal, action):
            what = action if is_action(action) else f"unknown action {action!r}"
            raise PermissionDenied(f"{what} is not allowed for this caller")
