"""The tenant lifecycle: tier policies, provisioning as a saga, the states a tenant goes
through, export and the erasure of a deleted tenant. See docs/lifecycle.md."""

from tenantry.lifecycle.archive import ExportArchive, open_export
from tenantry.lifecycle.erasure import (
    AuditAfterErasure,
    ErasureReport,
    KeysAfterErasure,
    TableErasure,
)
from tenantry.lifecycle.export import (
    ExportProgress,
    ExportReport,
    ExportStep,
    TableExport,
    TenantExporter,
)
from tenantry.lifecycle.manager import LifecycleManager, ResourceLifecycle
from tenantry.lifecycle.policies import TierPolicy, load_policies, policies, tier_of_policy
from tenantry.lifecycle.provisioning import PROVISIONING

__all__ = [
    "PROVISIONING",
    "AuditAfterErasure",
    "ErasureReport",
    "ExportArchive",
    "ExportProgress",
    "ExportReport",
    "ExportStep",
    "KeysAfterErasure",
    "LifecycleManager",
    "ResourceLifecycle",
    "TableErasure",
    "TableExport",
    "TenantExporter",
    "TierPolicy",
    "load_policies",
    "open_export",
    "policies",
    "tier_of_policy",
]
