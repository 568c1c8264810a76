"""A tenant's security level, and the kind of KEK it gets.

The level is the tenant setting ``security_level`` (``high``, ``critical`` or ``quantum``; read and
written with :class:`~tenantry.tenants.TenantSettings`, validated here). Without one, the process
default applies: ``quantum`` when ``QUANTUM_CRYPTO_ENABLED`` is on, else ``SECURITY_LEVEL``. A
tenant at ``quantum`` gets a hybrid X25519 + ML-KEM-768 KEK when its first keys are made and on
the next rotation after its level was raised; a hybrid KEK is never silently downgraded (only an
explicit ``quantum=False`` / ``--classic`` does that).
"""

from __future__ import annotations

from tenantry.config import Settings
from tenantry.db.changes import ChangeLog
from tenantry.db.engine import Database
from tenantry.errors import SettingNotFound
from tenantry.levels import SECURITY_LEVEL_SETTING, SecurityLevel, parse_level
from tenantry.tenants.manager import TenantSettings

__all__ = ["default_level", "read_level", "write_level"]


def default_level(settings: Settings) -> SecurityLevel:
    """The level of a tenant without the setting."""
    if settings.quantum_crypto_enabled:
        return SecurityLevel.QUANTUM
    return SecurityLevel(settings.security_level)


async def read_level(database: Database, tenant_id: str, default: SecurityLevel) -> SecurityLevel:
    """The tenant's level (joins the caller's open transaction of that tenant, if any)."""
    try:
        setting = await TenantSettings(tenant_id, database).get(SECURITY_LEVEL_SETTING)
    except SettingNotFound:
        return default
    return parse_level(
        setting.value, what=f"tenant {tenant_id!r}'s setting {SECURITY_LEVEL_SETTING!r}:"
    )


async def write_level(
    database: Database,
    tenant_id: str,
    level: SecurityLevel | str,
    *,
    actor: str | None = None,
    audit: ChangeLog | None = None,
) -> SecurityLevel:
    """Validate ``level`` (nothing is written if it is invalid), then store it, recording
    ``setting.set`` in ``audit`` (joins the caller's open transaction of that tenant, if any)."""
    parsed = parse_level(level)
    settings = TenantSettings(tenant_id, database, audit=audit)
    await settings.set_managed(SECURITY_LEVEL_SETTING, parsed.value, actor=actor)
    return parsed
