"""The tenant registry, per-tenant settings, and whether a tenant is active."""

from tenantry.tenants.manager import (
    MANAGED_SETTINGS,
    MAX_SETTING_BYTES,
    TenantRegistry,
    TenantSettings,
)
from tenantry.tenants.schemas import Tenant, TenantStatus, TenantTier
from tenantry.tenants.status import ActiveTenants

__all__ = [
    "MANAGED_SETTINGS",
    "MAX_SETTING_BYTES",
    "ActiveTenants",
    "Tenant",
    "TenantRegistry",
    "TenantSettings",
    "TenantStatus",
    "TenantTier",
]
