"""Provisioning a tenant, as a saga: ``tenant_provisioning`` (registered with the process's
workflow definitions when this module is imported).

No step is transactional: each writes the new tenant's tables, or the registry, through the
managers in transactions of their own (a transaction is one tenant's, and the saga's is the
platform's), and each is idempotent: run again after a crash, it finds what it did and does
nothing more (the tenant exists, the level is set, the role is held, the rules are the same).

The saga belongs to the platform (its rows are the ``platform`` tenant's: the new tenant is not
active while it runs, and only active tenants' workflows are claimed). Its input names the
tenant, its display name, its tier and, optionally, the user invited as its first admin. Steps,
each safe to run again:

1. ``register``: the registry row, status ``provisioning`` (a tenant that exists
   already is kept as it is; a deleted one fails the saga: deletion is final);
2. ``keys``: the tenant's keys, created at its tier's security level;
3. ``quotas``: the tier's quotas and retention recorded as the tenant's managed
   setting ``lifecycle.policy`` (what ``GET /settings`` shows it; enforcement reads the tier);
4. ``roles``: the default role of users without one (``viewer``) and the ``admin`` role for the
   invited user (the invitation: that user's first session, opened by the backend, is an
   admin's); compensated by taking the role back;
5. ``alerting``: a default Slack template (``tenantry_default``, English and German; other
   languages from the tenant's translation memory), default alert rules that use it (request
   errors and latency from the tenant's own series) and a routing that sends every alert,
   grouped by name, to the receiver ``default`` (a tenant adds the receiver; until then nothing
   is sent); compensated by removing all three;
6. ``activate``: status ``active``.

A step that keeps failing compensates what is compensable; the tenant stays ``provisioning``
(refused at the boundary), and ``create_tenant_lifecycle`` starts the saga again.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from tenantry.access.manager import AccessControl
from tenantry.alerts import AlertSeverity, SlackFixtureEntity, SlackFixtureManager, TenantContext
from tenantry.alerts.manager import AlertManager
from tenantry.alerts.notify import AlertNotifier
from tenantry.context import TENANT_ID_PATTERN
from tenantry.errors import TenantExists
from tenantry.keys import Keyring
from tenantry.lifecycle.policies import policies
from tenantry.tenants import TenantRegistry, TenantSettings, TenantStatus, TenantTier
from tenantry.workflows import (
    RetryPolicy,
    Step,
    StepContext,
    StepFailed,
    WorkflowDefinition,
    default_registry,
)

__all__ = [
    "DEFAULT_FIXTURE",
    "DEFAULT_ROUTING",
    "DEFAULT_RULES",
    "POLICY_SETTING",
    "PROVISIONING",
    "ProvisionInput",
]

#: The managed setting that shows a tenant the quotas and retention it was provisioned with.
POLICY_SETTING: Final = "lifecycle.policy"
DEFAULT_RULES: Final = """
alerts:
  - name: request_errors
    condition: http_request_seconds_count{status="5xx"} > 300
    for: 5m
    severity: warning
    annotations:
      summary: more than 300 failed requests in five minutes, for five minutes
      fixture: tenantry_default
  - name: slow_requests
    condition: http_request_seconds_p95 > 1s
    for: 10m
    severity: warning
    annotations:
      summary: the 95th percentile of request time above one second for ten minutes
      fixture: tenantry_default
"""
DEFAULT_ROUTING: Final = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
"""
#: The default Slack template of the default rules (its other languages come from the tenant's
#: translation memory or translator, marked machine-made, as for any template).
DEFAULT_FIXTURE: Final = SlackFixtureEntity(
    name="tenantry_default",
    severity=AlertSeverity.WARNING,
    default_locale="en-US",
    locales={
        "en-US": {
            "title": "{{ alertname }}: {{ status }}",
            "description": "{{ summary }} (at {{ at | datetime }})",
            "action_required": "Look at the tenant's requests and errors",
        },
        "de-DE": {
            "title": "{{ alertname }}: {{ status }}",
            "description": "{{ summary }} (um {{ at | datetime }})",
            "action_required": "Anfragen und Fehler des Mandanten prüfen",
        },
    },
)
_RETRY: Final = RetryPolicy(max_attempts=5, initial=0.5, max_delay=30.0)
_ACTOR: Final = "tenantry.lifecycle"


class ProvisionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    display_name: str = Field(min_length=1, max_length=200)
    tier: TenantTier
    admin_user: str | None = Field(default=None, min_length=1, max_length=200)


def _tenant(ctx: StepContext) -> str:
    return str(ctx.input["tenant_id"])


async def _register(ctx: StepContext) -> dict[str, Any]:
    registry = TenantRegistry(ctx.service("database"))
    try:
        await registry.create(_tenant(ctx), ctx.input["display_name"], tier=ctx.input["tier"],
                              status=TenantStatus.PROVISIONING, actor=_ACTOR)  # fmt: skip
    except TenantExists:
        found = await registry.get(_tenant(ctx))
        if found.status is TenantStatus.DELETED:
            raise StepFailed(f"tenant {found.id!r} is deleted: deletion is final") from None
        return {"created": False, "status": found.status.value}
    return {"created": True, "status": TenantStatus.PROVISIONING.value}


async def _keys(ctx: StepContext) -> dict[str, Any]:
    tenant = _tenant(ctx)
    level = policies()[TenantTier(ctx.input["tier"])].security_level
    keyring = Keyring(ctx.service("database"))
    if await keyring.security_level(tenant) != level:
        await keyring.set_security_level(tenant, level, actor=_ACTOR)
    await keyring.load(tenant)  # its first keys, at that level, if it had none
    return {"security_level": level.value}


async def _quotas(ctx: StepContext) -> dict[str, Any]:
    policy = policies()[TenantTier(ctx.input["tier"])].as_dict()
    settings = TenantSettings(_tenant(ctx), ctx.service("database"))
    await settings.set_managed(POLICY_SETTING, policy, actor=_ACTOR)
    return {"policy": policy["tier"]}


async def _roles(ctx: StepContext) -> dict[str, Any]:
    access = AccessControl(ctx.service("database"))
    tenant = _tenant(ctx)
    await access.set_default_role(tenant, "viewer", actor=_ACTOR)
    admin = ctx.input.get("admin_user")
    granted = bool(admin) and await access.grant(tenant, str(admin), "admin", actor=_ACTOR)
    return {"default_role": "viewer", "admin": admin, "granted": granted}


async def _unroles(ctx: StepContext) -> dict[str, Any]:
    if ctx.output.get("granted"):
        access = AccessControl(ctx.service("database"))
        await access.revoke(_tenant(ctx), str(ctx.output["admin"]), "admin", actor=_ACTOR)
    return {"revoked": bool(ctx.output.get("granted"))}


async def _alerting(ctx: StepContext) -> dict[str, Any]:
    database = ctx.service("database")
    fixtures = SlackFixtureManager(TenantContext(_tenant(ctx)), database)
    if not any(f.name == DEFAULT_FIXTURE.name for f in await fixtures.list_fixtures()):
        await fixtures.create_fixture(DEFAULT_FIXTURE, actor=_ACTOR)
    rules = await AlertManager(database).set_rules(_tenant(ctx), DEFAULT_RULES, actor=_ACTOR)
    await AlertNotifier(database).set_routing(_tenant(ctx), DEFAULT_ROUTING, actor=_ACTOR)
    return {"rules": [r.name for r in rules], "routing": True, "fixture": DEFAULT_FIXTURE.name}


async def _unalerting(ctx: StepContext) -> dict[str, Any]:
    database = ctx.service("database")
    await AlertManager(database).set_rules(_tenant(ctx), "alerts: []\n", actor=_ACTOR)
    await AlertNotifier(database).delete_routing(_tenant(ctx), actor=_ACTOR)
    fixtures = SlackFixtureManager(TenantContext(_tenant(ctx)), database)
    for found in await fixtures.list_fixtures():
        if found.name == DEFAULT_FIXTURE.name:
            await fixtures.delete_fixture(found.id, actor=_ACTOR)
    return {"removed": True}


async def _activate(ctx: StepContext) -> dict[str, Any]:
    registry = TenantRegistry(ctx.service("database"))
    tenant = await registry.get(_tenant(ctx))
    if tenant.status is TenantStatus.PROVISIONING:
        await registry.update_status(tenant.id, TenantStatus.ACTIVE, actor=_ACTOR)
    elif tenant.status is not TenantStatus.ACTIVE:
        raise StepFailed(f"tenant {tenant.id!r} is {tenant.status.value}: not activated")
    return {"status": TenantStatus.ACTIVE.value}


PROVISIONING: Final = default_registry().register(
    WorkflowDefinition(
        "tenant_provisioning",
        (
            Step("register", _register, retry=_RETRY, timeout=30),
            Step("keys", _keys, retry=_RETRY, timeout=60),
            Step("quotas", _quotas, retry=_RETRY, timeout=30),
            Step("roles", _roles, _unroles, _RETRY, 30),
            Step("alerting", _alerting, _unalerting, _RETRY, 30),
            Step("activate", _activate, retry=_RETRY, timeout=30),
        ),
        input_model=ProvisionInput,
        description="register a tenant, create its keys, record its quotas, give its default "
        "roles and first admin, set its default alerting, activate it",
        platform_only=True,  # its steps act on the tenant its input names
    )
)
