"""Which aggregation groups a routed alert joins, given the tenant's routing and what mutes its
alerts (:mod:`tenantry.alerts.muting`), and the receivers and outbox they are queued to.

Shared by a tenant's own routing (:meth:`~tenantry.alerts.notify.AlertNotifier.enqueue`) and
the platform's route for operators (:mod:`tenantry.alerts.platform_route`): the same rules,
each in its own tenant's scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.config import RoutingConfig
from tenantry.alerts.groups import GroupedAlert
from tenantry.alerts.muting import Muting
from tenantry.alerts.routing import RouteMatch, route

__all__ = ["OUTBOX_INSERT", "joins", "receiver_names"]

#: Queues one message in the outbox (the transaction's tenant's).
OUTBOX_INSERT: Final = text(
    "INSERT INTO tenantry.alert_outbox (tenant_id, id, receiver, target_key, rule_name, "
    "transition, message) VALUES (:t, :id, :receiver, :target_key, :rule, :transition, "
    "CAST(:message AS jsonb))"
)


def joins(
    routing: RoutingConfig,
    names: set[str],
    muting: Muting,
    alerts: Sequence[GroupedAlert],
) -> list[tuple[RouteMatch, GroupedAlert]]:
    """The groups each alert joins, in one order so that two writers cannot deadlock: at each
    route its labels reach whose receiver exists, unless ``muting`` mutes it. A receiver that
    several routes reach (``continue``) gets the alert once, in the group of the first: a tree
    of many routes cannot multiply one alert's messages. A resolution is never muted: it only
    updates the groups that hold its alert (a group would otherwise keep repeating an alert
    resolved under a silence), and joins none that does not."""
    found: dict[tuple[str, str, str], tuple[RouteMatch, GroupedAlert]] = {}
    for alert in alerts:
        labels = alert.labels
        if muting.muted(labels, alert.at) and alert.status != "resolved":
            continue
        reached: set[str] = set()
        for match in route(routing.tree, labels):
            if match.receiver in names and match.receiver not in reached:
                reached.add(match.receiver)
                found[(match.route.path, match.group_key, alert.name)] = (match, alert)
    return [found[key] for key in sorted(found)]


async def receiver_names(conn: AsyncConnection) -> set[str]:
    """The names of the transaction's tenant's receivers."""
    rows = await conn.execute(text("SELECT name FROM tenantry.alert_receivers"))
    return {name for (name,) in rows}
