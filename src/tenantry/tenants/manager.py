"""TenantRegistry (the tenants) and TenantSettings (a tenant's key/value settings).

Every change is written to an audit log in the transaction that makes it: a tenant's creation
and status changes to the platform's tree (``tenant.create``, ``tenant.status``), a setting's
change to the tenant's own (``setting.set``, ``setting.delete``; the key, not the value).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from re import fullmatch
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import JsonValue, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from tenantry.context import PLATFORM_TENANT, RESERVED_TENANTS, tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import (
    Conflict,
    ContentTooLarge,
    InvalidInput,
    PermissionDenied,
    ReferenceMissing,
    SettingNotFound,
    TenantExists,
    TenantNotActive,
    TenantNotFound,
)
from tenantry.levels import SECURITY_LEVEL_SETTING, parse_level
from tenantry.tenants.repository import SettingsRepository, TenantsRepository
from tenantry.tenants.schemas import (
    SETTING_KEY_PATTERN,
    TRANSITIONS,
    Setting,
    Tenant,
    TenantStatus,
    TenantTier,
)
from tenantry.validation import parse_enum

__all__ = [
    "DEFAULT_TIME_ZONE",
    "MANAGED_SETTINGS",
    "MAX_SETTING_BYTES",
    "TIME_ZONE_SETTING",
    "TenantRegistry",
    "TenantSettings",
    "check_time_zone",
]

_JSON = TypeAdapter(JsonValue)
#: Settings that belong to a manager, and how to change them: ``TenantSettings.set`` refuses them.
MANAGED_SETTINGS: Mapping[str, str] = {
    SECURITY_LEVEL_SETTING: "SecurityManager.set_security_level (tenantry keys level)",
    "default_role": "AccessControl.set_default_role (PUT /default-role/{role})",
    "lifecycle.policy": "LifecycleManager.create_tenant_lifecycle (the tier's quotas, recorded)",
    "metadata.storage_bytes": "the metadata manager's writes (the bytes its records store)",
}
#: The largest value one setting holds: bytes of its canonical JSON (UTF-8, sorted keys, no
#: whitespace). Settings are configuration, read whole on every ``GET /settings``.
MAX_SETTING_BYTES = 64 * 1024
#: The tenant's time zone (an IANA name, ``Europe/Vienna``): the one its alert messages show
#: times in. Checked when set; :data:`DEFAULT_TIME_ZONE` while it is not.
TIME_ZONE_SETTING = "time_zone"
DEFAULT_TIME_ZONE = "UTC"


class _UsesDatabase(RecordsChanges):
    def __init__(self, database: Database | None = None, *, audit: ChangeLog | None = None):
        self._database = database
        self._audit = audit


StatusListener = Callable[[str], Awaitable[None]]


class TenantRegistry(_UsesDatabase):
    """Create, read, list tenants and change their status.

    ``on_status_change`` is awaited with a tenant's id after its status changed (the app drops
    what it cached about the tenant being active, so its credentials see the change at once).
    """

    def __init__(
        self,
        database: Database | None = None,
        *,
        audit: ChangeLog | None = None,
        on_status_change: StatusListener | None = None,
    ) -> None:
        super().__init__(database, audit=audit)
        self._on_status_change = on_status_change

    async def create(
        self,
        tenant_id: str,
        display_name: str,
        *,
        tier: TenantTier | str = TenantTier.FREE,
        status: TenantStatus | str = TenantStatus.ACTIVE,
        actor: str | None = None,
    ) -> Tenant:
        validate_tenant_id(tenant_id)
        if tenant_id in RESERVED_TENANTS:
            raise TenantExists(f"tenant id {tenant_id!r} is reserved")
        if not isinstance(display_name, str) or not 1 <= len(display_name.strip()) <= 200:
            raise InvalidInput("display_name must be 1-200 characters")
        tier_value, status_value = parse_enum(TenantTier, tier), parse_enum(TenantStatus, status)
        db, trail = await self._db(), await self._trail(PLATFORM_TENANT)
        with tenant_scope(
            PLATFORM_TENANT
        ):  # the registry is global; the entry goes to the platform
            async with db.tenant_transaction() as conn:
                row = await TenantsRepository(conn).insert(
                    tenant_id, display_name.strip(), tier_value.value, status_value.value
                )
                if row is not None:
                    detail = {"tier": tier_value.value, "status": status_value.value}
                    resource = f"tenant:{tenant_id}"
                    await trail.record(
                        PLATFORM_TENANT, "tenant.create", resource, actor=actor, detail=detail
                    )
        if row is None:
            raise TenantExists(f"tenant {tenant_id!r} exists already")
        return Tenant.model_validate(dict(row))

    async def get(self, tenant_id: str) -> Tenant:
        validate_tenant_id(tenant_id)
        db = await self._db()
        async with db.transaction() as conn:
            row = await TenantsRepository(conn).get(tenant_id)
        if row is None:
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist")
        return Tenant.model_validate(dict(row))

    async def get_active(self, tenant_id: str) -> Tenant:
        """The tenant, if it exists and is active; else :class:`TenantNotActive`."""
        tenant = await self.get(tenant_id)
        if tenant.status is not TenantStatus.ACTIVE:
            raise TenantNotActive(f"tenant {tenant_id!r} is {tenant.status.value}")
        return tenant

    async def list(
        self,
        *,
        status: TenantStatus | str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Tenant]:
        """Tenants ordered by id, ``limit`` at a time after the id ``after`` (keyset paging)."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        status_value = None if status is None else parse_enum(TenantStatus, status).value
        db = await self._db()
        async with db.transaction() as conn:
            rows = await TenantsRepository(conn).list(status=status_value, after=after, limit=limit)
        return [Tenant.model_validate(dict(r)) for r in rows]

    async def active_ids(self) -> tuple[str, ...]:
        """The ids of every active tenant but the reserved ones (for background sweeps)."""
        found: tuple[str, ...] = ()
        after: str | None = None
        while page := await self.list(status=TenantStatus.ACTIVE, after=after, limit=1000):
            found += tuple(t.id for t in page if t.id not in RESERVED_TENANTS)
            after = page[-1].id
        return found

    async def update_status(
        self, tenant_id: str, status: TenantStatus | str, *, actor: str | None = None
    ) -> Tenant:
        validate_tenant_id(tenant_id)
        status_value = parse_enum(TenantStatus, status)
        if tenant_id in RESERVED_TENANTS:
            raise Conflict(f"tenant {tenant_id!r} is tenantry's own: its status does not change")
        db, trail = await self._db(), await self._trail(PLATFORM_TENANT)
        with tenant_scope(PLATFORM_TENANT):
            async with db.tenant_transaction() as conn:
                repo = TenantsRepository(conn)
                current = await repo.get(tenant_id, lock=True)
                if current is None:
                    raise TenantNotFound(f"tenant {tenant_id!r} does not exist")
                before = TenantStatus(current["status"])
                if before == TenantStatus.DELETED != status_value:
                    raise Conflict(f"tenant {tenant_id!r} is deleted: deletion is final")
                if status_value != before and status_value not in TRANSITIONS[before]:
                    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[before]))
                    raise Conflict(
                        f"tenant {tenant_id!r} is {before.value}: it can become {allowed}, "
                        f"not {status_value.value}"
                    )
                row = await repo.set_status(tenant_id, status_value.value)
                detail = {"status": status_value.value}
                resource = f"tenant:{tenant_id}"
                await trail.record(
                    PLATFORM_TENANT, "tenant.status", resource, actor=actor, detail=detail
                )
        if row is None:
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist")
        if self._on_status_change is not None:
            await self._on_status_change(tenant_id)
        return Tenant.model_validate(dict(row))


def _check_key(key: str) -> str:
    if not isinstance(key, str) or fullmatch(SETTING_KEY_PATTERN, key) is None:
        shown = InvalidInput.excerpt(key)
        raise InvalidInput(
            f"invalid setting key {shown}: use 1-128 characters of A-Z, a-z, 0-9, '_.:-'"
        )
    return key


def _check_value(key: str, value: Any) -> Any:
    """``value`` if PostgreSQL can store it as the setting's JSON: no NaN or Infinity, no NUL
    character in any string or object key, at most :data:`MAX_SETTING_BYTES` of canonical JSON.
    Else :class:`InvalidInput` (:class:`ContentTooLarge` for the size); nothing is written."""
    try:
        checked = _JSON.validate_python(value)
        canonical = json.dumps(
            checked, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
        )
    except (PydanticValidationError, ValueError, RecursionError):
        raise InvalidInput(
            f"the value of {key!r} is not JSON (or nested too deep; NaN and Infinity are not JSON)"
        ) from None
    if _has_nul(checked):
        raise InvalidInput(
            f"the value of {key!r} contains a NUL character (\\u0000), which cannot be stored"
        )
    size = len(canonical.encode())
    if size > MAX_SETTING_BYTES:
        raise ContentTooLarge(
            f"the value of {key!r} is {size} bytes of JSON; a setting holds at most "
            f"{MAX_SETTING_BYTES}"
        )
    return checked


def check_time_zone(value: object) -> str:
    """``value`` if it names a time zone of the IANA database (``Europe/Vienna``, ``UTC``), else
    :class:`InvalidInput`. Only names: no path, no POSIX TZ string, at most 64 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 64 or value.startswith(("/", ".")):
        raise InvalidInput(
            f"{InvalidInput.excerpt(value)} is not a time zone: give an IANA name like "
            "'Europe/Vienna' or 'UTC'"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"unknown time zone {InvalidInput.excerpt(value)}: give an IANA name like "
            "'Europe/Vienna' or 'UTC'"
        ) from None
    return value


#: Settings whose value is checked when set (a wrong one would break what reads it later).
_CHECKED_SETTINGS: Mapping[str, Callable[[object], Any]] = {TIME_ZONE_SETTING: check_time_zone}


def _has_nul(value: Any) -> bool:
    """Whether a NUL character is in any string or object key of the JSON ``value``."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class TenantSettings(_UsesDatabase):
    """Key/value settings of one tenant, JSON values, stored behind row-level security."""

    def __init__(
        self, tenant_id: str, database: Database | None = None, *, audit: ChangeLog | None = None
    ) -> None:
        super().__init__(database, audit=audit)
        self.tenant_id = validate_tenant_id(tenant_id)

    async def get(self, key: str) -> Setting:
        _check_key(key)
        db = await self._db()
        with tenant_scope(self.tenant_id):
            async with db.tenant_transaction() as conn:
                row = await SettingsRepository(conn).get(key)
        if row is None:
            raise SettingNotFound(f"setting {key!r} does not exist")
        return Setting.model_validate(dict(row))

    async def list(self) -> list[Setting]:
        db = await self._db()
        with tenant_scope(self.tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SettingsRepository(conn).list()
        return [Setting.model_validate(dict(r)) for r in rows]

    async def set(self, key: str, value: Any, *, actor: str | None = None) -> Setting:
        """Store ``value`` under ``key``. A setting that belongs to a manager
        (:data:`MANAGED_SETTINGS`) is refused here: that manager changes it, with its checks,
        its audit entry and its step-up; so are the settings of the reserved ``platform``."""
        _check_key(key)
        checked = _check_value(key, value)
        if key in MANAGED_SETTINGS:
            raise PermissionDenied(f"{key!r} is changed with {MANAGED_SETTINGS[key]}")
        if key in _CHECKED_SETTINGS:
            checked = _CHECKED_SETTINGS[key](checked)
        self._writable()
        return await self._put(key, checked, actor)

    async def time_zone(self) -> str:
        """The tenant's time zone (:data:`TIME_ZONE_SETTING`), :data:`DEFAULT_TIME_ZONE` while
        it has none (or holds one stored before it was checked that no longer names a zone)."""
        try:
            return check_time_zone((await self.get(TIME_ZONE_SETTING)).value)
        except (SettingNotFound, InvalidInput):
            return DEFAULT_TIME_ZONE

    async def set_managed(self, key: str, value: Any, *, actor: str | None = None) -> Setting:
        """For the manager that owns ``key`` (:data:`MANAGED_SETTINGS`): store its value."""
        _check_key(key)
        if key not in MANAGED_SETTINGS:
            raise InvalidInput(f"{key!r} belongs to no manager: use set()")
        checked = _check_value(key, value)
        if key == SECURITY_LEVEL_SETTING:  # the key hierarchy reads it
            checked = parse_level(checked, what=f"setting {key!r}:").value
        return await self._put(key, checked, actor)

    def _writable(self) -> None:
        if self.tenant_id in RESERVED_TENANTS:
            raise PermissionDenied(f"tenant {self.tenant_id!r} is tenantry's own: no settings")

    async def _put(self, key: str, checked: Any, actor: str | None) -> Setting:
        db, trail = await self._db(), await self._trail(self.tenant_id)
        try:
            with tenant_scope(self.tenant_id):
                async with db.tenant_transaction() as conn:
                    row = await SettingsRepository(conn).put(key, checked)
                    await trail.record(self.tenant_id, "setting.set", f"setting:{key}", actor=actor)
        except ReferenceMissing:
            raise TenantNotFound(f"tenant {self.tenant_id!r} does not exist") from None
        return Setting.model_validate(dict(row))

    async def delete(self, key: str, *, actor: str | None = None) -> None:
        _check_key(key)
        if key in MANAGED_SETTINGS:
            raise PermissionDenied(f"{key!r} is changed with {MANAGED_SETTINGS[key]}")
        self._writable()
        db, trail = await self._db(), await self._trail(self.tenant_id)
        with tenant_scope(self.tenant_id):
            async with db.tenant_transaction() as conn:
                deleted = await SettingsRepository(conn).delete(key)
                if deleted:
                    resource = f"setting:{key}"
                    await trail.record(self.tenant_id, "setting.delete", resource, actor=actor)
        if not deleted:
            raise SettingNotFound(f"setting {key!r} does not exist")
