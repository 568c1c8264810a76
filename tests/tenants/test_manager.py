"""TenantRegistry and TenantSettings, on the embedded PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tenantry.db.engine import Database
from tenantry.errors import (
    ContentTooLarge,
    InvalidInput,
    InvalidTenantId,
    PermissionDenied,
    SettingNotFound,
    TenantExists,
    TenantNotActive,
    TenantNotFound,
)
from tenantry.tenants import (
    MAX_SETTING_BYTES,
    TenantRegistry,
    TenantSettings,
    TenantStatus,
    TenantTier,
)
from tests.conftest import NewTenant


def fresh_id(prefix: str = "reg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_create_get_and_status(db: Database) -> None:
    registry = TenantRegistry(db)
    tenant_id = fresh_id()
    created = await registry.create(tenant_id, "  Aurora Records ", tier="premium")
    assert created.id == tenant_id
    assert created.display_name == "Aurora Records"
    assert created.tier is TenantTier.PREMIUM
    assert created.status is TenantStatus.ACTIVE
    assert await registry.get(tenant_id) == created
    suspended = await registry.update_status(tenant_id, TenantStatus.SUSPENDED)
    assert suspended.status is TenantStatus.SUSPENDED
    assert suspended.updated_at >= created.updated_at
    with pytest.raises(TenantNotActive, match="suspended"):
        await registry.get_active(tenant_id)


async def test_duplicates_and_bad_input_change_nothing(db: Database) -> None:
    registry = TenantRegistry(db)
    tenant_id = fresh_id()
    await registry.create(tenant_id, "One")
    with pytest.raises(TenantExists):
        await registry.create(tenant_id, "Two")
    assert (await registry.get(tenant_id)).display_name == "One"
    with pytest.raises(InvalidTenantId):
        await registry.create("Bad Id", "x")
    with pytest.raises(InvalidInput, match="display_name"):
        await registry.create(fresh_id(), "   ")
    with pytest.raises(InvalidInput, match="TenantTier"):
        await registry.create(fresh_id(), "x", tier="platinum")
    with pytest.raises(InvalidInput, match="TenantStatus"):
        await registry.update_status(tenant_id, "gone")
    with pytest.raises(TenantNotFound):
        await registry.get(fresh_id())
    with pytest.raises(TenantNotFound):
        await registry.update_status(fresh_id(), "suspended")
    with pytest.raises(InvalidInput, match="limit"):
        await registry.list(limit=0)


async def test_list_pages_by_id(db: Database) -> None:
    registry = TenantRegistry(db)
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    ids = sorted(f"{prefix}-{i}" for i in range(5))
    for tenant_id in ids:
        await registry.create(tenant_id, tenant_id)
    first = await registry.list(after=f"{prefix}-", limit=2)
    assert [t.id for t in first] == ids[:2]
    rest = await registry.list(after=first[-1].id, limit=3)
    assert [t.id for t in rest] == ids[2:]
    await registry.update_status(ids[0], "archived")
    archived = await registry.list(status="archived", after=f"{prefix}-", limit=1000)
    assert ids[0] in {t.id for t in archived}
    assert ids[1] not in {t.id for t in archived}


async def test_settings_round_trip(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    settings = TenantSettings(tenant.id, db)
    value = {"locale": "de-DE", "labels": ["Ünïcode ✓", 1, 2.5, None, True]}
    stored = await settings.set("alerts.locale", value)
    assert stored.value == value
    assert (await settings.get("alerts.locale")).value == value
    await settings.set("alerts.locale", "fr-FR")
    assert [s.key for s in await settings.list()] == ["alerts.locale"]
    assert (await settings.get("alerts.locale")).value == "fr-FR"
    await settings.delete("alerts.locale")
    with pytest.raises(SettingNotFound):
        await settings.get("alerts.locale")
    with pytest.raises(SettingNotFound):
        await settings.delete("alerts.locale")


async def test_settings_are_per_tenant(db: Database, new_tenant: NewTenant) -> None:
    a, b = await new_tenant(), await new_tenant()
    await TenantSettings(a.id, db).set("plan", "a")
    await TenantSettings(b.id, db).set("plan", "b")
    assert (await TenantSettings(a.id, db).get("plan")).value == "a"
    assert (await TenantSettings(b.id, db).get("plan")).value == "b"
    await TenantSettings(b.id, db).delete("plan")
    assert (await TenantSettings(a.id, db).get("plan")).value == "a"


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "semi;colon", "ключ", "../etc"])
async def test_bad_keys_are_refused(db: Database, new_tenant: NewTenant, key: str) -> None:
    tenant = await new_tenant()
    with pytest.raises(InvalidInput, match="invalid setting key"):
        await TenantSettings(tenant.id, db).set(key, 1)


async def test_bad_values_are_refused_and_change_nothing(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = await new_tenant()
    settings = TenantSettings(tenant.id, db)
    await settings.set("k", "before")
    with pytest.raises(InvalidInput, match="not JSON"):
        await settings.set("k", {1, 2})
    with pytest.raises(InvalidInput):
        await settings.set("k", "nul \u0000 byte")
    assert (await settings.get("k")).value == "before"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nul \u0000 byte", "NUL character"),
        ({"nested": ["ok", "a\u0000b"]}, "NUL character"),
        ({"key\u0000": 1}, "NUL character"),
        (float("nan"), "NaN"),
        ({"limit": float("inf")}, "NaN and Infinity"),
    ],
)
async def test_values_postgresql_cannot_store_are_refused_up_front(
    db: Database, new_tenant: NewTenant, value: object, says: str
) -> None:
    settings = TenantSettings((await new_tenant()).id, db)
    await settings.set("k", "before")
    with pytest.raises(InvalidInput, match=says) as refused:
        await settings.set("k", value)
    assert refused.value.__cause__ is None  # refused before any SQL ran
    assert (await settings.get("k")).value == "before"


async def test_a_value_is_at_most_64_kib_of_canonical_json(
    db: Database, new_tenant: NewTenant
) -> None:
    settings = TenantSettings((await new_tenant()).id, db)
    fits = "x" * (MAX_SETTING_BYTES - 2)  # the quotes make it exactly the limit
    assert (await settings.set("k", fits)).value == fits
    with pytest.raises(ContentTooLarge, match=f"at most {MAX_SETTING_BYTES}"):
        await settings.set("k", fits + "x")
    with pytest.raises(ContentTooLarge):  # bytes, not characters: "é" is two
        await settings.set("k", "é" * (MAX_SETTING_BYTES // 2))
    assert (await settings.get("k")).value == fits


async def test_settings_of_an_unknown_tenant(db: Database) -> None:
    with pytest.raises(TenantNotFound):
        await TenantSettings(fresh_id(), db).set("k", 1)
    assert await TenantSettings(fresh_id(), db).list() == []


async def test_the_security_level_setting_is_validated(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    settings = TenantSettings(tenant, db)
    for bad in ("ultra", "QUANTUM", 3, None, ["quantum"]):
        with pytest.raises(InvalidInput, match="high, critical, quantum"):
            await settings.set_managed("security_level", bad)
    with pytest.raises(SettingNotFound):
        await settings.get("security_level")
    assert (await settings.set_managed("security_level", "critical")).value == "critical"


async def test_a_managed_setting_changes_only_through_its_manager(
    db: Database, new_tenant: NewTenant
) -> None:
    """Issue 12, item 5: an editor changed the key level through PUT /settings/security_level."""
    tenant = (await new_tenant()).id
    settings = TenantSettings(tenant, db)
    for change in (settings.set("security_level", "quantum"), settings.delete("security_level")):
        with pytest.raises(PermissionDenied, match="set_security_level"):
            await change
    with pytest.raises(SettingNotFound):
        await settings.get("security_level")
    with pytest.raises(InvalidInput, match="no manager"):
        await settings.set_managed("theme", "dark")
    for change in (
        TenantSettings("platform", db).set("k", 1),
        TenantSettings("platform", db).delete("k"),
    ):
        with pytest.raises(PermissionDenied, match="tenantry's own"):
            await change
