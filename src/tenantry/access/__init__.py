"""Access control: roles per tenant and the policy engine (casbin, cached per decision).

What routes declare (``require(action)``) is in :mod:`tenantry.http`; the foreign-tenant probe
check (recorded, answered 404) in :mod:`tenantry.access.probes`, which needs a request and is not
imported here.
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
