"""The tenant lifecycle: tier policies, provisioning as a saga, the states a tenant goes
through. See docs/lifecycle.md."""

from tenantry.lifecycle.manager import LifecycleManager, ResourceLifecycle
from tenantry.lifecycle.policies import TierPolicy, load_policies, policies, tier_of_policy
from tenantry.lifecycle.provisioning import PROVISIONING

__all__ = [
    "PROVISIONING",
    "LifecycleManager",
    "ResourceLifecycle",
    "TierPolicy",
    "load_policies",
    "policies",
    "tier_of_policy",
]
