"""The platform's route for operators: every tenant's alerts, copied to the platform's routing.

The reserved tenant ``platform`` (:data:`~tenantry.context.PLATFORM_TENANT`, the service
token's alone: ``/platform/alerts/...``) has receivers, a routing document and silences of its
own, kept as any tenant's are. When it has a routing document, each tenant's transition to
firing or resolved is routed through it too, as a copy:

- the copy's labels are the alert's with ``tenant`` set to the tenant's id: a rule's own label
  named ``tenant`` is overwritten, so a tenant cannot pass its alerts off as another's;
- its message is the default one (:func:`~tenantry.alerts.notify.message_of`) with a line
  naming the tenant, never the tenant's own template (the template is the tenant's data);
- it joins the platform's aggregation groups (``alert_groups`` rows of the platform), keyed by
  the platform route's ``group_by`` (``tenant`` among them when it says so), named
  ``<tenant>/<rule>`` there so that two tenants' rules of one name stay two alerts; the
  dispatcher flushes them and delivers to the platform's receivers;
- the platform's silences and inhibition rules mute the copy only, a tenant's mute its own
  message only. Inhibition's sources are the platform's own firing alerts and the copies
  firing in its groups (a copy the platform muted, or that reached no receiver, is none);
- a threat of HIGH or above is routed as an alert ``{alertname: "threat", severity: <level>,
  tenant: <tenant>}``, one message to each receiver reached (not grouped: a threat has no
  resolution that would end its group).

Each copy is written in the platform's scope, in a transaction of its own after the tenant's
(row-level security keeps each on its side): a process stopping between the two loses the
copy, never the tenant's own message. Without platform routing nothing is copied.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.attempts import SlackMessage
from tenantry.alerts.groups import GroupedAlert, join
from tenantry.alerts.joining import OUTBOX_INSERT, joins, receiver_names
from tenantry.alerts.muting import load_muting
from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database

__all__ = ["TENANT_LABEL", "platform_copy", "platform_labels", "route_copies", "route_threat"]

#: The label naming the tenant an alert's platform copy came from.
TENANT_LABEL: Final = "tenant"
_T = TypeVar("_T")


def platform_labels(tenant_id: str, labels: dict[str, str]) -> dict[str, str]:
    """``labels`` with ``tenant`` set to ``tenant_id``, whatever the alert said it was."""
    return {**labels, TENANT_LABEL: tenant_id}


def platform_copy(tenant_id: str, alert: GroupedAlert) -> GroupedAlert:
    """The platform's copy of ``tenant_id``'s ``alert`` (its message already the copy's)."""
    return replace(
        alert,
        name=f"{tenant_id}/{alert.name}",
        labels=platform_labels(tenant_id, dict(alert.labels)),
    )


async def _as_platform(database: Database, work: Callable[[AsyncConnection], Awaitable[_T]]) -> _T:
    """``work`` in a platform transaction, in a context of its own: the caller may be in a
    tenant's scope (a threat raised during an evaluation), which must not follow."""

    async def run() -> _T:
        with tenant_scope(PLATFORM_TENANT):
            async with database.tenant_transaction() as conn:
                return await work(conn)

    return await asyncio.create_task(run(), context=contextvars.Context())


async def route_copies(database: Database, copies: Sequence[GroupedAlert]) -> list[str]:
    """Put ``copies`` (:func:`platform_copy`) in the platform's groups its routing reaches;
    the groups joined (ids). Nothing when the platform has no routing."""
    if not copies:
        return []

    async def work(conn: AsyncConnection) -> list[str]:
        muting = await load_muting(conn, min(c.at for c in copies), platform=True)
        if muting.routing is None:
            return []
        names = await receiver_names(conn)
        joined: list[str] = []
        for match, alert in joins(muting.routing, names, muting, copies):
            group = await join(conn, PLATFORM_TENANT, match, alert)
            joined += [] if group in joined else [group]
        return joined

    return await _as_platform(database, work)


async def route_threat(
    database: Database,
    tenant_id: str,
    level: str,
    message: SlackMessage,
    at: datetime,
) -> list[str]:
    """Queue ``message`` (a threat of ``tenant_id`` at ``level``) to each platform receiver
    its labels reach, unless muted; the outbox rows queued."""

    async def work(conn: AsyncConnection) -> list[str]:
        muting = await load_muting(conn, at, platform=True)
        labels = platform_labels(tenant_id, {"alertname": "threat", "severity": level})
        if muting.routing is None or muting.muted(labels, at):
            return []
        names = await receiver_names(conn)
        reached = muting.routing.receivers_for(labels, muting.firing, at)
        body = json.dumps({"text": message.text, "blocks": list(message.blocks)})
        rows = [
            {
                "t": PLATFORM_TENANT,
                "id": f"ao_{uuid.uuid4().hex}",
                "receiver": receiver,
                "target_key": f"{PLATFORM_TENANT}:{receiver}",
                "rule": f"{tenant_id}/threat:{level}",
                "transition": "firing",
                "message": body,
            }
            for receiver in reached
            if receiver in names
        ]
        if rows:
            await conn.execute(OUTBOX_INSERT, rows)
        return [r["id"] for r in rows]

    return await _as_platform(database, work)
