"""The tenant registry, per-tenant settings, and whether a tenant is active."""

from tenantry.tenants.manager import (
    DEFAULT_TIME_ZONE,
    MANAGED_SETTINGS,
    MAX_SETTING_BYTES,
    TIME_ZONE_SETTING,
    TenantRegistry,
    TenantSettings,
    check_time_zone,
)
from tenantry.tenants.schemas import TRANSITIONS, Tenant, TenantStatus, TenantTier
from tenantry.tenants.status import ActiveTenants

__all__ = [
    "DEFAULT_TIME_ZONE",
    "MANAGED_SETTINGS",
    "MAX_SETTING_BYTES",
    "TIME_ZONE_SETTING",
    "TRANSITIONS",
    "ActiveTenants",
    "Tenant",
    "TenantRegistry",
    "TenantSettings",
    "TenantStatus",
    "TenantTier",
    "check_time_zone",
]
