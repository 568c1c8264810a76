"""The platform's route for operators, on PostgreSQL and the loopback Slack: every tenant's
alert is copied through the platform's routing labelled with its tenant, grouped in the
platform's groups and delivered to the platform's receivers; a route on ``tenant`` picks one
tenant's; platform silences and inhibition mute the copy only, a tenant's silences its own
message only; a rule's own ``tenant`` label cannot forge the tenant; threats are copied too;
without platform routing nothing is; the dispatcher and the evaluator visit the platform. The
clock is the tests' (far in the future, so no background round of another test touches these
groups): no test sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tenantry.alerts import AlertStatus, Transition, load_rules
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.manager import AlertManager
from tenantry.alerts.notify import AlertNotifier
from tenantry.alerts.silences import SilenceManager
from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database
from tenantry.monitoring import MonitoringManager
from tenantry.threats.manager import Threat
from tenantry.threats.schemas import ThreatLevel
from tests.alerts.conftest import Clock
from tests.alerts.platform_world import reset_platform
from tests.conftest import NewTenant
from tests.support.slack_server import SlackServer

T0 = datetime(2099, 12, 6, 9, 0, tzinfo=UTC)
S, M = timedelta(seconds=1), timedelta(minutes=1)
LOOPBACK = "http://127.0.0.1:"
P = PLATFORM_TENANT
RULES = {
    r.name: r
    for r in load_rules(
        """
alerts:
  - name: db_slow
    condition: db_p95 > 100ms
    severity: warning
    labels: {service: db}
    annotations: {summary: "queries are slow"}
  - name: db_errors
    condition: db_errors > 1
    severity: critical
    labels: {service: db}
  - name: forged
    condition: x > 1
    severity: critical
    labels: {tenant: TARGET}
"""
    )
}
BY_TENANT = """
route:
  receiver: ops
  group_by: [tenant, alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
"""


def fired(tenant: str, name: str, at: datetime = T0) -> Transition:
    return Transition(tenant, RULES[name], AlertStatus.PENDING, AlertStatus.FIRING, at, {"v": 2})


def resolved(tenant: str, name: str, at: datetime) -> Transition:
    return Transition(tenant, RULES[name], AlertStatus.FIRING, AlertStatus.RESOLVED, at, {})


@dataclass
class World:
    a: str
    b: str
    notifier: AlertNotifier
    dispatcher: AlertDispatcher
    clock: Clock
    slack: SlackServer
    db: Database

    sent: dict[str, int] = field(default_factory=dict)  #: by this world's dispatcher

    async def visit(self, tenant: str, offset: timedelta) -> list[dict[str, Any]]:
        """A dispatcher visit of ``tenant`` at T0 + ``offset``: the messages Slack received."""
        self.clock.at = T0 + offset
        before = len(self.slack.messages())
        step = await self.dispatcher.visit(tenant)
        self.sent[tenant] = self.sent.get(tenant, 0) + step.sent
        received = self.slack.messages()[before:]
        for each in (self.a, self.b, P):  # what Slack received is any of theirs
            await self._alone(each)
        return received

    async def _alone(self, tenant: str) -> None:
        """Fails, naming the cause, if another dispatcher on this database (a background one
        some app runs) sent or holds a claim on ``tenant``'s outbox rows: this world's visits
        would miss them (its count of what Slack received is then wrong)."""
        with tenant_scope(tenant):
            async with self.db.tenant_transaction() as conn:
                sent, claimed = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER "
                            "(WHERE status = 'queued' AND attempts > 0 AND last_error IS NULL) "
                            "FROM tenantry.alert_outbox"
                        )
                    )
                ).one()
        others = sent - self.sent.get(tenant, 0)
        assert (others, claimed) == (0, 0), (
            f"another dispatcher on this database sent {others} and holds a claim on {claimed} "
            f"of {tenant}'s outbox rows"
        )

    async def platform_labels(self) -> list[dict[str, str]]:
        with tenant_scope(P):
            async with self.db.tenant_transaction() as conn:
                rows = await conn.execute(text("SELECT alerts FROM tenantry.alert_groups"))
                return sorted(
                    (a["labels"] for (alerts,) in rows for a in alerts.values()),
                    key=lambda labels: sorted(labels.items()),
                )


@pytest.fixture
async def world(db: Database, new_tenant: NewTenant, slack: SlackServer) -> AsyncIterator[World]:
    await reset_platform(db)
    a, b = (await new_tenant("pla")).id, (await new_tenant("plb")).id
    notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
    for tenant in (a, b):  # each tenant's own Slack: C0ALERTS
        await notifier.set_receiver(
            tenant, "default", webhook_url=slack.webhook("C0ALERTS", tenant)
        )
    await notifier.set_receiver(P, "ops", webhook_url=slack.webhook("C0OPS"))  # the operators'
    clock = Clock(T0)
    try:
        async with SlackSender(api_base_url=slack.api_base_url) as sender:
            dispatcher = AlertDispatcher(notifier, sender, db, clock=clock)
            yield World(a, b, notifier, dispatcher, clock, slack, db)
    finally:
        await reset_platform(db)


def _shown(message: dict[str, Any]) -> str:
    return f"{message['text']} {message.get('blocks')}"


async def test_two_tenants_alerts_reach_the_platform_labelled_with_their_tenant(
    world: World,
) -> None:
    w = world
    await w.notifier.set_routing(P, BY_TENANT)
    await w.notifier.enqueue([fired(w.a, "db_slow"), fired(w.b, "db_slow")])
    assert await w.platform_labels() == sorted(
        (
            {"alertname": "db_slow", "severity": "warning", "service": "db", "tenant": t}
            for t in (w.a, w.b)
        ),
        key=lambda labels: sorted(labels.items()),
    )
    groups = await w.dispatcher.groups.groups(P)
    assert sorted(g.group_key for g in groups) == sorted(
        f'{{}}:{{alertname="db_slow", tenant="{t}"}}' for t in (w.a, w.b)
    )
    assert await w.visit(P, 29 * S) == []  # the platform route's group_wait
    sent = await w.visit(P, 30 * S)
    assert len(sent) == 2
    assert {m["text"] for m in sent} == {"[FIRING] warning: db_slow\nqueries are slow"}
    assert [t for t in (w.a, w.b) if any(f"tenant: {t}" in _shown(m) for m in sent)] == [w.a, w.b]
    assert all(m in w.slack.messages("C0OPS") for m in sent)
    # each tenant still gets its own message, without any tenant line
    own = [*await w.visit(w.a, 30 * S), *await w.visit(w.b, 30 * S)]
    assert len(own) == 2
    assert all("tenant:" not in _shown(m) for m in own)
    assert all(m not in w.slack.messages("C0OPS") for m in own)
    deliveries = await w.notifier.deliveries(P)
    assert sorted(d.rule_name for d in deliveries) == sorted(f"{t}/db_slow" for t in (w.a, w.b))
    assert {d.status for d in deliveries} == {"sent"}
    # a tenant sees none of it
    for tenant in (w.a, w.b):
        assert {d.receiver for d in await w.notifier.deliveries(tenant)} == {"default"}
        assert await w.dispatcher.groups.groups(tenant) == []


async def test_one_platform_group_keeps_two_tenants_alerts_of_one_name_apart(
    world: World,
) -> None:
    w = world
    await w.notifier.set_routing(P, BY_TENANT.replace("[tenant, alertname]", "[alertname]"))
    await w.notifier.enqueue([fired(w.a, "db_slow"), fired(w.b, "db_slow")])
    (group,) = await w.dispatcher.groups.groups(P)
    assert group.alerts == {f"{w.a}/db_slow": "firing", f"{w.b}/db_slow": "firing"}
    (message,) = await w.visit(P, 30 * S)
    assert message["text"].startswith("[FIRING:2] alertname=db_slow")
    assert f"{w.a}/db_slow" in _shown(message)
    assert f"{w.b}/db_slow" in _shown(message)
    await w.notifier.enqueue([resolved(w.a, "db_slow", T0 + M)])
    (group,) = await w.dispatcher.groups.groups(P)
    assert group.alerts == {f"{w.a}/db_slow": "resolved", f"{w.b}/db_slow": "firing"}


async def test_a_platform_route_on_one_tenant_gets_only_its_alerts(world: World) -> None:
    w = world
    routing = f"""
route:
  receiver: nobody
  group_wait: 0s
  routes:
    - matchers: ['tenant="{w.a}"', 'severity="critical"']
      receiver: ops
"""
    await w.notifier.set_routing(P, routing)
    await w.notifier.enqueue(
        [fired(w.a, "db_errors"), fired(w.a, "db_slow"), fired(w.b, "db_errors")]
    )
    sent = await w.visit(P, 0 * S)
    assert [m["text"].split("\n")[0] for m in sent] == ["[FIRING] critical: db_errors"]
    assert f"tenant: {w.a}" in _shown(sent[0])
    assert [labels["tenant"] for labels in await w.platform_labels()] == [w.a]


async def test_a_platform_silence_mutes_the_copy_and_a_tenant_silence_its_own_message(
    world: World,
) -> None:
    w = world
    await w.notifier.set_routing(P, BY_TENANT)
    silences = SilenceManager(w.db, clock=w.clock)
    await silences.create(P, [f'tenant="{w.a}"'], ends_at=T0 + timedelta(hours=1))
    await silences.create(w.b, ['alertname="db_slow"'], ends_at=T0 + timedelta(hours=1))
    await w.notifier.enqueue([fired(w.a, "db_slow"), fired(w.b, "db_slow")])
    # the platform's silence: a's copy muted, b's copy not (b's own silence is b's alone)
    assert [labels["tenant"] for labels in await w.platform_labels()] == [w.b]
    sent = await w.visit(P, 30 * S)
    assert len(sent) == 1
    assert f"tenant: {w.b}" in _shown(sent[0])
    # a still receives its own message; b's own is muted by b's silence
    assert len(await w.visit(w.a, 30 * S)) == 1
    assert await w.visit(w.b, 30 * S) == []
    # the tenants cannot see the platform's silence, nor the platform theirs through its reads
    assert await silences.silences(w.a) == []
    assert [s.matchers for s in await silences.silences(P)] == [[f'tenant="{w.a}"']]


async def test_platform_inhibition_mutes_only_the_copies(world: World) -> None:
    w = world
    routing = BY_TENANT + (
        "inhibit_rules:\n"
        "  - source_matchers: ['severity=\"critical\"']\n"
        "    target_matchers: ['severity=\"warning\"']\n"
        "    equal: [tenant]\n"
    )
    await w.notifier.set_routing(P, routing)
    await w.notifier.enqueue([fired(w.a, "db_errors")])
    await w.notifier.enqueue([fired(w.a, "db_slow"), fired(w.b, "db_slow")])
    # a's warning is inhibited by a's critical (same tenant); b's is not
    assert sorted((x["tenant"], x["alertname"]) for x in await w.platform_labels()) == sorted(
        [(w.a, "db_errors"), (w.b, "db_slow")]
    )
    assert len(await w.visit(w.a, 30 * S)) == 2  # the tenant's own messages are not inhibited


async def test_a_rule_label_named_tenant_cannot_forge_the_tenant(world: World) -> None:
    w = world
    routing = f"""
route:
  receiver: nobody
  group_wait: 0s
  routes:
    - matchers: ['tenant="{w.b}"']
      receiver: ops
"""
    await w.notifier.set_routing(P, routing)
    forged = fired(w.a, "forged")
    forged = Transition(
        w.a,
        forged.rule.model_copy(update={"labels": {"tenant": w.b}}),
        forged.before,
        forged.after,
        T0,
        {},
    )
    assert forged.rule.alert_labels()["tenant"] == w.b  # the tenant says it is b
    await w.notifier.enqueue([forged])
    assert await w.platform_labels() == []  # routed as a's: b's route does not see it
    assert await w.visit(P, 0 * S) == []
    await w.notifier.set_routing(P, routing.replace(w.b, w.a))
    await w.notifier.enqueue([forged])
    (labels,) = await w.platform_labels()
    assert labels["tenant"] == w.a
    (message,) = await w.visit(P, 0 * S)
    assert f"tenant: {w.a}" in _shown(message)
    assert f"tenant: {w.b}" not in _shown(message)


async def test_threats_reach_the_platform_route(world: World) -> None:
    w = world
    routing = """
route:
  receiver: nobody
  routes:
    - matchers: ['alertname="threat"', 'severity="critical"']
      receiver: ops
"""
    await w.notifier.set_routing(P, routing)
    threat = Threat(
        tenant_id=w.a,
        subject_type="ip",
        subject="198.51.100.7",
        level=ThreatLevel.CRITICAL,
        reasons=("probes of another tenant's ids",),
        window_start=T0 - timedelta(hours=1),
        window_end=T0,
    )
    assert await w.notifier.threat(threat) is not None  # the tenant's own, to its default
    high = replace(threat, level=ThreatLevel.HIGH, tenant_id=w.b)
    assert await w.notifier.threat(high) is not None  # not critical: no platform route
    (delivery,) = await w.notifier.deliveries(P)
    assert (delivery.receiver, delivery.rule_name) == ("ops", f"{w.a}/threat:critical")
    (message,) = await w.visit(P, 0 * S)
    assert message["text"].startswith("[THREAT] critical: ip 198.51.100.7")
    assert f"tenant: {w.a}" in _shown(message)
    silences = SilenceManager(w.db, clock=w.clock)
    await silences.create(P, ['alertname="threat"'], ends_at=T0 + timedelta(hours=1))
    await w.notifier.threat(threat)
    assert len(await w.notifier.deliveries(P)) == 1  # muted by the platform's silence


async def test_without_platform_routing_nothing_is_copied(world: World) -> None:
    w = world
    queued = await w.notifier.enqueue([fired(w.a, "db_slow")])
    assert len(queued) == 1
    assert queued[0].startswith("ao_")
    assert await w.platform_labels() == []
    assert await w.notifier.deliveries(P) == []


async def test_the_dispatcher_and_the_evaluator_sweep_the_platform_in(
    world: World, db: Database
) -> None:
    w = world
    assert await w.dispatcher.sweep() >= 2
    assert {P, w.a, w.b} <= w.dispatcher.noticed
    alerts = AlertManager(db)
    await alerts.evaluator.sweep()
    assert P in alerts.evaluator.noticed


async def _evaluated_after(alerts: AlertManager, at: datetime) -> str:
    """Names another evaluator on this database (a background one some app runs) if one
    evaluated the platform's rules later than ``at``: an evaluation at ``at`` then changes
    nothing (the later state stands), and that one queued the messages."""
    later = [
        a.rule.name
        for a in await alerts.alerts(P)
        if a.state.evaluated_at is not None and a.state.evaluated_at > at
    ]
    return f"another evaluator on this database evaluated the platform's {later} after {at}"


async def test_a_platform_rule_over_breaker_open_fires_to_the_platform_receiver(
    world: World, db: Database
) -> None:
    w = world
    monitoring = MonitoringManager(db)
    alerts = AlertManager(db, monitoring=monitoring)
    await alerts.set_rules(
        P,
        "alerts:\n  - name: breaker_opened\n    condition: breaker_open_max > 0\n"
        "    severity: critical\n    labels: {receiver: ops}\n",
    )
    now = datetime.now(UTC)
    monitoring.record("breaker_open", 0.0, {"backend": "primary"}, P)
    monitoring.record("breaker_open", 1.0, {"backend": "replica"}, P)
    await monitoring.flush(everything=True)
    changes = await alerts.evaluate(P, now)
    assert [(c.tenant_id, c.rule.name, c.after) for c in changes] == [
        (P, "breaker_opened", AlertStatus.FIRING)
    ], await _evaluated_after(alerts, now)
    assert await w.notifier.enqueue(changes)
    w.clock.at = now
    await w.dispatcher.visit(P)
    (message,) = w.slack.messages("C0OPS")
    assert message["text"].startswith("[FIRING] critical: breaker_opened\n")
    assert "tenant:" not in _shown(message)  # the platform's own alert: no copy of it
    assert [a.state.status for a in await alerts.alerts(P)] == [AlertStatus.FIRING]
