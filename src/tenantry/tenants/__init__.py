"""The tenant registry, per-tenant settings, and whether a tenant is active."""

from tenantry.tenants.manager import TenantRegistry, TenantSettings
from tenantry.tenants.schemas import Tenant, TenantStatus, TenantTier
from tenantry.tenants.status import ActiveTenants

__all__ = [
    "ActiveTenants",
    "Tenant",
    "TenantRegistry",
    "TenantSettings",
    "TenantStatus",
    "TenantTier",
]
