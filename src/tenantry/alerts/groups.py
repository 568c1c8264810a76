"""AlertGroups: a routed alert waits in its aggregation group, and a group notifies as one
Slack message, at the times Alertmanager would.

- **Joining.** When a tenant has routing, a transition to firing joins, for each route its
  labels reach, the group of that route, its receiver and the values of the route's
  ``group_by`` labels (``['...']``: all labels), as Alertmanager keys it
  (:func:`~tenantry.alerts.routing.route`). The group is a row of ``alert_groups``, written in
  the evaluation's transaction: it holds the route's timings, the group's alerts (each with its
  status, labels, summary and its own message) and when it is flushed next. A transition to
  resolved marks the alert resolved in the groups holding it (it creates none).
- **Flushing.** :meth:`AlertGroups.flush_due` takes a tenant's due groups (``FOR UPDATE SKIP
  LOCKED``: of several processes, one flushes a group, the others pass it by) and asks
  :func:`~tenantry.alerts.grouping.flush` whether each notifies: the first time
  ``group_wait`` after the group was created (after its first alert's evaluation time, so a
  group that became due while the service was down flushes at once), then every
  ``group_interval`` when something changed, and again after ``repeat_interval`` while it
  fires unchanged. A notification is one outbox row in the same transaction as the group's new
  state: a group of one alert sends that alert's own message (its template, if it has one);
  several alerts make one message with the firing and resolved counts and a line for each
  alert (:func:`group_message`, within Slack's limits by
  :func:`~tenantry.alerts.blocks.build_message`). A notification listing only resolved alerts
  replies in the thread of the group's last firing message (Web API receivers).
- **Muting.** At each flush the group's alerts muted at that moment (a silence, an inhibiting
  firing alert: :mod:`~tenantry.alerts.muting`) are left out, as Alertmanager's mute stage
  does; a group whose alerts are all muted notifies nothing and keeps what it last notified.
- **Ending.** After a flush the resolved alerts leave the group (Alertmanager's
  ``DeleteIfNotModified``); a group with no alert left is deleted.

A queued message counts as notified: the outbox retries it until Slack has it or refuses it for
good. The :class:`~tenantry.alerts.dispatch.AlertDispatcher` flushes a tenant's due groups at
each visit, before it delivers the outbox.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.attempts import SlackMessage
from tenantry.alerts.blocks import AlertMessage, build_message
from tenantry.alerts.grouping import Flush, GroupState, flush
from tenantry.alerts.muting import Muting, load_muting
from tenantry.alerts.routing import RouteMatch, RouteTiming
from tenantry.alerts.sandbox import escape_mrkdwn
from tenantry.context import PLATFORM_TENANT, tenant_scope, validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database

__all__ = ["AlertGroups", "GroupFlush", "GroupView", "GroupedAlert", "group_message", "join"]

#: An alert's line in a group message is cut to this many characters.
MAX_LINE_CHARS: Final = 500
_COLUMNS: Final = (
    "id, group_key, receiver, group_labels, group_wait, group_interval, repeat_interval, "
    "created_at, flushed_at, notified_at, notified_firing, notified_resolved, alerts, "
    "next_flush_at"
)


@dataclass(frozen=True, slots=True)
class GroupedAlert:
    """What a transition puts in its groups: the alert (a rule's), its status and labels, its
    summary line's parts, and its own message (sent when it is alone in a notification)."""

    name: str
    status: str
    labels: Mapping[str, str]
    severity: str
    summary: str
    values: str
    at: datetime
    message: SlackMessage

    def stored(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "severity": self.severity,
            "summary": self.summary,
            "values": self.values,
            "at": self.at.isoformat(),
            "message": {"text": self.message.text, "blocks": list(self.message.blocks)},
        }


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as reads show it."""

    id: str
    group_key: str
    receiver: str
    timing: RouteTiming
    created_at: datetime
    flushed_at: datetime | None
    notified_at: datetime | None
    next_flush_at: datetime
    #: ``{alert: status}``.
    alerts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupFlush:
    """One flush of a tenant's due groups: the groups flushed, the outbox rows queued, the
    groups deleted, whether more were due, and when the next remaining group is due."""

    tenant_id: str
    flushed: int = 0
    queued: list[str] = field(default_factory=list)
    removed: int = 0
    more: bool = False
    next_at: datetime | None = None


def _group_id(match: RouteMatch) -> str:
    key = "\x00".join((match.route.path, match.receiver, match.group_key))
    return "ag_" + hashlib.sha256(key.encode()).hexdigest()[:32]


async def join(
    conn: AsyncConnection, tenant_id: str, match: RouteMatch, alert: GroupedAlert
) -> str:
    """Put ``alert`` in its group at ``match`` (created at the alert's time if it is firing and
    the group does not exist; a resolved alert only updates the groups holding it); the group's
    id. Runs in the caller's (the tenant's) transaction."""
    group_id = _group_id(match)
    stored = json.dumps({alert.name: alert.stored()})
    if alert.status != "firing":
        await conn.execute(
            text(
                "UPDATE tenantry.alert_groups SET alerts = alerts || CAST(:a AS jsonb), "
                "updated_at = now() WHERE id = :id AND (alerts -> :name) IS NOT NULL"
            ),
            {"id": group_id, "a": stored, "name": alert.name},
        )
        return group_id
    timing = match.route.timing
    await conn.execute(
        text(
            "INSERT INTO tenantry.alert_groups (tenant_id, id, group_key, route_path, receiver, "
            "group_labels, group_wait, group_interval, repeat_interval, created_at, alerts, "
            "next_flush_at) VALUES (:t, :id, :key, :path, :receiver, CAST(:labels AS jsonb), "
            ":wait, :interval, :repeat, :at, CAST(:a AS jsonb), :due) "
            "ON CONFLICT (tenant_id, id) DO UPDATE SET "
            "alerts = tenantry.alert_groups.alerts || excluded.alerts, updated_at = now()"
        ),
        {
            "t": tenant_id,
            "id": group_id,
            "key": match.group_key,
            "path": match.route.path,
            "receiver": match.receiver,
            "labels": json.dumps(dict(match.group_labels)),
            "wait": timing.group_wait,
            "interval": timing.group_interval,
            "repeat": timing.repeat_interval,
            "at": alert.at,
            "a": stored,
            "due": alert.at + timing.group_wait,
        },
    )
    return group_id


def _line(alert: Mapping[str, Any], name: str) -> str:
    values = f" ({alert['values']})" if alert.get("values") else ""
    line = f"{alert.get('severity', '')} {name}: {alert.get('summary', '')}{values}"
    line = " ".join(line.split())
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - 1] + "…"
    return "• " + escape_mrkdwn(line)


def group_message(
    receiver: str,
    group_labels: Mapping[str, str],
    alerts: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> SlackMessage:
    """The message of a notification listing ``alerts`` (``{name: stored alert}``): an alert
    alone sends its own message; several make one, firing ones first."""
    if len(alerts) == 1:
        (only,) = alerts.values()
        stored = only["message"]
        return SlackMessage(text=stored["text"], blocks=stored.get("blocks", ()))
    firing = sorted(n for n, a in alerts.items() if a["status"] == "firing")
    resolved = sorted(n for n, a in alerts.items() if a["status"] != "firing")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(group_labels.items())) or receiver
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    parts = []
    if firing:
        parts.append(f"*Firing: {len(firing)}*\n" + "\n".join(_line(alerts[n], n) for n in firing))
    if resolved:
        lines = "\n".join(_line(alerts[n], n) for n in resolved)
        parts.append(f"*Resolved: {len(resolved)}*\n{lines}")
    built = build_message(
        AlertMessage(
            title=escape_mrkdwn(f"[{state}] {shown}"),
            description="\n\n".join(parts),
            context=[
                f"{len(firing)} firing, {len(resolved)} resolved",
                escape_mrkdwn(now.isoformat()),
            ],
        )
    )
    return SlackMessage(text=built.text, blocks=built.blocks)


class AlertGroups(UsesDatabase):
    """The tenants' aggregation groups; see the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = 100,
    ) -> None:
        self._database, self.clock, self.batch = database, clock, batch

    async def flush_due(self, tenant_id: str, now: datetime | None = None) -> GroupFlush:
        """Flush ``tenant_id``'s groups due at ``now`` (the clock's time by default), in a
        transaction of its own."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await self.flush_in(conn, tenant_id, now)

    async def flush_in(
        self, conn: AsyncConnection, tenant_id: str, now: datetime | None = None
    ) -> GroupFlush:
        """:meth:`flush_due` in the caller's transaction (the tenant's): the dispatcher's, so
        that the messages queued are claimed and sent in the same visit."""
        now = self.clock() if now is None else now
        queued: list[str] = []
        removed = 0
        rows = (
            (
                await conn.execute(
                    text(
                        f"SELECT {_COLUMNS} FROM tenantry.alert_groups "
                        "WHERE next_flush_at <= :now ORDER BY next_flush_at, id LIMIT :n "
                        "FOR UPDATE SKIP LOCKED"
                    ),
                    {"now": now, "n": self.batch},
                )
            )
            .mappings()
            .all()
        )
        platform = tenant_id == PLATFORM_TENANT  # its inhibition also looks at its copies
        muting = await load_muting(conn, now, platform=platform) if rows else Muting(None, (), ())
        for row in rows:
            outbox_id, gone = await self._flush_one(conn, tenant_id, row, now, muting)
            queued += [outbox_id] if outbox_id else []
            removed += gone
        next_at = await conn.scalar(text("SELECT min(next_flush_at) FROM tenantry.alert_groups"))
        return GroupFlush(tenant_id, len(rows), queued, removed, len(rows) == self.batch, next_at)

    async def _flush_one(
        self, conn: AsyncConnection, tenant_id: str, row: RowMapping, now: datetime, muting: Muting
    ) -> tuple[str | None, bool]:
        """Flush one locked group: the outbox row queued (if it notified), whether it is gone.
        Its alerts muted at ``now`` (:mod:`~tenantry.alerts.muting`) are left out of the
        notification, as Alertmanager's mute stage does; when every alert is muted the group is
        flushed without notifying, and what it last notified is kept."""
        timing = RouteTiming(row["group_wait"], row["group_interval"], row["repeat_interval"])
        state = GroupState(
            row["created_at"],
            row["flushed_at"],
            row["notified_at"],
            frozenset(row["notified_firing"]),
            frozenset(row["notified_resolved"]),
        )
        alerts: dict[str, dict[str, Any]] = dict(row["alerts"])
        firing = frozenset(n for n, a in alerts.items() if a["status"] == "firing")
        shown = {n: a for n, a in alerts.items() if not muting.muted(a["labels"], now)}
        told = firing & shown.keys()
        if shown:
            outcome = flush(state, now, timing, firing=told, resolved=frozenset(shown) - told)
        else:  # all muted: Alertmanager's pipeline stops before deduplication
            outcome = Flush(False, "", replace(state, flushed_at=now), now + timing.group_interval)
        outbox_id = None
        if outcome.notify:
            outbox_id = await self._queue(conn, tenant_id, row, shown, now, firing=bool(told))
        kept = {n: a for n, a in alerts.items() if n in firing}
        if not kept:
            await conn.execute(
                text("DELETE FROM tenantry.alert_groups WHERE id = :id"), {"id": row["id"]}
            )
            return outbox_id, True
        new = outcome.state
        await conn.execute(
            text(
                "UPDATE tenantry.alert_groups SET flushed_at = :flushed, notified_at = :notified, "
                "notified_firing = CAST(:nf AS text[]), notified_resolved = CAST(:nr AS text[]), "
                "alerts = CAST(:alerts AS jsonb), next_flush_at = :due, updated_at = now() "
                "WHERE id = :id"
            ),
            {
                "id": row["id"],
                "flushed": new.flushed_at,
                "notified": new.notified_at,
                "nf": sorted(new.notified_firing),
                "nr": sorted(new.notified_resolved),
                "alerts": json.dumps(kept),
                "due": outcome.next_at,
            },
        )
        return outbox_id, False

    async def _queue(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        row: RowMapping,
        alerts: Mapping[str, Mapping[str, Any]],
        now: datetime,
        *,
        firing: bool,
    ) -> str:
        message = group_message(row["receiver"], row["group_labels"], alerts, now)
        body: dict[str, Any] = {"text": message.text, "blocks": list(message.blocks)}
        if not firing:  # all resolved: in the thread of the group's last firing message
            thread = await conn.scalar(
                text(
                    "SELECT slack_ts FROM tenantry.alert_outbox WHERE group_id = :g AND "
                    "receiver = :r AND transition = 'firing' AND status = 'sent' AND "
                    "slack_ts IS NOT NULL ORDER BY sent_at DESC LIMIT 1"
                ),
                {"g": row["id"], "r": row["receiver"]},
            )
            if thread is not None:
                body["thread_ts"] = str(thread)
        names = ",".join(sorted(alerts))
        outbox_id = f"ao_{uuid.uuid4().hex}"
        await conn.execute(
            text(
                "INSERT INTO tenantry.alert_outbox (tenant_id, id, receiver, target_key, "
                "rule_name, transition, message, group_id) VALUES (:t, :id, :r, :k, :rule, "
                ":transition, CAST(:m AS jsonb), :g)"
            ),
            {
                "t": tenant_id,
                "id": outbox_id,
                "r": row["receiver"],
                "k": f"{tenant_id}:{row['receiver']}",
                "rule": names if len(names) <= 200 else names[:199] + "…",
                "transition": "firing" if firing else "resolved",
                "m": json.dumps(body),
                "g": row["id"],
            },
        )
        return outbox_id

    async def groups(self, tenant_id: str, limit: int = 1000) -> list[GroupView]:
        """``tenant_id``'s groups, the next due first (at most ``limit``)."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = await conn.execute(
                    text(
                        f"SELECT {_COLUMNS} FROM tenantry.alert_groups "
                        "ORDER BY next_flush_at, id LIMIT :n"
                    ),
                    {"n": max(0, limit)},
                )
                return [_view(r) for r in rows.mappings()]


def _view(row: RowMapping) -> GroupView:
    return GroupView(
        id=row["id"],
        group_key=row["group_key"],
        receiver=row["receiver"],
        timing=RouteTiming(row["group_wait"], row["group_interval"], row["repeat_interval"]),
        created_at=row["created_at"],
        flushed_at=row["flushed_at"],
        notified_at=row["notified_at"],
        next_flush_at=row["next_flush_at"],
        alerts={n: a["status"] for n, a in dict(row["alerts"]).items()},
    )
