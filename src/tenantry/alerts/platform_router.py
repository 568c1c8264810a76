"""HTTP routes of the platform's route for operators: the platform's own rules, receivers,
routing, deliveries and silences (:mod:`tenantry.alerts.platform_route`), for the service token
alone (no ``X-Tenant-ID``; ``alerts:read`` to read, ``alerts:write`` to change). Each does what
the tenant's route of the same name does (:mod:`tenantry.alerts.router`,
:mod:`tenantry.alerts.silences_router`), for :data:`~tenantry.context.PLATFORM_TENANT`. A
tenant's credentials are refused (401): no tenant reads or changes where the operators' alerts
go."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from tenantry.actions import ALERTS_READ, ALERTS_WRITE
from tenantry.alerts.manager import AlertManager
from tenantry.alerts.notify import AlertNotifier, Delivery, Receiver
from tenantry.alerts.router import (
    AlertOut,
    ReceiverBody,
    RoutingBody,
    RoutingOut,
    RuleOut,
    RulesBody,
    alerts_of,
    put_receiver,
    put_rules,
    rules_of,
)
from tenantry.alerts.silences import SilenceManager, SilenceState, SilenceView
from tenantry.alerts.silences_router import (
    SilenceBody,
    SilenceChange,
    SilenceFilter,
    create_for,
    list_for,
    update_for,
)
from tenantry.context import PLATFORM_TENANT
from tenantry.http import BACKEND, Route, problems, provided, require_platform
from tenantry.principal import Principal

__all__ = ["router"]

router = APIRouter(
    prefix="/platform", route_class=Route, responses=problems(*BACKEND), tags=["platform alerts"]
)
Reader = Annotated[Principal, require_platform(ALERTS_READ)]
Writer = Annotated[Principal, require_platform(ALERTS_WRITE)]
Alerts = Annotated[AlertManager, Depends(provided("alerts"))]
Notifier = Annotated[AlertNotifier, Depends(provided("notifier"))]
Silences = Annotated[SilenceManager, Depends(provided("silences"))]
ReceiverName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]
RuleName = Annotated[str, Path(min_length=1, max_length=128)]
SilenceId = Annotated[uuid.UUID, Path()]
P = PLATFORM_TENANT
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.put("/alerts/rules")
async def set_rules(body: RulesBody, caller: Writer, alerts: Alerts) -> list[RuleOut]:
    """Replace the platform's rules, over its own series (``breaker_open_max > 0``)."""
    return await put_rules(P, body, alerts, caller.actor)


@router.get("/alerts/rules")
async def list_rules(_: Reader, alerts: Alerts) -> list[RuleOut]:
    return await rules_of(P, alerts)


@router.delete("/alerts/rules/{rule_name}", status_code=NO_CONTENT, responses=problems(404))
async def delete_rule(rule_name: RuleName, caller: Writer, alerts: Alerts) -> Response:
    await alerts.delete_rule(P, rule_name, actor=caller.actor)
    return Response(status_code=NO_CONTENT)


@router.get("/alerts")
async def list_alerts(_: Reader, alerts: Alerts) -> list[AlertOut]:
    """The platform's own rules' alerts (the tenants' copies are in its groups and deliveries)."""
    return await alerts_of(P, alerts)


@router.put("/alerts/receivers/{receiver_name}")
async def set_receiver(
    receiver_name: ReceiverName, body: ReceiverBody, caller: Writer, notifier: Notifier
) -> Receiver:
    """Create or replace one of the platform's receivers (sealed with the platform's key)."""
    return await put_receiver(P, receiver_name, body, notifier, caller.actor)


@router.get("/alerts/receivers")
async def list_receivers(_: Reader, notifier: Notifier) -> list[Receiver]:
    return await notifier.receivers(P)


@router.delete("/alerts/receivers/{receiver_name}", status_code=NO_CONTENT, responses=problems(404))
async def delete_receiver(
    receiver_name: ReceiverName, caller: Writer, notifier: Notifier
) -> Response:
    await notifier.delete_receiver(P, receiver_name, actor=caller.actor)
    return Response(status_code=NO_CONTENT)


@router.get("/alerts/deliveries")
async def list_deliveries(_: Reader, notifier: Notifier) -> list[Delivery]:
    """The platform's latest alert messages and how their delivery went."""
    return await notifier.deliveries(P)


@router.put("/alerts/routing")
async def set_routing(body: RoutingBody, caller: Writer, notifier: Notifier) -> RoutingBody:
    """Set the platform's routing: from then on every tenant's alert is routed through it too,
    labelled ``tenant``; an invalid one changes nothing (422)."""
    await notifier.set_routing(P, body.routing, actor=caller.actor)
    return body


@router.get("/alerts/routing")
async def get_routing(_: Reader, notifier: Notifier) -> RoutingOut:
    return RoutingOut(routing=await notifier.routing(P))


@router.delete("/alerts/routing", status_code=NO_CONTENT)
async def delete_routing(caller: Writer, notifier: Notifier) -> Response:
    """No platform routing: the tenants' alerts are no longer copied (204 either way)."""
    await notifier.delete_routing(P, actor=caller.actor)
    return Response(status_code=NO_CONTENT)


@router.post("/alerts/silences", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_silence(body: SilenceBody, caller: Writer, silences: Silences) -> SilenceView:
    """A platform silence: it mutes the platform's copies (match ``tenant``), never a tenant's
    own messages."""
    return await create_for(P, body, silences, caller.actor)


@router.get("/alerts/silences")
async def list_silences(
    _: Reader, silences: Silences, state: SilenceState | None = None, matchers: SilenceFilter = None
) -> list[SilenceView]:
    return await list_for(P, silences, state, matchers)


@router.get("/alerts/silences/{silence_id}", responses=problems(404))
async def get_silence(silence_id: SilenceId, _: Reader, silences: Silences) -> SilenceView:
    return await silences.silence(P, str(silence_id))


@router.patch("/alerts/silences/{silence_id}", responses=problems(404, 409))
async def update_silence(
    silence_id: SilenceId, body: SilenceChange, caller: Writer, silences: Silences
) -> SilenceView:
    return await update_for(P, silence_id, body, silences, caller.actor)


@router.delete("/alerts/silences/{silence_id}", status_code=NO_CONTENT, responses=problems(404))
async def expire_silence(silence_id: SilenceId, caller: Writer, silences: Silences) -> Response:
    await silences.expire(P, str(silence_id), actor=caller.actor)
    return Response(status_code=NO_CONTENT)
