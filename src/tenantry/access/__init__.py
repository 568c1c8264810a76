"""Access control: roles per tenant and the policy engine (casbin, cached per decision).

The FastAPI dependencies are in :mod:`tenantry.access.deps`, the foreign-tenant probe helpers
in :mod:`tenantry.access.probes`; neither is imported here, so this package stays usable
without the HTTP layer.
"""

from __future__ import annotations

from tenantry.access.manager import AccessControl, scope_allows
from tenantry.access.policy import ASSIGNABLE_ROLES, POLICY_ROLES, Policy
from tenantry.actions import ACTIONS
from tenantry.principal import Principal, PrincipalKind

__all__ = [
    "ACTIONS",
    "ASSIGNABLE_ROLES",
    "POLICY_ROLES",
    "AccessControl",
    "Policy",
    "Principal",
    "PrincipalKind",
    "scope_allows",
]
