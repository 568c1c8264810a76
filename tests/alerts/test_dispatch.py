"""Alert delivery end to end on PostgreSQL and the loopback Slack: a rule fires, its message is
queued in the outbox and delivered; 429 re-queues the receiver's messages for Retry-After; 5xx
is retried; a permanent refusal fails the message; receivers' secrets are sealed and never read
back; the queue survives a new dispatcher (a restart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel import dates
from sqlalchemy import text

from tenantry.alerts import AlertSeverity, SlackFixtureEntity, SlackFixtureManager, TenantContext
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.groups import AlertGroups
from tenantry.alerts.manager import AlertManager
from tenantry.alerts.notify import AlertNotifier
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tenantry.tenants import TIME_ZONE_SETTING, TenantSettings
from tenantry.threats import ThreatLevel
from tenantry.threats.manager import Threat
from tests.alerts.conftest import BOT_TOKEN
from tests.conftest import NewTenant
from tests.support.slack_server import SlackServer

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
#: The loopback Slack's webhooks: allowed for these tests (the service allows Slack's only).
LOOPBACK = "http://127.0.0.1:"
RULES = """
alerts:
  - name: slow_sessions
    condition: session_creation_time_p95 > 100ms
    severity: warning
    annotations:
      summary: "Sessions take <@U123> & more than 100 ms"
  - name: ops_only
    condition: session_creation_time_p95 > 100ms
    severity: critical
    labels:
      receiver: ops
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


async def _firing(db: Database, tenant: str, notifier: AlertNotifier) -> list[str]:
    """Make both rules fire and queue their messages; the queued ids."""
    clock = Clock()
    monitoring = MonitoringManager(db, aggregator=Aggregator(resolution=10, clock=clock))
    for second in range(0, 60, 5):
        clock.now = T0.timestamp() + second
        monitoring.record("session_creation_time", 0.3, None, tenant)
    await monitoring.flush(everything=True)
    alerts = AlertManager(db, monitoring=monitoring)
    await alerts.set_rules(tenant, RULES)
    changes = await alerts.evaluate(tenant, T0 + timedelta(seconds=60))
    return await notifier.enqueue(changes)


async def _rows(db: Database, tenant: str) -> list[tuple[str, str, int, str | None]]:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = await conn.execute(
                text(
                    "SELECT rule_name, status, attempts, last_error FROM tenantry.alert_outbox "
                    "ORDER BY rule_name"
                )
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]


async def _due_now(db: Database, tenant: str) -> None:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(text("UPDATE tenantry.alert_outbox SET not_before = now()"))


async def test_a_firing_rule_reaches_the_tenants_slack(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> None:
    tenant = (await new_tenant("dl")).id
    notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
    await notifier.set_receiver(tenant, "default", webhook_url=slack.webhook("C0ALERTS"))
    await notifier.set_receiver(tenant, "ops", bot_token=BOT_TOKEN, channel="C0OPS")
    assert [r.name for r in await notifier.receivers(tenant)] == ["default", "ops"]
    queued = await _firing(db, tenant, notifier)
    assert len(queued) == 2
    async with SlackSender(api_base_url=slack.api_base_url) as sender:
        step = await AlertDispatcher(notifier, sender, db).dispatch(tenant)
    assert (step.sent, step.failed) == (2, 0)
    assert [(r[0], r[1]) for r in await _rows(db, tenant)] == [
        ("ops_only", "sent"),
        ("slow_sessions", "sent"),
    ]
    (alert,) = slack.messages("C0ALERTS")
    assert "[FIRING] warning: slow_sessions" in alert["text"]
    assert "&lt;@U123&gt; &amp; more" in str(alert["blocks"])  # no mention injected
    assert "critical: ops_only" in slack.messages("C0OPS")[0]["text"]
    # the secrets are sealed at rest
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            stored = await conn.scalar(text("SELECT string_agg(encode(secret, 'escape'), '')"
                                            " FROM tenantry.alert_receivers"))  # fmt: skip
    assert BOT_TOKEN not in str(stored)
    assert "/services/" not in str(stored)


async def test_429_requeues_the_receiver_and_5xx_is_retried(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> None:
    tenant = (await new_tenant("dl")).id
    notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
    await notifier.set_receiver(tenant, "default", webhook_url=slack.webhook("C0ALERTS"))
    await notifier.set_receiver(tenant, "ops", webhook_url=slack.webhook("C0OPS", "ops"))
    await _firing(db, tenant, notifier)
    slack.rate_limit(retry_after=30)  # the first request (either message) is refused
    slack.fail(503)  # the next one too
    async with SlackSender(api_base_url=slack.api_base_url, backoff_base=30) as sender:
        dispatcher = AlertDispatcher(notifier, sender, db)
        step = await dispatcher.dispatch(tenant)
        assert (step.sent, step.deferred) == (0, 2)
        rows = dict((r[0], r[1:]) for r in await _rows(db, tenant))
        assert rows["ops_only"][0] == "queued"
        assert {rows["ops_only"][2], rows["slow_sessions"][2]} == {
            "rate_limited",
            "service_unavailable",
        }
        assert (await dispatcher.dispatch(tenant)).sent == 0  # nothing is due yet
        await _due_now(db, tenant)
        # a new dispatcher (a restart) delivers what was queued
        again = await AlertDispatcher(notifier, sender, db).dispatch(tenant)
    assert again.sent == 2
    assert [r[2] for r in await _rows(db, tenant)] == [2, 2]  # two attempts each, recorded
    history = {d.rule_name: [h[2] for h in d.history] for d in await notifier.deliveries(tenant)}
    # which of the two went first is not fixed (queued in one transaction): one was refused
    # with 429, the other with 503 (retried: "queued"), and both were then sent
    assert sorted(history.values()) == [["queued", "sent"], ["rate_limited", "sent"]]


async def test_a_permanent_refusal_fails_the_message(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> None:
    tenant = (await new_tenant("dl")).id
    notifier = AlertNotifier(db)
    await notifier.set_receiver(tenant, "default", bot_token="xoxb-wrong", channel="C0ALERTS")
    await _firing(db, tenant, notifier)  # only slow_sessions has a receiver
    async with SlackSender(api_base_url=slack.api_base_url) as sender:
        step = await AlertDispatcher(notifier, sender, db).dispatch(tenant)
    assert step.failed == 1
    assert await _rows(db, tenant) == [("slow_sessions", "failed", 1, "invalid_auth")]
    deliveries = await notifier.deliveries(tenant)
    assert [(d.rule_name, d.status) for d in deliveries] == [("slow_sessions", "failed")]
    assert [(n, outcome) for n, _, outcome in deliveries[0].history] == [(1, "failed")]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "webhook_url or a bot_token"),
        ({"webhook_url": "ftp://x"}, "Slack webhook URL"),
        ({"webhook_url": "http://169.254.169.254/latest/meta-data"}, "Slack webhook URL"),
        ({"webhook_url": "https://hooks.slack.com@evil.example/x"}, "Slack webhook URL"),
        ({"webhook_url": "https://hooks.slack.com/../x"}, "Slack webhook URL"),
        ({"bot_token": "xoxb-1"}, "channel"),
        ({"webhook_url": "https://hooks.slack.com/x", "bot_token": "y"}, "not both"),
    ],
)
async def test_bad_receivers_are_refused(
    db: Database, new_tenant: NewTenant, options: dict[str, str], match: str
) -> None:
    tenant = (await new_tenant("dl")).id
    with pytest.raises(InvalidInput, match=match):
        await AlertNotifier(db).set_receiver(tenant, "default", **options)
    with pytest.raises(InvalidInput, match="receiver name"):
        await AlertNotifier(db).set_receiver(tenant, "Bad Name", webhook_url="https://x")


async def test_a_high_threat_goes_to_the_security_receiver(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> None:
    tenant = (await new_tenant("dl")).id
    notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
    threat = Threat(
        tenant_id=tenant,
        subject_type="user",
        subject="<!channel> mallory",
        level=ThreatLevel.HIGH,
        reasons=("failed logins",),
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
    )
    assert await notifier.threat(threat) is None  # no receiver: nothing queued
    await notifier.set_receiver(tenant, "default", webhook_url=slack.webhook("C0ALERTS"))
    await notifier.set_receiver(tenant, "security", webhook_url=slack.webhook("C0OPS", "sec"))
    assert await notifier.threat(threat) is not None
    async with SlackSender(api_base_url=slack.api_base_url) as sender:
        assert (await AlertDispatcher(notifier, sender, db).dispatch(tenant)).sent == 1
    (message,) = slack.messages("C0OPS")
    assert "[THREAT] high: user &lt;!channel&gt; mallory" in message["text"]
    assert slack.messages("C0ALERTS") == []


ROUTING = """
route:
  receiver: default
  routes:
    - matchers: ['severity="critical"']
      receiver: ops
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
silences:
  - matchers: ['alertname="muted"']
    starts_at: 2026-12-01T00:00:00Z
    ends_at: 2027-01-01T00:00:00Z
    comment: maintenance
"""


async def test_routing_inhibition_and_silences_choose_the_receivers(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("dl")).id
    notifier = AlertNotifier(db)
    for name in ("default", "ops"):
        await notifier.set_receiver(
            tenant, name, webhook_url=f"https://hooks.slack.com/services/{name}"
        )
    with pytest.raises(InvalidInput, match="route"):
        await notifier.set_routing(tenant, "routes: []")
    await notifier.set_routing(tenant, ROUTING)
    assert await notifier.routing(tenant) == ROUTING
    queued = await _firing(db, tenant, notifier)  # ops_only (critical), slow_sessions (warning)
    assert [q[:3] for q in queued] == ["ag_"]  # in its aggregation group: none queued yet
    assert await _rows(db, tenant) == []
    groups = AlertGroups(db)
    assert (await groups.flush_due(tenant, T0 + timedelta(seconds=89))).queued == []
    assert len((await groups.flush_due(tenant, T0 + timedelta(seconds=90))).queued) == 1
    rows = {(r[0], r[1]) for r in await _rows(db, tenant)}
    # critical goes to ops by the tree; the warning is inhibited by the firing critical alert
    assert rows == {("ops_only", "queued")}
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            receivers = await conn.scalar(
                text("SELECT string_agg(receiver, ',') FROM tenantry.alert_outbox")
            )
    assert receivers == "ops"
    assert await notifier.delete_routing(tenant) is True
    assert await notifier.routing(tenant) is None
    assert await notifier.delete_routing(tenant) is False


TEMPLATED = """
alerts:
  - name: slow_sessions
    condition: session_creation_time_p95 > 100ms
    severity: warning
    annotations:
      fixture: latency
      locale: de-AT
"""


async def test_a_rule_naming_a_template_gets_its_localized_message(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("dl")).id
    templates = SlackFixtureManager(TenantContext(tenant), db)
    await templates.create_fixture(
        SlackFixtureEntity(
            name="latency",
            severity=AlertSeverity.WARNING,
            locales={
                "de-DE": {
                    "title": "{{ alertname }}: Sitzungen langsam",
                    "description": "p95 {{ session_creation_time_p95 | number }} s",
                    "action_required": "Datenbank prüfen (seit {{ at | time }})",
                },
                "en": {"title": "{{ alertname }}: slow", "description": "slow"},
            },
        )
    )
    notifier = AlertNotifier(db, fixtures=templates)
    await notifier.set_receiver(tenant, "default", webhook_url="https://hooks.slack.com/x")
    await TenantSettings(tenant, db).set(TIME_ZONE_SETTING, "Asia/Tokyo")  # times shown in it
    clock = Clock()
    monitoring = MonitoringManager(db, aggregator=Aggregator(resolution=10, clock=clock))
    monitoring.record("session_creation_time", 0.25, None, tenant)
    await monitoring.flush(everything=True)
    alerts = AlertManager(db, monitoring=monitoring)
    await alerts.set_rules(tenant, TEMPLATED)
    changes = await alerts.evaluate(tenant, T0 + timedelta(seconds=60))
    assert len(await notifier.enqueue(changes)) == 1
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            message = await conn.scalar(text("SELECT message FROM tenantry.alert_outbox"))
    assert message["text"].startswith("slow_sessions: Sitzungen langsam")
    assert "p95 0,2" in str(message["blocks"])  # 0.25 within the sketch's 1%, in de-AT
    fired = dates.format_time(changes[0].at, "short", tzinfo=ZoneInfo("Asia/Tokyo"), locale="de_AT")
    utc = dates.format_time(changes[0].at, "short", tzinfo=UTC, locale="de_AT")
    assert fired != utc
    assert f"seit {fired})" in str(message["blocks"])  # in the tenant's zone, not UTC


async def test_a_resolved_alert_replies_in_the_firing_messages_thread(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> None:
    tenant = (await new_tenant("dl")).id
    notifier = AlertNotifier(db)
    await notifier.set_receiver(tenant, "default", bot_token=BOT_TOKEN, channel="C0ALERTS")
    clock = Clock()
    monitoring = MonitoringManager(db, aggregator=Aggregator(resolution=10, clock=clock))
    monitoring.record("session_creation_time", 0.3, None, tenant)
    await monitoring.flush(everything=True)
    alerts = AlertManager(db, monitoring=monitoring)
    await alerts.set_rules(tenant, RULES)
    async with SlackSender(api_base_url=slack.api_base_url) as sender:
        dispatcher = AlertDispatcher(notifier, sender, db)
        await notifier.enqueue(await alerts.evaluate(tenant, T0 + timedelta(seconds=30)))
        assert (await dispatcher.dispatch(tenant)).sent == 1  # slow_sessions (ops has none)
        resolved = await alerts.evaluate(tenant, T0 + timedelta(minutes=12))
        await notifier.enqueue(resolved)
        assert (await dispatcher.dispatch(tenant)).sent == 1
    fired, closed = slack.messages("C0ALERTS")
    assert "[FIRING]" in fired["text"]
    assert "[RESOLVED]" in closed["text"]
    assert closed["thread_ts"] == fired["ts"]
