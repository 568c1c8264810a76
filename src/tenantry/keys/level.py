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
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, SettingNotFound
from tenantry.sessions.schemas import SecurityLevel

__all__ = ["SETTING", "default_level", "parse_level", "read_level", "write_level"]

#: The tenant setting that holds the level.
SETTING = "security_level"
_VALUES = tuple(level.value for level in SecurityLevel)
_ALLOWED = ", ".join(_VALUES)


def default_level(settings: Settings) -> SecurityLevel:
    """The level of a tenant without the setting."""
    if settings.quantum_crypto_enabled:
        return SecurityLevel.QUANTUM
    return SecurityLevel(settings.security_level)


def parse_level(value: object, *, what: str = "security level") -> SecurityLevel:
    """``value`` as a :class:`SecurityLevel`, or :class:`InvalidInput` naming what is allowed."""
    if isinstance(value, str) and value in _VALUES:
        return SecurityLevel(value)
    raise InvalidInput(f"{what} {value!r} is invalid: use one of {_ALLOWED}")


async def read_level(database: Database, tenant_id: str, default: SecurityLevel) -> SecurityLevel:
    """The tenant's level (joins the caller's open transaction of that tenant, if any)."""
    from tenantry.tenants.manager import TenantSettings  # noqa: PLC0415 - it imports security

    try:
        setting = await TenantSettings(tenant_id, database).get(SETTING)
    except SettingNotFound:
        return default
    return parse_level(setting.value, what=f"tenant {tenant_id!r}'s setting {SETTING!r}:")


async def write_level(
    database: Database, tenant_id: str, level: SecurityLevel | str
) -> SecurityLevel:
    """Validate ``level`` (nothing is written if it is invalid), then store it."""
    from tenantry.tenants.manager import TenantSettings  # noqa: PLC0415 - it imports security

    parsed = parse_level(level)
    await TenantSettings(tenant_id, database).set(SETTING, parsed.value)
    return parsed
