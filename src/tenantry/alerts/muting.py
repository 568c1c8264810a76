"""Whether a tenant's alert is muted at a moment: Alertmanager's mute stage.

An alert is muted while one of the tenant's silences matches it (its silences as objects,
:mod:`tenantry.alerts.silences`, and those of its routing document) or, with routing, while one
of the tenant's firing alerts inhibits it (the routing's ``inhibit_rules``). The notifier asks
when a transition is queued; :class:`~tenantry.alerts.groups.AlertGroups` asks again when a
group is flushed, as Alertmanager does at every notification: a silence made after an alert
joined its group still mutes its repeats, and one that ended lets them through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.config import RoutingConfig, parse_routing
from tenantry.alerts.rules import AlertRule
from tenantry.alerts.silences import stored_silences
from tenantry.alerts.suppression import Silence, is_silenced

__all__ = ["Muting", "firing_labels", "load_muting", "load_routing"]


@dataclass(frozen=True, slots=True)
class Muting:
    """What mutes a tenant's alerts: its routing (None without), its stored silences that had
    not ended when loaded, and the labels of its firing alerts (inhibition's sources)."""

    routing: RoutingConfig | None
    silences: Sequence[Silence]
    firing: Sequence[Mapping[str, str]]

    def muted(self, labels: Mapping[str, str], at: datetime) -> bool:
        """Whether an alert with ``labels`` is muted at ``at``."""
        if is_silenced(labels, self.silences, at):
            return True
        return self.routing is not None and self.routing.mutes(labels, self.firing, at)


async def load_routing(conn: AsyncConnection) -> RoutingConfig | None:
    """The tenant's routing (in ``conn``'s transaction, the tenant's), None without one."""
    source = await conn.scalar(text("SELECT source FROM tenantry.alert_routing"))
    return None if source is None else parse_routing(str(source))


async def firing_labels(conn: AsyncConnection, *, grouped: bool = False) -> list[dict[str, str]]:
    """The labels of the tenant's firing alerts (the sources inhibition looks at); with
    ``grouped``, also of the alerts firing in its groups (the platform's: the tenants' copies
    its route holds, which are no rules of its own)."""
    rows = await conn.execute(
        text(
            "SELECT r.definition FROM tenantry.alert_rules r JOIN tenantry.alert_states s "
            "ON s.tenant_id = r.tenant_id AND s.rule_name = r.name WHERE s.status = 'firing'"
        )
    )
    found = [AlertRule.model_validate(d).alert_labels() for (d,) in rows]
    if grouped:
        groups = await conn.execute(text("SELECT alerts FROM tenantry.alert_groups"))
        for (alerts,) in groups:
            found += [dict(a["labels"]) for a in alerts.values() if a["status"] == "firing"]
    return found


async def load_muting(conn: AsyncConnection, since: datetime, *, platform: bool = False) -> Muting:
    """The tenant's :class:`Muting` for alerts at ``since`` or later (``platform``: the
    platform's, whose inhibition also looks at the copies in its groups)."""
    routing = await load_routing(conn)
    firing = await firing_labels(conn, grouped=platform) if routing is not None else []
    return Muting(routing, await stored_silences(conn, since), firing)
