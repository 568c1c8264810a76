"""The tenant registry, per-tenant settings, and whether a tenant is active."""

from tenantry.tenants.manager import MAX_SETTING_BYTES, TenantRegistry, TenantSettings
from tenantry.tenants.schemas import Tenant, TenantStatus, TenantTier
from tenantry.tenants.status import ActiveTenants

__all__ = [
    "MAX_SETTING_BYTES",
    "ActiveTenants",
    "Tenant",
    "TenantRegistry",
    "TenantSettings",
    "TenantStatus",
    "TenantTier",
]
