"""AlertManager: each tenant's alert rules, evaluated by the service, their states kept.

A tenant sets its rules as the documents write them (YAML, ``alerts: [{name, condition,
severity, for, labels, annotations}]``); they replace the tenant's rules as a whole, like a rules
file, and the change is audited. The :class:`AlertEvaluator` (a round every ``interval``
seconds, 30 by default) evaluates every rule of the tenants that have rules over their series
(:mod:`tenantry.alerts.series`) and moves each rule's alert through inactive → pending (its
condition holds, not yet ``for`` long) → firing → resolved → inactive, in the database: a
restart neither forgets a pending ``for`` nor fires again. Several processes evaluate in turn:
a tenant's evaluation holds a lock of its transaction, and another process finding it taken
skips the tenant that round.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.durations import format_duration
from tenantry.alerts.expressions import SeriesRef
from tenantry.alerts.rules import AlertRule, AlertState, AlertStatus, load_rules, next_state
from tenantry.alerts.series import SeriesSource, Threats
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, NotFound
from tenantry.monitoring.manager import MonitoringManager
from tenantry.tenants.rounds import ActiveTenantRounds
from tenantry.tracing import traced

__all__ = [
    "MAX_TENANT_RULES",
    "MAX_TENANT_SERIES",
    "AlertEvaluator",
    "AlertManager",
    "AlertView",
    "Transition",
]

#: Rules one tenant may have, and distinct series they may read (each one query an evaluation:
#: the evaluation rounds are shared by every tenant, so one tenant's rules must stay cheap).
MAX_TENANT_RULES: Final = 500
MAX_TENANT_SERIES: Final = 100


@dataclass(frozen=True, slots=True)
class AlertView:
    """A rule's alert as it stands: the rule, its state, and what its condition last read."""

    rule: AlertRule
    state: AlertState
    observed: dict[str, float | str]


@dataclass(frozen=True, slots=True)
class Transition:
    """An evaluation moved ``rule``'s alert from ``before`` to ``after`` (at ``at``)."""

    tenant_id: str
    rule: AlertRule
    before: AlertStatus
    after: AlertStatus
    at: datetime
    #: What the rule's condition read at that evaluation.
    observed: dict[str, float | str]


def _definition(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "condition": rule.condition.source,
        "severity": rule.severity.value,
        "for": format_duration(rule.hold_for),
        "labels": rule.labels,
        "annotations": rule.annotations,
    }


class AlertManager(RecordsChanges):
    """Rules, states and evaluation of the tenants' alerts; see the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        audit: ChangeLog | None = None,
        monitoring: MonitoringManager | None = None,
        threats: Threats | None = None,
        interval: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_transitions: Callable[[list[Transition]], Awaitable[object]] | None = None,
    ) -> None:
        self._database, self._audit = database, audit
        #: Awaited with each background evaluation's transitions (the service queues their
        #: messages: :class:`~tenantry.alerts.notify.AlertNotifier`).
        self.on_transitions = on_transitions
        self.source = SeriesSource(monitoring or MonitoringManager(database), threats)
        self._clock = clock
        #: The background evaluation (started by :meth:`start`).
        self.evaluator = AlertEvaluator(self, interval=interval)

    async def start(self) -> None:
        await self.evaluator.start()

    async def close(self) -> None:
        await self.evaluator.close()

    # -- rules ------------------------------------------------------------------------------------

    async def set_rules(
        self, tenant_id: str, rules_text: str, *, actor: str | None = None
    ) -> list[AlertRule]:
        """Replace ``tenant_id``'s rules by those of ``rules_text`` (YAML); a rule that is kept
        keeps its alert's state. Invalid rules change nothing (:class:`InvalidInput` lists them)."""
        validate_tenant_id(tenant_id)
        if not isinstance(rules_text, str):
            raise InvalidInput("rules are YAML text")
        rules = load_rules(rules_text)
        if len(rules) > MAX_TENANT_RULES:
            raise InvalidInput(f"a tenant has at most {MAX_TENANT_RULES} rules")
        read = {ref for r in rules for ref in r.condition.series()}
        if len(read) > MAX_TENANT_SERIES:  # each is a query at every evaluation, shared by all
            raise InvalidInput(
                f"a tenant's rules read at most {MAX_TENANT_SERIES} series ({len(read)} given)"
            )
        trail = await self._trail(tenant_id)
        names = [r.name for r in rules]
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                await conn.execute(
                    text(
                        "DELETE FROM tenantry.alert_states "
                        "WHERE rule_name <> ALL(CAST(:names AS text[]))"
                    ),
                    {"names": names},
                )
                await conn.execute(text("DELETE FROM tenantry.alert_rules"))
                if rules:
                    await conn.execute(
                        text(
                            "INSERT INTO tenantry.alert_rules (tenant_id, name, definition) "
                            "VALUES (:t, :name, CAST(:definition AS jsonb))"
                        ),
                        [
                            {"t": tenant_id, "name": r.name, "definition": _json(_definition(r))}
                            for r in rules
                        ],
                    )
                await trail.record(
                    tenant_id, "alerts.rules.set", "alert_rules", actor=actor,
                    detail={"rules": names},
                )  # fmt: skip
        if rules:
            self.evaluator.notice(tenant_id)
        return rules

    async def rules(self, tenant_id: str) -> list[AlertRule]:
        """``tenant_id``'s rules, by name."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await _rules(conn)

    async def delete_rule(self, tenant_id: str, name: str, *, actor: str | None = None) -> None:
        """Delete one rule and its alert's state; :class:`NotFound` if there is none."""
        validate_tenant_id(tenant_id)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                deleted = await conn.scalar(
                    text("DELETE FROM tenantry.alert_rules WHERE name = :n RETURNING name"),
                    {"n": name},
                )
                if deleted is None:
                    raise NotFound(f"no alert rule {name!r}")
                await conn.execute(
                    text("DELETE FROM tenantry.alert_states WHERE rule_name = :n"),
                    {"n": name},
                )
                await trail.record(tenant_id, "alerts.rules.delete", name, actor=actor)

    async def alerts(self, tenant_id: str) -> list[AlertView]:
        """Every rule of ``tenant_id`` with its alert's state (inactive if never evaluated)."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rules = await _rules(conn)
                states = await _states(conn)
        return [
            AlertView(r, *states.get(r.name, (AlertState(), {}))) for r in rules
        ]  # fmt: skip

    # -- evaluation -------------------------------------------------------------------------------

    @traced("alerts.evaluate")
    async def evaluate(self, tenant_id: str, now: datetime | None = None) -> list[Transition]:
        """Evaluate every rule of ``tenant_id`` at ``now`` (default: the clock) and store the
        states; the alerts whose status changed. Nothing if another process is evaluating it."""
        return (await self._evaluate(tenant_id, now))[1]

    async def _evaluate(self, tenant_id: str, now: datetime | None) -> tuple[int, list[Transition]]:
        """:meth:`evaluate`, and how many rules the tenant has (the evaluator's one read)."""
        validate_tenant_id(tenant_id)
        at = now or self._clock()
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rules = await _rules(conn)
            if not rules:
                return 0, []
            # read outside the transaction: a series read (the threat analysis) opens its own
            refs: set[SeriesRef] = {ref for r in rules for ref in r.condition.series()}
            values = await self.source.read(tenant_id, refs, at) if refs else {}
            async with db.tenant_transaction() as conn:
                locked = await conn.scalar(
                    text("SELECT pg_try_advisory_xact_lock(hashtext('tenantry.alerts:' || :t))"),
                    {"t": tenant_id},
                )
                if not locked:
                    return len(rules), []
                states = await _states(conn)
                changes: list[Transition] = []
                rows = []
                for rule in rules:
                    before, _ = states.get(rule.name, (AlertState(), {}))
                    if before.evaluated_at is not None and before.evaluated_at > at:
                        continue  # another process evaluated it later than this
                    holds = rule.condition.evaluate(values)
                    after = next_state(before, holds, at, hold_for=rule.hold_for)
                    read = rule.condition.series()
                    observed = {r.key: values[r.key] for r in read if r.key in values}
                    if after.status is not before.status:
                        changes.append(
                            Transition(tenant_id, rule, before.status, after.status, at, observed)
                        )
                    rows.append(_state_row(tenant_id, rule.name, after, observed))
                if rows:
                    await conn.execute(_UPSERT, rows)
        return len(rules), changes


_UPSERT = text(
    "INSERT INTO tenantry.alert_states (tenant_id, rule_name, status, active_since, fired_at, "
    "resolved_at, evaluated_at, observed) VALUES (:t, :rule, :status, :active_since, :fired_at, "
    ":resolved_at, :evaluated_at, CAST(:observed AS jsonb)) ON CONFLICT (tenant_id, rule_name) "
    "DO UPDATE SET status = excluded.status, active_since = excluded.active_since, "
    "fired_at = excluded.fired_at, resolved_at = excluded.resolved_at, "
    "evaluated_at = excluded.evaluated_at, observed = excluded.observed"
)


def _state_row(
    tenant_id: str, rule: str, state: AlertState, observed: dict[str, float | str]
) -> dict[str, Any]:
    return {
        "t": tenant_id,
        "rule": rule,
        "status": state.status.value,
        "active_since": state.active_since,
        "fired_at": state.fired_at,
        "resolved_at": state.resolved_at,
        "evaluated_at": state.evaluated_at,
        "observed": _json(observed),
    }


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


async def _rules(conn: AsyncConnection) -> list[AlertRule]:
    rows = await conn.execute(text("SELECT definition FROM tenantry.alert_rules ORDER BY name"))
    return [AlertRule.model_validate(definition) for (definition,) in rows]


async def _states(conn: AsyncConnection) -> dict[str, tuple[AlertState, dict[str, float | str]]]:
    rows = (
        await conn.execute(
            text(
                "SELECT rule_name, status, active_since, fired_at, resolved_at, evaluated_at, "
                "observed FROM tenantry.alert_states"
            )
        )
    ).all()
    return {r[0]: (AlertState(AlertStatus(r[1]), r[2], r[3], r[4], r[5]), dict(r[6])) for r in rows}


class AlertEvaluator(ActiveTenantRounds[list[Transition]]):
    """Evaluates the tenants that have rules, every ``interval`` seconds: a tenant whose rules
    were set here is noticed, every active tenant and the platform are swept in at the first
    round and every ``sweep_every`` rounds (rules set by another process), and a tenant with
    rules comes back every round."""

    work = "alert evaluation"
    with_platform = True  # the platform's rules, over its own series (``breaker_open``)

    def __init__(self, manager: AlertManager, *, interval: float, sweep_every: int = 120) -> None:
        self._database = manager._database
        super().__init__(interval=interval)
        self.manager, self.sweep_every = manager, sweep_every
        self._with_rules: set[str] = set()

    async def visit(self, tenant_id: str) -> list[Transition]:
        count, changes = await self.manager._evaluate(tenant_id, None)
        if not count:
            self._with_rules.discard(tenant_id)
            return []
        self._with_rules.add(tenant_id)
        if changes and self.manager.on_transitions is not None:
            await self.manager.on_transitions(changes)
        return changes

    def again(self, result: list[Transition]) -> bool:
        return True  # a tenant without rules is dropped in visit()

    async def run_once(self) -> list[list[Transition]]:
        for tenant_id in self._with_rules:
            self.notice(tenant_id)
        return await super().run_once()
