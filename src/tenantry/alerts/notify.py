"""AlertNotifier: a tenant's receivers, and its alerts' messages queued in the durable outbox.

- **Receivers.** A tenant names where its alerts go: an incoming webhook (its URL is the
  credential) or a bot token and a channel. The secret is sealed with the tenant's data key
  (purpose ``alerts.receiver``, bound to the receiver's name) and no read returns it.
- **Which receiver.** None while one of the tenant's silences
  (:mod:`tenantry.alerts.silences`) is active and mutes the alert. Else the tenant's routing
  (:mod:`tenantry.alerts.config`: a route tree, inhibition rules, silences) when it set one;
  else a rule's ``receiver`` label, else the receiver named ``default``. A receiver that does
  not exist gets nothing; the alert's state is kept either way.
- **Threats.** A threat of HIGH or above found by the threat analysis goes to the tenant's
  ``security`` receiver, else its ``default`` (:meth:`AlertNotifier.threat`, the analysis'
  ``on_threat`` hook in the service).
- **Grouping.** With routing, a transition joins its aggregation groups instead, and a group
  notifies as Alertmanager's do (``group_wait``, ``group_interval``, ``repeat_interval``:
  :mod:`tenantry.alerts.groups`). Without routing there is no route and so no timing: each
  transition is its own message at once, as below.
- **The platform's route.** Each transition, and each threat, is also routed through the
  platform's routing when the platform has one, as a copy labelled with the tenant's id
  (:mod:`tenantry.alerts.platform_route`).
- **Messages.** A transition to firing or resolved becomes one outbox row, the message built
  from the rule (severity, name, its ``summary`` and ``description`` annotations, the values its
  condition read) as Block Kit within Slack's limits, in the same transaction as nothing else:
  an alert that fired is queued even if the process stops right after. The
  :class:`~tenantry.alerts.dispatch.AlertDispatcher` delivers the queue.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.attempts import BotTarget, SlackMessage, Target, WebhookTarget
from tenantry.alerts.blocks import AlertMessage, build_message
from tenantry.alerts.config import RoutingConfig, parse_routing
from tenantry.alerts.fixture_schemas import TenantContext
from tenantry.alerts.fixtures import SlackFixtureManager
from tenantry.alerts.groups import GroupedAlert, join
from tenantry.alerts.joining import OUTBOX_INSERT, joins, receiver_names
from tenantry.alerts.manager import Transition
from tenantry.alerts.muting import load_muting
from tenantry.alerts.platform_route import platform_copy, route_copies, route_threat
from tenantry.alerts.rules import AlertStatus
from tenantry.alerts.sandbox import escape_mrkdwn
from tenantry.context import PLATFORM_TENANT, tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, NotFound, TenantryError
from tenantry.keys import Keyring
from tenantry.logging import get_logger
from tenantry.threats.manager import Threat

__all__ = ["DEFAULT_RECEIVER", "SLACK_WEBHOOKS", "AlertNotifier", "Delivery", "Receiver"]

DEFAULT_RECEIVER: Final = "default"
#: Slack's incoming webhooks: the one place a webhook receiver may point by default.
SLACK_WEBHOOKS: Final = "https://hooks.slack.com/"
_log = get_logger("tenantry.alerts")
_INSERT: Final = OUTBOX_INSERT
_MAX_MESSAGE: Final = 3000
_PURPOSE: Final = "alerts.receiver"
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class Receiver:
    """A receiver as reads show it: no secret."""

    name: str
    kind: Literal["webhook", "bot"]
    channel: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row as reads show it."""

    id: str
    receiver: str
    rule_name: str
    transition: str
    status: str
    attempts: int
    not_before: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    #: Every attempt: (number, when, outcome: sent, queued (to retry), rate_limited, failed).
    history: list[tuple[int, datetime, str]] = field(default_factory=list)


def _plain(url: str) -> bool:
    """No credentials, fragment or whitespace that could make a URL mean another host."""
    return not any(c in url for c in "@#\\ \t\r\n") and ".." not in url


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise InvalidInput("a receiver name is 1 to 64 of a-z, 0-9, '-' and '_'")
    return name


def message_of(transition: Transition, *, tenant: str | None = None) -> SlackMessage:
    """The Slack message of a transition (texts escaped for mrkdwn); with ``tenant``, a line
    naming it (the platform's copy)."""
    rule, firing = transition.rule, transition.after is AlertStatus.FIRING
    named = [f"tenant: {tenant}"] if tenant is not None else []
    state = "FIRING" if firing else "RESOLVED"
    summary = rule.annotations.get("summary") or rule.condition.source
    values = ", ".join(f"{k} = {v}" for k, v in sorted(transition.observed.items()))
    built = build_message(
        AlertMessage(
            title=escape_mrkdwn(f"[{state}] {rule.severity.value}: {rule.name}"),
            description=escape_mrkdwn(summary),
            action_required=escape_mrkdwn(rule.annotations.get("description", "")),
            context=[escape_mrkdwn(x) for x in (*named, values, transition.at.isoformat()) if x],
        )
    )
    return SlackMessage(text=built.text, blocks=built.blocks)


def grouped_alert(transition: Transition, message: SlackMessage) -> GroupedAlert:
    """What a transition puts in its aggregation groups, ``message`` its own message."""
    rule = transition.rule
    return GroupedAlert(
        name=rule.name,
        status=transition.after.value,
        labels=rule.alert_labels(),
        severity=rule.severity.value,
        summary=rule.annotations.get("summary") or rule.condition.source,
        values=", ".join(f"{k} = {v}" for k, v in sorted(transition.observed.items())),
        at=transition.at,
        message=message,
    )


def _threat_message(threat: Threat, *, tenant: str | None = None) -> SlackMessage:
    """A threat's message; with ``tenant``, a line naming it (the platform's copy)."""
    who = f"{threat.subject_type} {threat.subject}"
    window = f"{threat.window_start.isoformat()} - {threat.window_end.isoformat()}"
    named = [f"tenant: {tenant}"] if tenant is not None else []
    built = build_message(
        AlertMessage(
            title=escape_mrkdwn(f"[THREAT] {threat.level.value}: {who}"),
            description=escape_mrkdwn("; ".join(threat.reasons) or "threat detected"),
            context=[escape_mrkdwn(x) for x in (*named, window)],
        )
    )
    return SlackMessage(text=built.text, blocks=built.blocks)


class AlertNotifier(RecordsChanges):
    """Receivers and the outbox; see the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        audit: ChangeLog | None = None,
        keyring: Keyring | None = None,
        webhook_prefixes: Sequence[str] = (SLACK_WEBHOOKS,),
        fixtures: SlackFixtureManager | None = None,
    ) -> None:
        self._database, self._audit, self._keyring = database, audit, keyring
        #: Renders a rule's message from the tenant's template (its ``fixture`` annotation).
        self.fixtures = fixtures
        #: The URL prefixes a webhook receiver may have: the service posts to it, so a URL of
        #: the tenant's choosing would reach the service's own network (SSRF).
        self.webhook_prefixes = tuple(webhook_prefixes)
        #: Called with the tenant of each message :meth:`queue_message` queued (the app hands
        #: its dispatcher's ``notice``, so the message goes out in the next round).
        self.on_message: Callable[[str], None] | None = None

    async def _keys(self, tenant_id: str) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(await self._db())
        await self._keyring.load(tenant_id)
        return self._keyring

    # -- receivers --------------------------------------------------------------------------------

    async def set_receiver(
        self,
        tenant_id: str,
        name: str,
        *,
        webhook_url: str | None = None,
        bot_token: str | None = None,
        channel: str | None = None,
        actor: str | None = None,
    ) -> Receiver:
        """Create or replace receiver ``name``: a webhook URL, or a bot token and a channel."""
        validate_tenant_id(tenant_id)
        _check_name(name)
        if (webhook_url is None) == (bot_token is None):
            raise InvalidInput("a receiver has a webhook_url or a bot_token, not both")
        if webhook_url is not None:
            if not webhook_url.startswith(self.webhook_prefixes) or not _plain(webhook_url):
                allowed = ", ".join(self.webhook_prefixes)
                raise InvalidInput(f"webhook_url must be a Slack webhook URL (starting {allowed})")
            kind: Literal["webhook", "bot"] = "webhook"
            secret, channel = webhook_url, None
        else:
            if not channel:
                raise InvalidInput("a bot receiver needs its channel")
            kind, secret = "bot", str(bot_token)
        if len(secret) > 2000 or (channel is not None and len(channel) > 200):
            raise InvalidInput("the receiver's secret or channel is too long")
        keys = await self._keys(tenant_id)
        sealed = keys.seal(tenant_id, secret.encode(), _PURPOSE, name)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.alert_receivers (tenant_id, name, kind, channel, "
                        "secret) VALUES (:t, :n, :k, :c, :s) ON CONFLICT (tenant_id, name) DO "
                        "UPDATE SET kind = excluded.kind, channel = excluded.channel, "
                        "secret = excluded.secret, updated_at = now()"
                    ),
                    {"t": tenant_id, "n": name, "k": kind, "c": channel, "s": sealed},
                )
                await trail.record(
                    tenant_id, "alerts.receiver.set", name, actor=actor, detail={"kind": kind}
                )
        return Receiver(name, kind, channel)

    async def receivers(self, tenant_id: str) -> list[Receiver]:
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = await conn.execute(
                    text("SELECT name, kind, channel FROM tenantry.alert_receivers ORDER BY name")
                )
                return [Receiver(n, k, c) for n, k, c in rows]

    async def delete_receiver(self, tenant_id: str, name: str, *, actor: str | None = None) -> None:
        validate_tenant_id(tenant_id)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                gone = await conn.scalar(
                    text("DELETE FROM tenantry.alert_receivers WHERE name = :n RETURNING name"),
                    {"n": name},
                )
                if gone is None:
                    raise NotFound(f"no receiver {name!r}")
                await trail.record(tenant_id, "alerts.receiver.delete", name, actor=actor)

    async def target(self, tenant_id: str, name: str) -> Target | None:
        """Receiver ``name``'s target, its secret opened; None if it no longer exists."""
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT kind, channel, secret FROM tenantry.alert_receivers "
                            "WHERE name = :n"
                        ),
                        {"n": name},
                    )
                ).first()
        if row is None:
            return None
        keys = await self._keys(tenant_id)
        secret = keys.open(tenant_id, bytes(row[2]), _PURPOSE, name).decode()
        return WebhookTarget(secret) if row[0] == "webhook" else BotTarget(secret, row[1])

    # -- the outbox -------------------------------------------------------------------------------

    async def enqueue(self, transitions: Sequence[Transition]) -> list[str]:
        """Queue a message for each transition to firing or resolved whose rule has a receiver,
        or, when the tenant has routing, put it in its aggregation groups
        (:mod:`tenantry.alerts.groups`); the outbox rows queued and the groups joined (ids)."""
        queued: list[str] = []
        copies: list[GroupedAlert] = []  # for the platform's route
        by_tenant: dict[str, list[Transition]] = {}
        for t in transitions:
            if t.after in (AlertStatus.FIRING, AlertStatus.RESOLVED):
                by_tenant.setdefault(t.tenant_id, []).append(t)
        for tenant_id, items in by_tenant.items():
            messages = {id(t): await self._message(t) for t in items}
            if tenant_id != PLATFORM_TENANT:  # the platform's own alerts are routed as its own
                copies += [
                    platform_copy(tenant_id, grouped_alert(t, message_of(t, tenant=tenant_id)))
                    for t in items
                ]
            with tenant_scope(tenant_id):
                async with (await self._db()).tenant_transaction() as conn:
                    names = await receiver_names(conn)
                    muting = await load_muting(conn, min(t.at for t in items))
                    rows: list[dict[str, Any]] = []
                    if muting.routing is not None:  # into their groups, flushed later
                        alerts = [grouped_alert(t, messages[id(t)]) for t in items]
                        for match, alert in joins(muting.routing, names, muting, alerts):
                            group = await join(conn, tenant_id, match, alert)
                            queued += [] if group in queued else [group]
                        continue
                    for t in items:
                        if muting.muted(t.rule.alert_labels(), t.at):
                            continue
                        message = messages[id(t)]
                        wanted = [t.rule.labels.get("receiver", DEFAULT_RECEIVER)]
                        for receiver in (r for r in wanted if r in names):
                            body: dict[str, Any] = {
                                "text": message.text,
                                "blocks": list(message.blocks),
                            }
                            if t.after is AlertStatus.RESOLVED:  # in the firing message's thread
                                thread = await _fired_ts(conn, t.rule.name, receiver)
                                if thread is not None:
                                    body["thread_ts"] = thread
                            rows.append(
                                {
                                    "t": tenant_id,
                                    "id": f"ao_{uuid.uuid4().hex}",
                                    "receiver": receiver,
                                    "target_key": f"{tenant_id}:{receiver}",
                                    "rule": t.rule.name,
                                    "transition": t.after.value,
                                    "message": json.dumps(body),
                                }
                            )
                    if rows:
                        await conn.execute(_INSERT, rows)
                    queued += [r["id"] for r in rows]
        return queued + await route_copies(await self._db(), copies)

    async def queue_message(
        self, tenant_id: str, receiver: str, message: str, *, rule: str = "message"
    ) -> str | None:
        """Queue ``message`` (Slack mrkdwn, at most 3,000 characters, a section block's limit)
        to the tenant's ``receiver``, in the open transaction if there is one (it commits with
        the change that sent it); the outbox row's id, or None when the tenant has no such
        receiver. ``rule`` names the sender in the delivery history."""
        validate_tenant_id(tenant_id)
        if not isinstance(message, str) or not 0 < len(message) <= _MAX_MESSAGE:
            raise InvalidInput(f"a message is 1 to {_MAX_MESSAGE:,} characters")
        body = {
            "text": message,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": message}}],
        }
        row = {
            "t": tenant_id,
            "id": f"ao_{uuid.uuid4().hex}",
            "receiver": receiver,
            "target_key": f"{tenant_id}:{receiver}",
            "rule": rule,
            "transition": "message",
            "message": json.dumps(body),
        }
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                if receiver not in await receiver_names(conn):
                    return None
                await conn.execute(_INSERT, row)
        if self.on_message is not None:
            self.on_message(tenant_id)
        return str(row["id"])

    async def threat(self, threat: Threat) -> str | None:
        """Queue a message for a threat of HIGH or above (the threat analysis' ``on_threat``
        hook) to the tenant's ``security`` receiver, else its ``default``, and route it through
        the platform's routing (:func:`~tenantry.alerts.platform_route.route_threat`); the id
        queued for the tenant, or None when the tenant has neither receiver."""
        tenant_id = threat.tenant_id
        built, row_id = _threat_message(threat), None
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                names = await receiver_names(conn)
                receiver = next((n for n in ("security", DEFAULT_RECEIVER) if n in names), None)
                if receiver is not None:
                    row_id = f"ao_{uuid.uuid4().hex}"
                    body = {"text": built.text, "blocks": list(built.blocks)}
                    await conn.execute(
                        _INSERT,
                        {
                            "t": tenant_id,
                            "id": row_id,
                            "receiver": receiver,
                            "target_key": f"{tenant_id}:{receiver}",
                            "rule": f"threat:{threat.level.value}",
                            "transition": "firing",
                            "message": json.dumps(body),
                        },
                    )
        if tenant_id != PLATFORM_TENANT:
            copy = _threat_message(threat, tenant=tenant_id)
            await route_threat(
                await self._db(), tenant_id, threat.level.value, copy, threat.window_end
            )
        return row_id

    async def _message(self, transition: Transition) -> SlackMessage:
        """The transition's message: rendered from the tenant's template named by the rule's
        ``fixture`` annotation (in its ``locale`` annotation, else the template's default),
        else :func:`message_of`. A template that is gone or fails to render falls back to
        :func:`message_of`, so an alert is never lost to its template."""
        rule = transition.rule
        name = rule.annotations.get("fixture")
        if name is None or self.fixtures is None:
            return message_of(transition)
        manager = self.fixtures.for_tenant(TenantContext(transition.tenant_id))
        try:
            found = next((f for f in await manager.list_fixtures() if f.name == name), None)
            if found is None:
                return message_of(transition)
            values: dict[str, object] = {
                "alertname": rule.name,
                "status": transition.after.value,
                "summary": rule.annotations.get("summary", ""),
                "at": transition.at,
                **{
                    k.replace("{", "_").replace("}", "_"): v for k, v in transition.observed.items()
                },
            }
            locale = rule.annotations.get("locale", found.default_locale)
            rendered = await manager.render(found.id, locale, values)
        except TenantryError as exc:
            _log.warning("alert template failed", rule=rule.name, error=exc.detail)
            return message_of(transition)
        return SlackMessage(text=rendered.text, blocks=rendered.blocks)

    # -- routing ----------------------------------------------------------------------------------

    async def set_routing(
        self, tenant_id: str, source: str, *, actor: str | None = None
    ) -> RoutingConfig:
        """Set ``tenant_id``'s routing (YAML: route, inhibit_rules, silences); invalid routing
        changes nothing."""
        validate_tenant_id(tenant_id)
        config = parse_routing(source)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.alert_routing (tenant_id, source) VALUES (:t, :s) "
                        "ON CONFLICT (tenant_id) DO UPDATE SET source = excluded.source, "
                        "updated_at = now()"
                    ),
                    {"t": tenant_id, "s": source},
                )
                await trail.record(tenant_id, "alerts.routing.set", "alert_routing", actor=actor)
        return config

    async def routing(self, tenant_id: str) -> str | None:
        """``tenant_id``'s routing as it set it (YAML), or None."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                found: str | None = await conn.scalar(
                    text("SELECT source FROM tenantry.alert_routing")
                )
                return found

    async def delete_routing(self, tenant_id: str, *, actor: str | None = None) -> bool:
        """Back to the rule's ``receiver`` label or ``default``; whether there was a routing
        (deleting none is no error: the outcome is the same)."""
        validate_tenant_id(tenant_id)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                gone = await conn.scalar(text("DELETE FROM tenantry.alert_routing RETURNING 1"))
                if gone is None:
                    return False
                await trail.record(tenant_id, "alerts.routing.delete", "alert_routing", actor=actor)
        return True

    async def deliveries(self, tenant_id: str, limit: int = 100) -> list[Delivery]:
        """The tenant's latest outbox rows, newest first."""
        validate_tenant_id(tenant_id)
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT id, receiver, rule_name, transition, status, attempts, "
                        "not_before, last_error, created_at, sent_at FROM tenantry.alert_outbox "
                        "ORDER BY created_at DESC, id LIMIT :limit"
                    ),
                    {"limit": limit},
                )
                found = [Delivery(*row) for row in rows]
                attempts = await conn.execute(
                    text(
                        "SELECT outbox_id, attempt, at, outcome FROM tenantry.alert_attempts "
                        "WHERE outbox_id = ANY(CAST(:ids AS text[])) ORDER BY attempt"
                    ),
                    {"ids": [d.id for d in found]},
                )
                by_id = {d.id: d for d in found}
                for outbox_id, number, at, outcome in attempts:
                    by_id[outbox_id].history.append((number, at, outcome))
                return found


async def _fired_ts(conn: AsyncConnection, rule: str, receiver: str) -> str | None:
    """Slack's ``ts`` of the latest firing message of ``rule`` sent to ``receiver`` (the Web
    API gives one; a webhook does not), whose thread the resolved message goes into."""
    found = await conn.scalar(
        text(
            "SELECT slack_ts FROM tenantry.alert_outbox WHERE rule_name = :rule AND "
            "receiver = :receiver AND transition = 'firing' AND status = 'sent' AND "
            "slack_ts IS NOT NULL ORDER BY sent_at DESC LIMIT 1"
        ),
        {"rule": rule, "receiver": receiver},
    )
    return None if found is None else str(found)
