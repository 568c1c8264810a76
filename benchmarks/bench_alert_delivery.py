"""From a rule firing to the Slack-like server holding the message: the service's alert path
against a bare post of the same message, in the same run, on the benchmark's database and a
loopback Slack (``tests/support/slack_server.py``, a real HTTP server).

- ``alert fired -> Slack received``: a transition to firing is queued in the tenant's outbox
  (``AlertNotifier.enqueue``: the receiver looked up, the Block Kit message built, one INSERT in
  the tenant's transaction), then the dispatcher's visit (``AlertDispatcher.visit``: the
  tenant's due aggregation groups looked for (none: no routing), the row claimed with SKIP
  LOCKED, the receiver's secret opened, one webhook POST, the outcome recorded); timed until
  the server has the message. What it leaves out: the wait for the rounds, which the service
  runs every 30 s (evaluation) and every second (delivery), so the delay a tenant sees is up to
  ~31 s plus this.
- ``routed, group_wait 0``: the same for a tenant with routing (``group_by: [alertname]``,
  ``group_wait: 0s``): the transition joins a new aggregation group (``enqueue``: the routing
  read and parsed, one upsert), and the visit flushes it (the group locked, ``flush``, the
  outbox row queued and the group updated in one transaction) before it delivers.
- ``alert rule evaluation, 50 rules``: ``AlertManager.evaluate`` of a tenant with 50 rules over
  its series (each rule's series read from ``metric_points``, states upserted).
- peer: ``SlackSender.send`` of the same message to the same webhook, no database.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.alerts import AlertManager, AlertStatus, SlackMessage, Transition, load_rules
from tenantry.alerts.attempts import WebhookTarget
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.notify import AlertNotifier, message_of
from tenantry.monitoring import MonitoringManager
from tenantry.tenants import TenantRegistry
from tests.support.slack_server import SlackServer

__all__ = ["BENCHMARK"]

FIRED = "alert fired -> Slack received (outbox + dispatch + webhook)"
ROUTED = "alert fired -> Slack received, routed, group_wait 0 (group + flush + dispatch)"
EVALUATE = "alert rule evaluation, 50 rules over the tenant's series"
BARE = "SlackSender.send of the same message, no database"
OPERATIONS = (FIRED, ROUTED, EVALUATE, BARE)

_ROUTING = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 0s
"""
_RULES = "alerts:\n" + "".join(
    f"  - name: rule_{n}\n    condition: m{n % 5}_p95 > {n}ms\n    severity: warning\n"
    for n in range(50)
)


async def run(env: Environment, plan: Plan) -> list[Row]:
    tenant = f"bench-alerts-{uuid.uuid4().hex[:8]}"
    await TenantRegistry(env.db).create(tenant, tenant)
    grouped = f"bench-groups-{uuid.uuid4().hex[:8]}"
    await TenantRegistry(env.db).create(grouped, grouped)
    monitoring = MonitoringManager(env.db)
    for n in range(5):
        for value in (0.01, 0.02, 0.2):
            monitoring.record(f"m{n}", value, None, tenant)
    await monitoring.flush(everything=True)
    alerts = AlertManager(env.db, monitoring=monitoring)
    await alerts.set_rules(tenant, _RULES)
    rule = load_rules(_RULES)[0]
    notifier = AlertNotifier(env.db, webhook_prefixes=["http://127.0.0.1:"])  # the loopback
    with SlackServer() as slack:
        hook = slack.webhook("C0ALERTS")
        await notifier.set_receiver(tenant, "default", webhook_url=hook)
        await notifier.set_receiver(grouped, "default", webhook_url=hook)
        await notifier.set_routing(grouped, _ROUTING)
        async with SlackSender(api_base_url=slack.api_base_url) as sender:
            dispatcher = AlertDispatcher(notifier, sender, env.db)

            async def fired() -> None:
                now = datetime.now(UTC)
                change = Transition(
                    tenant, rule, AlertStatus.PENDING, AlertStatus.FIRING, now, {"m0_p95": 0.2}
                )
                before = len(slack.requests)
                await notifier.enqueue([change])
                step = await dispatcher.visit(tenant)
                if step.sent != 1 or len(slack.requests) != before + 1:
                    raise RuntimeError(f"the alert was not delivered: {step}")

            fires = itertools.count()

            async def routed() -> None:
                # a rule of a new name each time: a new group (an existing one would wait for
                # its group_interval)
                named = rule.model_copy(update={"name": f"routed_{next(fires)}"})
                now = datetime.now(UTC)
                change = Transition(
                    grouped, named, AlertStatus.PENDING, AlertStatus.FIRING, now, {"m0_p95": 0.2}
                )
                before = len(slack.requests)
                await notifier.enqueue([change])
                step = await dispatcher.visit(grouped)
                if (step.grouped, step.sent) != (1, 1) or len(slack.requests) != before + 1:
                    raise RuntimeError(f"the routed alert was not delivered: {step}")

            async def evaluate() -> None:
                await alerts.evaluate(tenant)

            sample = message_of(
                Transition(tenant, rule, AlertStatus.PENDING, AlertStatus.FIRING,
                           datetime.now(UTC), {"m0_p95": 0.2})
            )  # fmt: skip
            target = WebhookTarget(hook)

            async def bare() -> None:
                await sender.send(target, SlackMessage(sample.text, sample.blocks))

            cases = [
                Case(FIRED, fired, peer=BARE),
                Case(ROUTED, routed, peer=FIRED),
                Case(EVALUATE, evaluate, peer=BARE),
                Case(BARE, bare),
            ]
            rows = await run_cases(
                cases, plan.capped(iterations=300, warmup=5, memory_iterations=5), "alerts"
            )
    return rows


BENCHMARK = Benchmark(name="alert delivery", operations=OPERATIONS, run=run)
