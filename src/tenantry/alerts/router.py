"""HTTP routes of the caller's tenant's alert rules and alerts: ``alerts:read`` to read,
``alerts:write`` to change. What a route does for a tenant id is a function of its own, shared
with the platform's routes for operators (:mod:`tenantry.alerts.platform_router`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tenantry.actions import ALERTS_READ, ALERTS_WRITE
from tenantry.alerts.config import MAX_CONFIG_TEXT
from tenantry.alerts.groups import AlertGroups, GroupView
from tenantry.alerts.manager import AlertManager, AlertView
from tenantry.alerts.notify import AlertNotifier, Delivery, Receiver
from tenantry.alerts.rules import MAX_RULES_TEXT, AlertRule
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.principal import Principal

__all__ = [
    "AlertOut",
    "ReceiverBody",
    "RoutingBody",
    "RoutingOut",
    "RuleOut",
    "RulesBody",
    "alerts_of",
    "put_receiver",
    "put_rules",
    "router",
    "rules_of",
]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["alerts"])
Reader = Annotated[Principal, require(ALERTS_READ)]
Writer = Annotated[Principal, require(ALERTS_WRITE)]
Alerts = Annotated[AlertManager, Depends(provided("alerts"))]
Notifier = Annotated[AlertNotifier, Depends(provided("notifier"))]
Groups = Annotated[AlertGroups, Depends(provided("groups"))]
ReceiverName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]


class RulesBody(BaseModel):
    """The tenant's rules as the documents write them: YAML, ``alerts: [...]``."""

    model_config = ConfigDict(extra="forbid")

    rules: str = Field(
        max_length=MAX_RULES_TEXT,
        examples=[
            "alerts:\n  - name: high_session_creation_latency\n"
            "    condition: session_creation_time_p95 > 100ms\n    severity: warning\n"
            "    for: 5m\n"
        ],
    )


class RuleOut(BaseModel):
    name: str
    condition: str
    severity: str
    for_seconds: float
    labels: dict[str, str]
    annotations: dict[str, str]

    @classmethod
    def of(cls, rule: AlertRule) -> RuleOut:
        return cls(
            name=rule.name,
            condition=rule.condition.source,
            severity=rule.severity.value,
            for_seconds=rule.hold_for.total_seconds(),
            labels=rule.labels,
            annotations=rule.annotations,
        )


class AlertOut(BaseModel):
    rule: RuleOut
    status: str
    active_since: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    evaluated_at: datetime | None
    observed: dict[str, float | str]

    @classmethod
    def of(cls, view: AlertView) -> AlertOut:
        state = view.state
        return cls(
            rule=RuleOut.of(view.rule),
            status=state.status.value,
            active_since=state.active_since,
            fired_at=state.fired_at,
            resolved_at=state.resolved_at,
            evaluated_at=state.evaluated_at,
            observed=view.observed,
        )


async def put_rules(
    tenant_id: str, body: RulesBody, alerts: AlertManager, actor: str | None
) -> list[RuleOut]:
    return [RuleOut.of(r) for r in await alerts.set_rules(tenant_id, body.rules, actor=actor)]


async def rules_of(tenant_id: str, alerts: AlertManager) -> list[RuleOut]:
    return [RuleOut.of(r) for r in await alerts.rules(tenant_id)]


async def alerts_of(tenant_id: str, alerts: AlertManager) -> list[AlertOut]:
    return [AlertOut.of(v) for v in await alerts.alerts(tenant_id)]


@router.put("/alerts/rules")
async def set_rules(body: RulesBody, caller: Writer, alerts: Alerts) -> list[RuleOut]:
    """Replace the tenant's rules; invalid rules change nothing (422 listing each problem)."""
    return await put_rules(caller.tenant_id, body, alerts, caller.actor)


@router.get("/alerts/rules")
async def list_rules(caller: Reader, alerts: Alerts) -> list[RuleOut]:
    return await rules_of(caller.tenant_id, alerts)


@router.delete(
    "/alerts/rules/{rule_name}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404)
)
async def delete_rule(
    rule_name: Annotated[str, Path(min_length=1, max_length=128)], caller: Writer, alerts: Alerts
) -> Response:
    await alerts.delete_rule(caller.tenant_id, rule_name, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alerts")
async def list_alerts(caller: Reader, alerts: Alerts) -> list[AlertOut]:
    """Every rule's alert: inactive, pending (its condition holds, not yet ``for`` long),
    firing or resolved, with the values its condition last read."""
    return await alerts_of(caller.tenant_id, alerts)


class ReceiverBody(BaseModel):
    """Where alerts go: an incoming webhook (``secret`` is its URL) or a bot token (``secret``)
    and its ``channel``. The secret is sealed with the tenant's key and never shown again."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "bot"]
    secret: str = Field(
        min_length=1,
        max_length=2000,
        examples=["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
    )
    channel: str | None = Field(default=None, max_length=200)


async def put_receiver(
    tenant_id: str, name: str, body: ReceiverBody, notifier: AlertNotifier, actor: str | None
) -> Receiver:
    webhook = body.secret if body.kind == "webhook" else None
    token = body.secret if body.kind == "bot" else None
    return await notifier.set_receiver(
        tenant_id, name, webhook_url=webhook, bot_token=token, channel=body.channel, actor=actor
    )


@router.put("/alerts/receivers/{receiver_name}")
async def set_receiver(
    receiver_name: ReceiverName, body: ReceiverBody, caller: Writer, notifier: Notifier
) -> Receiver:
    """Create or replace a receiver; a rule's ``receiver`` label names it (else ``default``)."""
    return await put_receiver(caller.tenant_id, receiver_name, body, notifier, caller.actor)


@router.get("/alerts/receivers")
async def list_receivers(caller: Reader, notifier: Notifier) -> list[Receiver]:
    return await notifier.receivers(caller.tenant_id)


@router.delete(
    "/alerts/receivers/{receiver_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404),
)
async def delete_receiver(
    receiver_name: ReceiverName, caller: Writer, notifier: Notifier
) -> Response:
    await notifier.delete_receiver(caller.tenant_id, receiver_name, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alerts/deliveries")
async def list_deliveries(caller: Reader, notifier: Notifier) -> list[Delivery]:
    """The latest alert messages and how their delivery went (queued, sent, failed)."""
    return await notifier.deliveries(caller.tenant_id)


class GroupOut(BaseModel):
    """An aggregation group of the tenant's routed alerts (Alertmanager's alert groups)."""

    id: str
    group_key: str
    receiver: str
    group_wait_seconds: float
    group_interval_seconds: float
    repeat_interval_seconds: float
    created_at: datetime
    flushed_at: datetime | None
    notified_at: datetime | None
    next_flush_at: datetime
    #: ``{alert: "firing" | "resolved"}``.
    alerts: dict[str, str]

    @classmethod
    def of(cls, view: GroupView) -> GroupOut:
        return cls(
            id=view.id,
            group_key=view.group_key,
            receiver=view.receiver,
            group_wait_seconds=view.timing.group_wait.total_seconds(),
            group_interval_seconds=view.timing.group_interval.total_seconds(),
            repeat_interval_seconds=view.timing.repeat_interval.total_seconds(),
            created_at=view.created_at,
            flushed_at=view.flushed_at,
            notified_at=view.notified_at,
            next_flush_at=view.next_flush_at,
            alerts=view.alerts,
        )


@router.get("/alerts/groups")
async def list_groups(
    caller: Reader,
    groups: Groups,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[GroupOut]:
    """The aggregation groups the tenant's routed alerts wait in, the next due first."""
    return [GroupOut.of(v) for v in await groups.groups(caller.tenant_id, limit)]


class RoutingBody(BaseModel):
    """The tenant's alert routing as Alertmanager writes it: ``route``, ``inhibit_rules``,
    ``silences`` (YAML)."""

    model_config = ConfigDict(extra="forbid")

    routing: str = Field(
        max_length=MAX_CONFIG_TEXT,
        examples=[
            "route:\n  receiver: default\n  routes:\n"
            "    - matchers: ['severity=\"critical\"']\n      receiver: ops\n"
        ],
    )


@router.put("/alerts/routing")
async def set_routing(body: RoutingBody, caller: Writer, notifier: Notifier) -> RoutingBody:
    """Set the routing; an invalid one changes nothing (422 naming what is wrong)."""
    await notifier.set_routing(caller.tenant_id, body.routing, actor=caller.actor)
    return body


class RoutingOut(BaseModel):
    """The tenant's routing as it set it, or null (each rule's ``receiver`` label, else
    ``default``)."""

    routing: str | None


@router.get("/alerts/routing")
async def get_routing(caller: Reader, notifier: Notifier) -> RoutingOut:
    return RoutingOut(routing=await notifier.routing(caller.tenant_id))


@router.delete("/alerts/routing", status_code=status.HTTP_204_NO_CONTENT)
async def delete_routing(caller: Writer, notifier: Notifier) -> Response:
    """Back to each rule's ``receiver`` label or ``default`` (204 whether or not one was set)."""
    await notifier.delete_routing(caller.tenant_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
