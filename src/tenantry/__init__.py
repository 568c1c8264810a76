"""tenantry: the tenant boundary of a multi-tenant service, and the managers that live on it.

Start with :func:`initialize_managers` (migrates the database) and
:func:`validate_module_integrity` (checks that the boundary holds); make managers with no
arguments to use the process's database from the environment's settings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tenantry.audit import trail_for as _trail_for
from tenantry.cache import CacheManager
from tenantry.config import Settings, load_settings
from tenantry.connections import ConnectionManager
from tenantry.context import current_tenant, tenant_scope
from tenantry.db.changes import provide_change_logs as _provide_change_logs
from tenantry.db.doctor import run_doctor as _run_doctor
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime as _DatabaseRuntime
from tenantry.errors import TenantryError
from tenantry.metadata import (
    MetadataManager,
    MetadataManagerFactory,
    MetadataSearch,
    MetadataType,
    SchemaRegistry,
)
from tenantry.monitoring import MetricsCollector, MonitoringManager
from tenantry.security import ComplianceManager, SecurityManager
from tenantry.sessions import SecurityLevel, SessionManager, SessionManagerFactory, SessionType
from tenantry.tenants import Tenant, TenantRegistry, TenantSettings, TenantStatus, TenantTier

__all__ = [
    "CacheManager",
    "ComplianceManager",
    "ConnectionManager",
    "Database",
    "MetadataManager",
    "MetadataManagerFactory",
    "MetadataSearch",
    "MetadataType",
    "MetricsCollector",
    "MonitoringManager",
    "SchemaRegistry",
    "SecurityLevel",
    "SecurityManager",
    "SessionManager",
    "SessionManagerFactory",
    "SessionType",
    "Settings",
    "Tenant",
    "TenantRegistry",
    "TenantSettings",
    "TenantStatus",
    "TenantTier",
    "TenantryError",
    "__version__",
    "current_tenant",
    "initialize_managers",
    "load_settings",
    "tenant_scope",
    "validate_module_integrity",
]

__version__ = "0.1.0"

# Every domain's tables, so the metadata (tenant_tables(), doctor, the isolation suite) has them.
from tenantry.access import models as _access_models  # noqa: F401
from tenantry.ai import models as _ai_models  # noqa: F401
from tenantry.alerts import models as _alerts_models  # noqa: F401
from tenantry.audit import models as _audit_models  # noqa: F401
from tenantry.keys import models as _keys_models  # noqa: F401
from tenantry.metadata import models as _metadata_models  # noqa: F401
from tenantry.monitoring import models as _monitoring_models  # noqa: F401
from tenantry.passkeys import models as _passkeys_models  # noqa: F401
from tenantry.performance import models as _performance_models  # noqa: F401
from tenantry.sessions import models as _sessions_models  # noqa: F401
from tenantry.threats import models as _threats_models  # noqa: F401
from tenantry.workflows import models as _workflows_models  # noqa: F401

# The assembly of the library: managers made without an audit trail (the tenant registry sits
# below the audit log, and knows it only as a ChangeLog) record their changes in their
# database's trail.
_provide_change_logs(_trail_for)


def initialize_managers(settings: Settings | None = None) -> str | None:
    """Prepare the database for every manager (what ``tenantry migrate`` does).

    Starts the embedded PostgreSQL when no ``TENANTRY_DATABASE_URL`` is set, creates the roles
    and the schema, applies every migration; returns the revision the database is now at.
    """

    async def work() -> str | None:
        runtime = _DatabaseRuntime(settings or load_settings())
        await runtime.start()
        try:
            return await runtime.migrate()
        finally:
            await runtime.stop()

    return asyncio.run(work())


def validate_module_integrity(settings: Settings | None = None) -> dict[str, Any]:
    """Run ``tenantry doctor``'s checks; ``{"ok": bool, "checks": [...]}``."""
    checks = asyncio.run(_run_doctor(settings))
    return {"ok": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks]}
