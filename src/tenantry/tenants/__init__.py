"""The tenant registry and per-tenant settings."""

from tenantry.tenants.manager import TenantRegistry, TenantSettings
from tenantry.tenants.schemas import Tenant, TenantStatus, TenantTier

__all__ = ["Tenant", "TenantRegistry", "TenantSettings", "TenantStatus", "TenantTier"]
