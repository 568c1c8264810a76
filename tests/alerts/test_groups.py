"""Aggregation groups on PostgreSQL and the loopback Slack: routed alerts wait ``group_wait`` and
go out together, later changes wait ``group_interval``, an unchanged firing group repeats after
``repeat_interval``, each ``group_by`` value is a message of its own, resolved alerts are
notified (in the firing message's thread) and end the group, a group survives a restart, and of
two flushers one sends. The clock is the tests': no test sleeps."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tenantry.alerts import AlertStatus, Transition, load_rules, validate_blocks
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.groups import AlertGroups
from tenantry.alerts.notify import AlertNotifier
from tenantry.alerts.rules import AlertRule
from tenantry.alerts.silences import SilenceManager
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tests.alerts.conftest import BOT_TOKEN, Clock
from tests.conftest import NewTenant
from tests.support.slack_server import SlackServer

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
LOOPBACK = "http://127.0.0.1:"
RULES = {
    r.name: r
    for r in load_rules(
        """
alerts:
  - name: db_slow
    condition: db_p95 > 100ms
    severity: warning
    labels: {service: db}
    annotations: {summary: "queries take <!channel> long"}
  - name: db_errors
    condition: db_errors > 1
    severity: critical
    labels: {service: db}
  - name: api_slow
    condition: api_p95 > 100ms
    severity: warning
    labels: {service: api}
"""
    )
}
ROUTING = """
route:
  receiver: default
  group_by: [service]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
"""


def fired(tenant: str, name: str, at: datetime) -> Transition:
    return Transition(tenant, RULES[name], AlertStatus.PENDING, AlertStatus.FIRING, at, {"v": 1})


def resolved(tenant: str, name: str, at: datetime) -> Transition:
    return Transition(tenant, RULES[name], AlertStatus.FIRING, AlertStatus.RESOLVED, at, {})


@dataclass
class Setup:
    tenant: str
    notifier: AlertNotifier
    dispatcher: AlertDispatcher
    clock: Clock
    slack: SlackServer

    async def at(self, offset: timedelta) -> int:
        """A dispatcher visit at T0 + ``offset``: the messages Slack received in it."""
        self.clock.at = T0 + offset
        before = len(self.slack.requests)
        step = await self.dispatcher.visit(self.tenant)
        assert step.sent == step.grouped  # every notification queued went out in the visit
        return len(self.slack.requests) - before

    def last(self) -> dict[str, Any]:
        return self.slack.messages()[-1]


@asynccontextmanager
async def _setup(
    db: Database, new_tenant: NewTenant, slack: SlackServer, *, bot: bool
) -> AsyncIterator[Setup]:
    tenant = (await new_tenant("ag")).id
    notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
    if bot:
        await notifier.set_receiver(tenant, "default", bot_token=BOT_TOKEN, channel="C0ALERTS")
    else:
        await notifier.set_receiver(tenant, "default", webhook_url=slack.webhook("C0ALERTS"))
    await notifier.set_routing(tenant, ROUTING)
    clock = Clock(T0)
    async with SlackSender(api_base_url=slack.api_base_url) as sender:
        dispatcher = AlertDispatcher(notifier, sender, db, clock=clock)
        yield Setup(tenant, notifier, dispatcher, clock, slack)


@pytest.fixture
async def routed(db: Database, new_tenant: NewTenant, slack: SlackServer) -> AsyncIterator[Setup]:
    async with _setup(db, new_tenant, slack, bot=False) as setup:
        yield setup


@pytest.fixture
async def routed_bot(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> AsyncIterator[Setup]:
    async with _setup(db, new_tenant, slack, bot=True) as setup:
        yield setup


S, M = timedelta(seconds=1), timedelta(minutes=1)


async def test_group_wait_holds_the_first_alert_back_and_sends_two_as_one_message(
    routed: Setup,
) -> None:
    t = routed.tenant
    (group,) = await routed.notifier.enqueue([fired(t, "db_slow", T0)])
    assert group.startswith("ag_")
    assert await routed.at(10 * S) == 0
    assert await routed.notifier.enqueue([fired(t, "db_errors", T0 + 20 * S)]) == [group]
    assert await routed.at(29 * S) == 0  # group_wait is 30 s from the first alert
    assert await routed.at(30 * S) == 1
    message = routed.last()
    assert message["text"].startswith("[FIRING:2] service=db")
    shown = str(message["blocks"])
    assert "Firing: 2" in shown
    assert "critical db_errors" in shown
    assert "warning db_slow: queries take &lt;!channel&gt; long" in shown  # escaped
    assert "2 firing, 0 resolved" in shown
    validate_blocks(message["blocks"], message["text"])
    (view,) = await routed.dispatcher.groups.groups(t)
    assert view.alerts == {"db_errors": "firing", "db_slow": "firing"}
    assert view.next_flush_at == T0 + 30 * S + 5 * M
    assert await routed.at(31 * S) == 0  # nothing new: nothing sent


async def test_each_group_by_value_is_a_message_of_its_own(routed: Setup) -> None:
    t = routed.tenant
    groups = await routed.notifier.enqueue(
        [fired(t, "db_slow", T0), fired(t, "db_errors", T0), fired(t, "api_slow", T0)]
    )
    assert len(groups) == 2
    assert await routed.at(30 * S) == 2
    texts = sorted(m["text"] for m in routed.slack.messages("C0ALERTS"))
    assert texts[0].startswith("[FIRING:2] service=db")
    assert texts[1].startswith("[FIRING] warning: api_slow")  # alone: the alert's own message


async def test_group_interval_batches_later_alerts_and_repeat_interval_resends(
    routed: Setup,
) -> None:
    t = routed.tenant
    await routed.notifier.enqueue([fired(t, "db_slow", T0)])
    assert await routed.at(30 * S) == 1
    assert routed.last()["text"].startswith("[FIRING] warning: db_slow")
    await routed.notifier.enqueue([fired(t, "db_errors", T0 + 40 * S)])
    assert await routed.at(2 * M) == 0  # the next flush is group_interval after the first
    assert await routed.at(5 * M + 29 * S) == 0
    assert await routed.at(5 * M + 30 * S) == 1
    assert routed.last()["text"].startswith("[FIRING:2] service=db")
    assert await routed.at(10 * M + 30 * S) == 0  # unchanged, repeat_interval not reached
    assert await routed.at(60 * M + 30 * S) == 0  # the last notification was at 5m30s
    assert await routed.at(65 * M + 31 * S) == 1  # an hour after it: sent again
    assert routed.last()["text"].startswith("[FIRING:2] service=db")
    assert await routed.at(70 * M + 31 * S) == 0


async def test_resolved_alerts_are_notified_in_the_thread_and_end_the_group(
    routed_bot: Setup,
) -> None:
    r, t = routed_bot, routed_bot.tenant
    await r.notifier.enqueue([fired(t, "db_slow", T0), fired(t, "db_errors", T0)])
    assert await r.at(30 * S) == 1
    await r.notifier.enqueue([resolved(t, "db_slow", T0 + 1 * M)])
    assert await r.at(1 * M) == 0
    assert await r.at(5 * M + 30 * S) == 1  # newly resolved: notified at the next interval
    second = r.last()
    shown = str(second["blocks"])
    assert second["text"].startswith("[FIRING:1] service=db")
    assert "Resolved: 1" in shown
    assert "1 firing, 1 resolved" in shown
    (view,) = await r.dispatcher.groups.groups(t)
    assert view.alerts == {"db_errors": "firing"}  # the resolved alert left the group
    await r.notifier.enqueue([resolved(t, "db_errors", T0 + 6 * M)])
    assert await r.at(10 * M + 30 * S) == 1
    last = r.last()
    assert last["text"].startswith("[RESOLVED] critical: db_errors")
    assert last["thread_ts"] == second["ts"]  # in the group's last firing message's thread
    assert await r.dispatcher.groups.groups(t) == []  # all resolved and notified: gone
    # an alert that fired and resolved within group_wait is never notified
    await r.notifier.enqueue([fired(t, "api_slow", T0 + 20 * M)])
    await r.notifier.enqueue([resolved(t, "api_slow", T0 + 20 * M + 10 * S)])
    assert await r.at(21 * M) == 0
    assert await r.dispatcher.groups.groups(t) == []
    # a resolved alert whose group is gone creates none
    assert await r.notifier.enqueue([resolved(t, "db_slow", T0 + 30 * M)]) != []
    assert await r.dispatcher.groups.groups(t) == []


async def test_a_group_due_while_the_service_was_down_is_flushed_after_a_restart(
    db: Database, routed: Setup
) -> None:
    t = routed.tenant
    await routed.notifier.enqueue([fired(t, "db_slow", T0)])
    assert await routed.at(10 * S) == 0
    # the process stops; another starts an hour later, knowing nothing but the database
    clock = Clock(T0)
    clock.at = T0 + timedelta(hours=1)
    notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
    async with SlackSender(api_base_url=routed.slack.api_base_url) as sender:
        restarted = AlertDispatcher(notifier, sender, db, clock=clock)
        await restarted.sweep()  # what its first round does
        assert t in restarted.noticed
        step = await restarted.visit(t)
    assert (step.grouped, step.sent) == (1, 1)
    assert routed.last()["text"].startswith("[FIRING] warning: db_slow")
    (view,) = await restarted.groups.groups(t)
    assert view.notified_at == T0 + timedelta(hours=1)


async def test_the_dispatcher_comes_back_when_a_group_is_due(routed: Setup) -> None:
    t = routed.tenant
    await routed.notifier.enqueue([fired(t, "db_slow", T0)])
    assert await routed.at(0 * S) == 0
    routed.clock.at = T0 + 10 * S
    await routed.dispatcher.run_once()
    assert t not in routed.dispatcher.noticed  # not due: not visited
    routed.clock.at = T0 + 31 * S
    steps = await routed.dispatcher.run_once()  # due: noticed and visited in this round
    assert [(s.tenant_id, s.sent) for s in steps] == [(t, 1)]


async def test_of_two_flushers_one_sends_and_a_locked_group_is_passed_by(
    db: Database, routed: Setup
) -> None:
    t = routed.tenant
    many = [
        Transition(t, _rule(f"svc_{n}"), AlertStatus.PENDING, AlertStatus.FIRING, T0, {})
        for n in range(12)
    ]
    assert len(await routed.notifier.enqueue(many)) == 12
    flushers = [AlertGroups(db, batch=5) for _ in range(3)]
    rounds = []
    for _ in range(4):
        rounds += await asyncio.gather(*(f.flush_due(t, T0 + 30 * S) for f in flushers))
    queued = [q for r in rounds for q in r.queued]
    assert len(queued) == len(set(queued)) == 12  # each group notified exactly once
    # a group another process holds is skipped, not waited for
    await routed.notifier.enqueue([fired(t, "db_slow", T0 + 1 * M)])
    with tenant_scope(t):
        async with db.tenant_transaction() as conn:
            held = await conn.execute(
                text(
                    "SELECT id FROM tenantry.alert_groups "
                    "WHERE alerts -> 'db_slow' IS NOT NULL FOR UPDATE"
                )
            )
            assert len(held.all()) == 1
            elsewhere = asyncio.get_running_loop().create_task(  # not in this transaction
                AlertGroups(db).flush_due(t, T0 + 2 * M), context=contextvars.Context()
            )
            other = await asyncio.wait_for(elsewhere, 5)
            assert other.queued == []
    assert len((await AlertGroups(db).flush_due(t, T0 + 2 * M)).queued) == 1
    assert (await routed.dispatcher.dispatch(t)).sent == 13
    assert len(routed.slack.messages("C0ALERTS")) == 13


def _rule(service: str) -> AlertRule:
    return load_rules(
        f"alerts:\n  - name: {service}\n    condition: x > 1\n    severity: info\n"
        f"    labels: {{service: {service}}}\n"
    )[0]


async def test_many_alerts_in_one_group_stay_within_slacks_limits(routed: Setup) -> None:
    t = routed.tenant
    await routed.notifier.set_routing(t, ROUTING.replace("[service]", "[]"))
    many = [
        Transition(t, _long(n), AlertStatus.PENDING, AlertStatus.FIRING, T0, {"v": n})
        for n in range(60)
    ]
    await routed.notifier.enqueue(many)
    assert await routed.at(30 * S) == 1
    message = routed.last()
    assert message["text"].startswith("[FIRING:60] default")
    validate_blocks(message["blocks"], message["text"])
    assert "characters not shown" in str(message["blocks"])  # cut, with a visible marker


def _long(n: int) -> AlertRule:
    return load_rules(
        f"alerts:\n  - name: rule_{n}\n    condition: x > 1\n    severity: info\n"
        f"    annotations: {{summary: '{'word ' * 200}'}}\n"
    )[0]


async def test_without_routing_each_transition_is_queued_at_once(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("ag")).id
    notifier = AlertNotifier(db)
    await notifier.set_receiver(tenant, "default", webhook_url="https://hooks.slack.com/x")
    queued = await notifier.enqueue([fired(tenant, "db_slow", T0), fired(tenant, "api_slow", T0)])
    assert [q[:3] for q in queued] == ["ao_", "ao_"]
    assert await AlertGroups(db).groups(tenant) == []


CONTINUED = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 0s
  routes:
    - {matchers: ['service="db"'], receiver: default, continue: true}
    - {matchers: ['service="db"'], receiver: ops, continue: true}
    - {matchers: ['service="db"'], receiver: default}
"""


async def test_each_receiver_gets_an_alert_once_however_many_routes_reach_it(
    routed: Setup,
) -> None:
    t = routed.tenant
    ops = routed.slack.webhook("C0OPS", "ops")
    await routed.notifier.set_receiver(t, "ops", webhook_url=ops)
    await routed.notifier.set_routing(t, CONTINUED)
    assert len(await routed.notifier.enqueue([fired(t, "db_slow", T0)])) == 2
    assert await routed.at(0 * S) == 2  # group_wait 0: at the first visit
    assert len(routed.slack.messages("C0ALERTS")) == 1
    assert len(routed.slack.messages("C0OPS")) == 1


async def test_an_alert_resolved_under_a_silence_still_leaves_its_group(
    routed: Setup, db: Database
) -> None:
    t = routed.tenant
    await routed.notifier.enqueue([fired(t, "db_slow", T0)])
    assert await routed.at(30 * S) == 1
    routed.clock.at = T0 + 1 * M
    silences = SilenceManager(db, clock=routed.clock)
    await silences.create(t, ['alertname="db_slow"'], ends_at=T0 + 3 * timedelta(hours=1))
    assert await routed.notifier.enqueue([fired(t, "api_slow", T0 + 2 * M)])  # not silenced
    await routed.notifier.enqueue([resolved(t, "db_slow", T0 + 2 * M)])
    await routed.at(5 * M + 30 * S)
    views = await routed.dispatcher.groups.groups(t)
    assert all("db_slow" not in v.alerts for v in views)  # the resolution reached its group
    assert await routed.at(61 * M) == 0  # so it is not repeated as firing an hour on


async def test_a_silence_mutes_a_group_at_each_flush_as_alertmanager_does(
    routed: Setup, db: Database
) -> None:
    t, h = routed.tenant, timedelta(hours=1)
    silences = SilenceManager(db, clock=routed.clock)
    await routed.notifier.enqueue([fired(t, "db_slow", T0)])
    routed.clock.at = T0 + 10 * S  # silenced after it joined its group, before group_wait
    first = await silences.create(t, ['alertname="db_slow"'], ends_at=T0 + 20 * M)
    assert await routed.at(30 * S) == 0
    assert [v.alerts for v in await routed.dispatcher.groups.groups(t)] == [{"db_slow": "firing"}]
    assert await routed.at(15 * M + 30 * S) == 0  # still silenced
    assert first.ends_at == T0 + 20 * M
    assert await routed.at(20 * M + 30 * S) == 1  # the silence ended: its first notification
    assert routed.last()["text"].startswith("[FIRING] warning: db_slow")
    routed.clock.at = T0 + 21 * M
    await silences.create(t, ['alertname="db_slow"'], ends_at=T0 + 3 * h)
    assert await routed.at(h + 25 * M + 30 * S) == 0  # a repeat was due: muted
    assert await routed.at(3 * h + 30 * S) == 1  # it ended: the repeat goes out
    # one alert of two muted: the message lists the other only
    await routed.notifier.enqueue([fired(t, "db_errors", T0 + 3 * h + M)])
    routed.clock.at = T0 + 3 * h + 2 * M
    await silences.create(t, ['alertname="db_slow"'], ends_at=T0 + 5 * h)
    assert await routed.at(3 * h + 5 * M + 30 * S) == 1
    shown = str(routed.last()["blocks"])
    assert "db_errors" in shown
    assert "db_slow" not in shown
