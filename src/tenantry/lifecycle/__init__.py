"""The tenant lifecycle: tier policies, provisioning as a saga, the states a tenant goes
through, and the erasure of a deleted tenant. See docs/lifecycle.md."""

from tenantry.lifecycle.erasure import (
    AuditAfterErasure,
    ErasureReport,
    KeysAfterErasure,
    TableErasure,
)
from tenantry.lifecycle.manager import LifecycleManager, ResourceLifecycle
from tenantry.lifecycle.policies import TierPolicy, load_policies, policies, tier_of_policy
from tenantry.lifecycle.provisioning import PROVISIONING

__all__ = [
    "PROVISIONING",
    "AuditAfterErasure",
    "ErasureReport",
    "KeysAfterErasure",
    "LifecycleManager",
    "ResourceLifecycle",
    "TableErasure",
    "TierPolicy",
    "load_policies",
    "policies",
    "tier_of_policy",
]
