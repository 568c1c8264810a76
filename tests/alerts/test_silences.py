"""Silences as objects with expiry, on PostgreSQL: pending → active → expired as the clock moves,
updates and expiry, the bounds, collection after the retention, the audit trail, and a silenced
alert kept from the loopback Slack while an unsilenced one (and another tenant's) is delivered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tenantry.alerts import (
    MAX_KEPT_EXPIRED,
    MAX_TENANT_SILENCES,
    SILENCE_RETENTION,
    SilenceManager,
    SilenceState,
)
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.notify import AlertNotifier
from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import Conflict, InvalidInput, NotFound
from tests.alerts.test_dispatch import LOOPBACK, T0, _firing
from tests.conftest import NewTenant
from tests.support.slack_server import SlackServer

HOUR = timedelta(hours=1)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _audited(db: Database, tenant: str) -> list[tuple[str, str, dict[str, Any]]]:
    entries = await trail_for(db).audit_log.entries(tenant, 0, 100)
    return [
        (e.entry.action, e.entry.resource, e.entry.detail or {})
        for e in entries
        if e.entry is not None and "silence" in e.entry.action
    ]


async def _count(db: Database, tenant: str) -> int:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM tenantry.alert_silences")))


async def _insert(db: Database, tenant: str, count: int, starts: datetime, ends: datetime) -> None:
    """``count`` silences of ``tenant`` written directly (to reach a bound quickly)."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tenantry.alert_silences (tenant_id, id, matchers, starts_at, "
                    "ends_at, created_by) SELECT :t, gen_random_uuid(), ARRAY['a=\"' || n || "
                    "'\"'], CAST(:starts AS timestamptz) - n * interval '1 second', "
                    "CAST(:ends AS timestamptz) - n * interval '1 second', "
                    "'seed' FROM generate_series(1, :count) AS n"
                ),
                {"t": tenant, "starts": starts, "ends": ends, "count": count},
            )


async def test_a_silence_is_pending_then_active_then_expired_then_collected(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("si")).id
    clock = Clock()
    silences = SilenceManager(db, clock=clock)
    made = await silences.create(
        tenant,
        ['alertname="disk_full"', 'env=~"staging|dev"'],
        starts_at=T0 + HOUR,
        ends_at=T0 + 3 * HOUR,
        comment="disk maintenance",
        actor="session:ada",
    )
    assert made.state is SilenceState.PENDING
    assert made.matchers == ['alertname="disk_full"', 'env=~"staging|dev"']
    assert (made.created_by, made.comment, made.created_at) == (
        "session:ada",
        "disk maintenance",
        T0,
    )
    for at, state in (
        (T0 + HOUR - timedelta(seconds=1), SilenceState.PENDING),
        (T0 + HOUR, SilenceState.ACTIVE),
        (T0 + 3 * HOUR - timedelta(seconds=1), SilenceState.ACTIVE),
        (T0 + 3 * HOUR, SilenceState.EXPIRED),
        (T0 + 3 * HOUR + SILENCE_RETENTION - timedelta(seconds=1), SilenceState.EXPIRED),
    ):
        clock.now = at
        assert (await silences.silence(tenant, made.id)).state is state, at
        assert [s.id for s in await silences.silences(tenant, state=state)] == [made.id]
        for other in (s for s in SilenceState if s is not state):
            assert await silences.silences(tenant, state=other) == []
    clock.now = T0 + 3 * HOUR + SILENCE_RETENTION
    with pytest.raises(NotFound):
        await silences.silence(tenant, made.id)
    assert await silences.silences(tenant) == []
    assert await _count(db, tenant) == 1  # not read any more; collected at the next change
    await silences.create(tenant, ['alertname="x"'], ends_at=clock.now + HOUR)
    assert await _count(db, tenant) == 1
    audited = await _audited(db, tenant)
    assert audited[0][:2] == ("alerts.silence.create", f"alert_silence:{made.id}")
    assert audited[0][2]["matchers"] == made.matchers
    # the collection and the second silence: one transaction (its entries in either order)
    assert sorted(a[0] for a in audited[1:]) == ["alerts.silence.create", "alerts.silences.collect"]
    assert {"ids": [made.id]} in [a[2] for a in audited[1:]]


async def test_update_and_expire(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("si")).id
    clock = Clock()
    silences = SilenceManager(db, clock=clock)
    active = await silences.create(tenant, ['severity="warning"'], ends_at=T0 + HOUR)
    assert (active.starts_at, active.state) == (T0, SilenceState.ACTIVE)  # default: now
    # a start in the past is now, as in Alertmanager
    past = await silences.create(tenant, ["a=b"], starts_at=T0 - HOUR, ends_at=T0 + 3 * HOUR)
    assert past.starts_at == T0
    pending = await silences.create(
        tenant, ['team="db"'], starts_at=T0 + HOUR, ends_at=T0 + 2 * HOUR
    )
    clock.now = T0 + timedelta(minutes=10)
    longer = await silences.update(
        tenant, active.id, ends_at=T0 + 2 * HOUR, comment="longer", actor="session:ada"
    )
    assert (longer.ends_at, longer.comment, longer.updated_at) == (
        T0 + 2 * HOUR,
        "longer",
        clock.now,
    )
    assert (longer.id, longer.matchers, longer.created_at) == (active.id, active.matchers, T0)
    with pytest.raises(InvalidInput, match="past"):
        await silences.update(tenant, active.id, ends_at=T0 + timedelta(minutes=5))
    with pytest.raises(InvalidInput, match="at most 365 days"):
        await silences.update(tenant, active.id, ends_at=T0 + timedelta(days=366))
    with pytest.raises(InvalidInput, match="ends_at or comment"):
        await silences.update(tenant, active.id)
    expired = await silences.expire(tenant, active.id, actor="session:ada")
    assert (expired.state, expired.ends_at, expired.starts_at) == (
        SilenceState.EXPIRED,
        clock.now,
        T0,
    )
    never = await silences.expire(tenant, pending.id)  # a pending one never starts
    assert (never.starts_at, never.ends_at, never.state) == (clock.now, clock.now, "expired")
    clock.now += HOUR
    assert (await silences.expire(tenant, active.id)).ends_at == T0 + timedelta(minutes=10)
    with pytest.raises(Conflict, match="expired"):
        await silences.update(tenant, active.id, comment="again")
    with pytest.raises(NotFound):
        await silences.expire(tenant, "5b0c1b0e-0000-4000-8000-000000000000")
    with pytest.raises(NotFound):
        await silences.silence(tenant, "not-a-uuid")
    # active ones (by end) first, then pending ones (by start), then expired ones (latest end
    # first; the two expired here ended at the same time)
    listed = await silences.silences(tenant)
    assert [(s.id, s.state) for s in listed] == [
        (past.id, "active"),
        *sorted([(active.id, "expired"), (pending.id, "expired")]),
    ]
    assert [a[0] for a in await _audited(db, tenant)] == [
        "alerts.silence.create",
        "alerts.silence.create",
        "alerts.silence.create",
        "alerts.silence.update",
        "alerts.silence.expire",
        "alerts.silence.expire",  # expiring an expired one records nothing
    ]


async def test_list_filters_by_matchers(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("si")).id
    silences = SilenceManager(db, clock=Clock())
    disk = await silences.create(tenant, ['alertname="disk_full"', "env=prod"], ends_at=T0 + HOUR)
    cpu = await silences.create(tenant, ['alertname="cpu"', "env=dev"], ends_at=T0 + HOUR)

    async def found(*filters: str) -> set[str]:
        return {s.id for s in await silences.silences(tenant, matchers=filters)}

    assert await found('alertname="disk_full"') == {disk.id}
    assert await found('env=~"prod|dev"') == {disk.id, cpu.id}
    assert await found("env!=prod") == {cpu.id}
    assert await found('alertname="cpu", env="prod"') == set()
    assert await found('team="db"') == set()
    # a label name that is not an identifier is stored quoted, and reads back
    odd = await silences.create(tenant, ['"team name"="db, \\"core\\""'], ends_at=T0 + HOUR)
    assert odd.matchers == ['"team name"="db, \\"core\\""']
    assert await found('"team name"=~"db.*"') == {odd.id}
    assert odd.silence().mutes({"team name": 'db, "core"'}, T0)
    with pytest.raises(InvalidInput):
        await found("not a matcher")


@pytest.mark.parametrize(
    ("matchers", "options", "match"),
    [
        (["alertname"], {}, "invalid matcher"),
        (['service=~"(a+)+"'], {}, "exponential"),
        ([], {}, "at least one matcher"),
        (['alertname=~".*"'], {}, "must not match ''"),
        (['env=""', 'team!~".+"'], {}, "must not match ''"),
        (["a=b"] * 33, {}, "at most 32 matchers"),
        (["a=b"], {"starts_at": T0 + 2 * HOUR}, "after starts_at"),
        (["a=b"], {"ends_at": T0 - HOUR, "starts_at": T0 - 2 * HOUR}, "past"),
        (["a=b"], {"ends_at": T0 + timedelta(days=366)}, "at most 365 days"),
        (["a=b"], {"ends_at": datetime(2026, 12, 7)}, "zone"),  # a time without its zone
        (["a=b"], {"comment": "x" * 1001}, "comment"),
        ("a=b", {}, "list of matchers"),
    ],
)
async def test_invalid_silences_change_nothing(
    db: Database, new_tenant: NewTenant, matchers: Any, options: dict[str, Any], match: str
) -> None:
    tenant = (await new_tenant("si")).id
    silences = SilenceManager(db, clock=Clock())
    with pytest.raises(InvalidInput, match=match):
        await silences.create(tenant, matchers, **{"ends_at": T0 + HOUR, **options})
    assert await _count(db, tenant) == 0
    assert await _audited(db, tenant) == []


async def test_the_bounds_of_live_and_expired_silences(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("si")).id
    clock = Clock()
    silences = SilenceManager(db, clock=clock)
    await _insert(db, tenant, MAX_TENANT_SILENCES - 1, T0, T0 + HOUR)
    last = await silences.create(tenant, ["a=b"], ends_at=T0 + HOUR)
    with pytest.raises(Conflict, match="1,000 live silences"):
        await silences.create(tenant, ["a=b"], ends_at=T0 + HOUR)
    assert await _count(db, tenant) == MAX_TENANT_SILENCES
    await silences.expire(tenant, last.id)  # one live fewer: room for one
    await silences.create(tenant, ["a=c"], ends_at=T0 + HOUR)
    # expired ones do not count, and beyond MAX_KEPT_EXPIRED the oldest are collected
    clock.now = T0 + 2 * HOUR  # every silence has expired
    await _insert(db, tenant, 5, T0, T0 + timedelta(minutes=30))  # older than the others
    assert await _count(db, tenant) == MAX_TENANT_SILENCES + 1 + 5
    await silences.create(tenant, ["a=d"], ends_at=clock.now + HOUR)
    assert await _count(db, tenant) == MAX_KEPT_EXPIRED + 1
    expired = {s.id for s in await silences.silences(tenant, state=SilenceState.EXPIRED)}
    assert len(expired) == MAX_KEPT_EXPIRED
    assert last.id not in expired  # expired at T0: among the six oldest, collected
    collected = [a for a in await _audited(db, tenant) if a[0] == "alerts.silences.collect"]
    assert len(collected) == 1
    assert len(collected[0][2]["ids"]) == MAX_TENANT_SILENCES + 1 + 5 - MAX_KEPT_EXPIRED


async def test_a_silenced_alert_does_not_reach_slack(
    db: Database, new_tenant: NewTenant, slack: SlackServer
) -> None:
    """Tenant A silences slow_sessions (its ops_only silence ended before the alert fired);
    tenant B, with the same rules, silences nothing: A's silence does not mute B's alert."""
    a, b = (await new_tenant("si")).id, (await new_tenant("si")).id
    silences = SilenceManager(db, clock=Clock())
    await silences.create(a, ['alertname="slow_sessions"'], ends_at=T0 + HOUR)
    await silences.create(a, ['alertname="ops_only"'], ends_at=T0 + timedelta(seconds=30))
    for tenant, channel in ((a, "C0ALERTS"), (b, "C0OPS")):
        notifier = AlertNotifier(db, webhook_prefixes=[LOOPBACK])
        await notifier.set_receiver(tenant, "default", webhook_url=slack.webhook(channel))
        await notifier.set_receiver(tenant, "ops", webhook_url=slack.webhook(channel, tenant))
        queued = await _firing(db, tenant, notifier)  # both rules fire at T0 + 60 s
        assert len(queued) == (1 if tenant == a else 2)
        async with SlackSender(api_base_url=slack.api_base_url) as sender:
            await AlertDispatcher(notifier, sender, db).dispatch(tenant)
    texts = [m["text"] for m in slack.messages("C0ALERTS")]
    assert len(texts) == 1
    assert "critical: ops_only" in texts[0]
    assert sorted("slow_sessions" in m["text"] for m in slack.messages("C0OPS")) == [False, True]
