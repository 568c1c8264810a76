"""The policy: which role may perform which action, decided by casbin, cached per decision.

The model is RBAC with role inheritance, built in code (no file is read): ``viewer`` ⊂
``editor`` ⊂ ``admin``; ``service`` (API-key service accounts, further limited by each key's
scopes in :class:`~tenantry.access.manager.AccessControl`); ``platform`` (the service-token
holder) may do everything, ``tenants:admin`` included. Roles are assigned per tenant
(``role_assignments``); the policy itself is the same for every tenant, so a decision depends
only on the caller's roles and the action, and is cached under exactly that key.

Deny by default: an action outside :data:`~tenantry.actions.ACTIONS`, an unknown role or
no role at all is refused before casbin is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import casbin
from casbin.model import Model

from tenantry import actions as a
from tenantry.access.models import ROLES
from tenantry.errors import InvalidInput
from tenantry.principal import PLATFORM_ROLE

__all__ = ["ASSIGNABLE_ROLES", "DEFAULT_GRANTS", "INHERITS", "MODEL", "POLICY_ROLES", "Policy"]

MODEL = """
[request_definition]
r = sub, act

[policy_definition]
p = sub, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && keyMatch(r.act, p.act)
"""

#: Roles a tenant can assign to its principals (the ``role_assignments`` check constraint).
ASSIGNABLE_ROLES: tuple[str, ...] = ROLES
#: Every role the policy knows: the assignable ones and ``platform``, which only the service
#: token carries.
POLICY_ROLES = (*ASSIGNABLE_ROLES, PLATFORM_ROLE)

#: role -> the role whose permissions it inherits.
INHERITS: Mapping[str, str] = {"editor": "viewer", "admin": "editor"}

#: role -> the actions it holds itself (besides what it inherits). ``*`` matches every action.
#: Sessions of other users are an admin's business; opening a session for a user is the
#: backend's (``service``, ``platform``), never an end user's.
DEFAULT_GRANTS: Mapping[str, tuple[str, ...]] = {
    "viewer": (
        a.SETTINGS_READ,
        a.CACHE_READ,
        a.METADATA_READ,
        a.SCHEMAS_READ,
        a.MONITORING_READ,
        a.ALERTS_READ,
        a.FIXTURES_READ,
        a.AI_READ,
        a.WORKFLOWS_READ,
        a.PASSKEYS_REGISTER,
        a.PASSKEYS_AUTHENTICATE,
    ),
    "editor": (
        a.SETTINGS_WRITE,
        a.METADATA_WRITE,
        a.SCHEMAS_WRITE,
        a.ALERTS_WRITE,
        a.FIXTURES_WRITE,
        a.AI_TRAIN,
        a.WORKFLOWS_RUN,
    ),
    "admin": (
        a.SESSIONS_READ,
        a.SESSIONS_REVOKE,
        a.SESSIONS_ANALYTICS,
        a.API_KEYS_MANAGE,
        a.SECURITY_READ,
        a.ROLES_MANAGE,
        a.WORKFLOWS_OPERATE,
        a.DASHBOARD_READ,
    ),
    "service": (
        a.SETTINGS_READ,
        a.SETTINGS_WRITE,
        a.CACHE_READ,
        a.METADATA_READ,
        a.METADATA_WRITE,
        a.SCHEMAS_READ,
        a.SCHEMAS_WRITE,
        a.MONITORING_READ,
        a.ALERTS_READ,
        a.ALERTS_WRITE,
        a.FIXTURES_READ,
        a.FIXTURES_WRITE,
        a.AI_READ,
        a.AI_TRAIN,
        a.SESSIONS_CREATE,
        a.SESSIONS_READ,
        a.SESSIONS_REVOKE,
        a.SESSIONS_ANALYTICS,
        a.SECURITY_READ,
        a.WORKFLOWS_READ,
        a.WORKFLOWS_RUN,
    ),
    PLATFORM_ROLE: ("*",),
}


class Policy:
    """A casbin enforcer over :data:`MODEL` with a decision cache.

    The cache maps ``(frozenset(roles), action)`` to the decision; every change of the policy
    (:meth:`grant`, :meth:`revoke`) clears it.
    """

    def __init__(self, grants: Mapping[str, Iterable[str]] | None = None) -> None:
        model = Model()
        model.load_model_from_text(MODEL)
        self._enforcer = casbin.Enforcer(model)
        self._decisions: dict[tuple[frozenset[str], str], bool] = {}
        for child, parent in INHERITS.items():
            self._enforcer.add_grouping_policy(child, parent)
        for role, granted in (DEFAULT_GRANTS if grants is None else grants).items():
            for action in granted:
                self.grant(role, action)

    @property
    def enforcer(self) -> casbin.Enforcer:
        """The casbin enforcer (uncached; for tests and benchmarks)."""
        return self._enforcer

    def enforce(self, role: str, action: str) -> bool:
        """casbin's decision for one role, uncached."""
        return bool(self._enforcer.enforce(role, action))

    def decide(self, roles: frozenset[str], action: str) -> bool:
        """May a caller with ``roles`` perform ``action``? Cached; deny by default."""
        key = (roles, action)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(roles, action)
            self._decisions[key] = decision
        return decision

    def _decide(self, roles: frozenset[str], action: str) -> bool:
        if not a.is_action(action):
            return False
        return any(role in POLICY_ROLES and self.enforce(role, action) for role in roles)

    def grant(self, role: str, action: str) -> None:
        """Let ``role`` perform ``action`` (or every action, ``*``), in this policy."""
        self._check(role, action)
        self._enforcer.add_policy(role, action)
        self.invalidate()

    def revoke(self, role: str, action: str) -> None:
        """Take ``action`` away from ``role`` (what it inherits stays)."""
        self._check(role, action)
        self._enforcer.remove_policy(role, action)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget every cached decision."""
        self._decisions = {}

    @property
    def cached_decisions(self) -> int:
        return len(self._decisions)

    def actions_of(self, role: str) -> frozenset[str]:
        """The catalogue actions ``role`` may perform (inherited ones included)."""
        return frozenset(action for action in a.ACTIONS if self.decide(frozenset({role}), action))

    @staticmethod
    def _check(role: str, action: str) -> None:
        if role not in POLICY_ROLES:
            raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(POLICY_ROLES)}")
        if action != "*" and not a.is_action(action):
            raise InvalidInput(f"unknown action {action!r}: see tenantry.actions")
