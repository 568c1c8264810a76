"""A tenant's life: provisioning as a saga (idempotent, each step's effect checked), the allowed
changes of status only, and the tier policies file."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tenantry.access.manager import AccessControl
from tenantry.alerts import SlackFixtureManager, TenantContext
from tenantry.alerts.manager import AlertManager
from tenantry.alerts.notify import AlertNotifier
from tenantry.context import PLATFORM_TENANT
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, Conflict, InvalidInput
from tenantry.keys import Keyring
from tenantry.levels import SecurityLevel
from tenantry.lifecycle import LifecycleManager, load_policies, tier_of_policy
from tenantry.tenants import TenantRegistry, TenantSettings, TenantStatus, TenantTier
from tenantry.workflows import WorkflowManager, WorkflowWorker, default_registry


def platform_worker(db: Database) -> WorkflowWorker:
    return WorkflowWorker(db, default_registry(), tenants=[PLATFORM_TENANT], poll=0.05)


async def provisioned(db: Database, lifecycle: LifecycleManager, tenant: str) -> None:
    """Run the platform's sagas here until the tenant's provisioning ended (a service's worker
    in this process may run it instead: then wait for it)."""
    await platform_worker(db).drain()
    for _ in range(400):
        found = (await lifecycle.lifecycle(tenant)).provisioning
        if found is not None and found.finished_at is not None:
            return
        await asyncio.sleep(0.05)


async def test_provisioning_makes_an_active_tenant_with_its_tiers_setup(db: Database) -> None:
    tenant = f"label-{uuid.uuid4().hex[:10]}"
    lifecycle = LifecycleManager(db)
    started = await lifecycle.create_tenant_lifecycle(
        tenant, "premium_tier", display_name="Label", admin_user="ada", actor="ops"
    )
    assert started.provisioning is not None
    assert started.status is TenantStatus.PROVISIONING
    again = await lifecycle.create_tenant_lifecycle(tenant, "premium_tier")
    assert again.provisioning is not None
    assert again.provisioning.id == started.provisioning.id  # the same saga, not another
    await provisioned(db, lifecycle, tenant)
    done = await lifecycle.lifecycle(tenant)
    assert done.provisioning is not None
    saga = await WorkflowManager(db).get_workflow(PLATFORM_TENANT, done.provisioning.id)
    assert done.status is TenantStatus.ACTIVE, saga
    assert done.provisioning is not None
    assert done.provisioning.status == "completed"
    assert done.policy.tier is TenantTier.PREMIUM
    assert await Keyring(db).security_level(tenant) is SecurityLevel.CRITICAL
    policy = (await TenantSettings(tenant, db).get("lifecycle.policy")).value
    assert policy["requests_per_second"] == 500
    assert "admin" in await AccessControl(db).roles_of(tenant, "ada")
    assert await AccessControl(db).default_role(tenant) == "viewer"
    assert [r.name for r in await AlertManager(db).rules(tenant)] == [
        "request_errors",
        "slow_requests",
    ]
    assert await AlertNotifier(db).routing(tenant) is not None
    fixtures = SlackFixtureManager(TenantContext(tenant), db)
    [fixture] = await fixtures.list_fixtures()
    assert fixture.name == "tenantry_default"
    rendered = await fixtures.render(
        fixture.id, "de-AT", {"alertname": "slow_requests", "status": "firing",
                              "summary": "p95 > 1 s", "at": "2026-12-06T09:00:00Z"},
    )  # fmt: skip
    assert rendered.resolved_locale == "de-DE"
    assert "slow_requests: firing" in rendered.text
    # provisioned: calling again answers its state and starts nothing
    third = await lifecycle.create_tenant_lifecycle(tenant, "premium_tier")
    assert third.status is TenantStatus.ACTIVE
    assert third.provisioning is not None
    assert third.provisioning.id == started.provisioning.id


async def test_only_the_allowed_changes_of_status(db: Database) -> None:
    tenant = f"life-{uuid.uuid4().hex[:10]}"
    registry = TenantRegistry(db)
    await registry.create(tenant, "T")
    lifecycle = LifecycleManager(db)
    with pytest.raises(InvalidInput):
        await lifecycle.transition(tenant, "provisioning")
    assert (await lifecycle.transition(tenant, "suspended")).status is TenantStatus.SUSPENDED
    assert (await lifecycle.transition(tenant, "archived")).next_states == (
        TenantStatus.ACTIVE,
        TenantStatus.DELETED,
    )
    with pytest.raises(Conflict, match="archived: it can become active, deleted"):
        await lifecycle.transition(tenant, "suspended")
    assert (await lifecycle.transition(tenant, "active")).status is TenantStatus.ACTIVE
    assert (await lifecycle.transition(tenant, "deleted")).next_states == ()
    with pytest.raises(Conflict, match="deletion is final"):
        await lifecycle.transition(tenant, "active")
    with pytest.raises(Conflict, match="deleted"):
        await lifecycle.create_tenant_lifecycle(tenant, "free_tier")


def test_policies_are_a_file_a_deployment_extends(tmp_path: Path) -> None:
    own = tmp_path / "tiers.toml"
    own.write_text("[enterprise]\nrequests_per_second = 5000\n[free.retention_days]\nmetrics = 3\n")
    loaded = load_policies(own)
    assert loaded[TenantTier.ENTERPRISE].requests_per_second == 5000
    assert loaded[TenantTier.ENTERPRISE].sessions == 1_000_000  # kept from the shipped file
    assert loaded[TenantTier.FREE].retention_days["metrics"] == 3
    for bad in (
        "[gold]\nsessions = 1\n",
        "[free]\nsessions = -1\n",
        "[free]\nunknown_quota = 1\n",
        "[free]\nsecurity_level = 'medium'\n",
        "not toml [",
    ):
        own.write_text(bad)
        with pytest.raises(ConfigError):
            load_policies(own)
    assert tier_of_policy("enterprise_tier") is TenantTier.ENTERPRISE
    with pytest.raises(InvalidInput):
        tier_of_policy("platinum_tier")


async def test_erasure_takes_the_platforms_provisioning_records_too(db: Database) -> None:
    tenant = f"gone-{uuid.uuid4().hex[:10]}"
    lifecycle = LifecycleManager(db)
    await lifecycle.create_tenant_lifecycle(tenant, "free_tier", admin_user="ada@label.example")
    await provisioned(db, lifecycle, tenant)
    saga = await WorkflowManager(db).by_idempotency_key(PLATFORM_TENANT, f"provision:{tenant}")
    assert saga is not None
    assert saga.input["admin_user"] == "ada@label.example"
    await lifecycle.transition(tenant, "deleted")
    report = await lifecycle.erase_tenant(tenant, actor="ops")
    assert report.erased
    assert report.platform_workflows_deleted == 1
    assert (
        await WorkflowManager(db).by_idempotency_key(PLATFORM_TENANT, f"provision:{tenant}") is None
    )
