"""AlertDispatcher: delivers each tenant's queued alert messages to Slack, a round a second.

A visit claims up to ``batch`` due rows of a tenant (``FOR UPDATE SKIP LOCKED``, and their
``not_before`` pushed a lease ahead, so another process neither takes them nor waits), then
makes one attempt each with :class:`~tenantry.alerts.delivery.SlackSender`, outside any
transaction, and records the outcome on the row (``attempts``, ``last_error``):

- delivered: ``sent`` (with Slack's ``ts`` when the Web API gave one);
- 429: every queued row of the same receiver waits ``Retry-After`` (re-queued, never slept on:
  the worker goes on to the next receiver), and the rest of that receiver's claimed rows are
  put back untried;
- 5xx, a timeout, a refused connection: retried after the sender's backoff, until
  ``max_attempts``, then ``failed``;
- a permanent refusal (``invalid_auth``, ``channel_not_found``...) or a receiver that is gone:
  ``failed``.

The outbox is durable: what was queued before a restart is delivered after it (the first round
sweeps every active tenant in, and the platform, whose route for operators has groups and an
outbox of its own: :mod:`tenantry.alerts.platform_route`; and every ``sweep_every`` rounds
again).

Before it claims, a visit flushes the tenant's aggregation groups that are due, in the claim's
transaction (:meth:`~tenantry.alerts.groups.AlertGroups.flush_in`: routed alerts, Alertmanager's
``group_wait``, ``group_interval`` and ``repeat_interval``), so a notification they queue goes
out in the same visit. The dispatcher remembers when each tenant's next group is due and visits
it then; a group that fell due while the service was down is found by the first sweep.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.alerts.attempts import (
    BotTarget,
    Delivered,
    Permanent,
    Retryable,
    RetryAfter,
    SlackMessage,
)
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.groups import AlertGroups
from tenantry.alerts.notify import AlertNotifier
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.tenants.rounds import ActiveTenantRounds
from tenantry.tracing import traced

__all__ = ["AlertDispatcher", "DispatchStep"]

_LEASE: Final = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class DispatchStep:
    """One visit: messages sent, deferred (rate-limited or to retry), failed; whether more are
    due; the notifications its groups' flush queued."""

    tenant_id: str
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    more: bool = False
    grouped: int = 0


class AlertDispatcher(ActiveTenantRounds[DispatchStep]):
    """Delivers the outbox; see the module docstring."""

    work = "alert delivery"
    with_platform = True  # the platform's route for operators has groups and an outbox too

    def __init__(
        self,
        notifier: AlertNotifier,
        sender: SlackSender,
        database: Database | None = None,
        *,
        interval: float = 1.0,
        batch: int = 20,
        max_attempts: int = 12,
        sweep_every: int = 600,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        super().__init__(interval=interval)
        self.notifier, self.sender = notifier, sender
        self.batch, self.max_attempts, self.sweep_every = batch, max_attempts, sweep_every
        #: The tenants' aggregation groups, flushed at each visit by ``clock``'s time.
        self.groups = AlertGroups(database, clock=clock)
        self._groups_due: dict[str, datetime] = {}

    async def visit(self, tenant_id: str) -> DispatchStep:
        return await self.dispatch(tenant_id)

    def again(self, result: DispatchStep) -> bool:
        return result.more or result.deferred > 0

    async def run_once(self) -> list[DispatchStep]:
        now = self.groups.clock()
        for tenant_id, due in list(self._groups_due.items()):
            if due <= now:
                self.notice(tenant_id)
        return await super().run_once()

    @traced("alerts.dispatch")
    async def dispatch(self, tenant_id: str) -> DispatchStep:
        """One visit of ``tenant_id``'s outbox (see the module docstring)."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                flushed = await self.groups.flush_in(conn, tenant_id)
                claimed = await self._claim(conn)
        if flushed.next_at is None:
            self._groups_due.pop(tenant_id, None)
        else:
            self._groups_due[tenant_id] = flushed.next_at
        sent = deferred = failed = 0
        limited: dict[str, float] = {}  # receivers rate-limited in this visit: their wait
        for row in claimed:
            receiver = row["receiver"]
            if receiver in limited:
                await self._update(tenant_id, row["id"], "queued", None, limited[receiver], back=1)
                deferred += 1
                continue
            target = await self.notifier.target(tenant_id, receiver)
            if target is None:
                await self._update(tenant_id, row["id"], "failed", "receiver_gone", 0)
                failed += 1
                continue
            body = (
                row["message"] if isinstance(row["message"], dict) else json.loads(row["message"])
            )
            thread = body.get("thread_ts") if isinstance(target, BotTarget) else None
            message = SlackMessage(
                text=body["text"], blocks=body.get("blocks", ()), thread_ts=thread
            )
            outcome = await self.sender.send(target, message, attempt=row["attempts"])
            if isinstance(outcome, Delivered):
                await self._update(tenant_id, row["id"], "sent", None, 0, ts=outcome.ts)
                sent += 1
            elif isinstance(outcome, RetryAfter):
                limited[receiver] = outcome.seconds
                await self._defer_receiver(tenant_id, receiver, outcome.seconds)
                await self._update(tenant_id, row["id"], "queued", "rate_limited", outcome.seconds)
                deferred += 1
            elif isinstance(outcome, Retryable) and row["attempts"] < self.max_attempts:
                await self._update(tenant_id, row["id"], "queued", outcome.reason, outcome.backoff)
                deferred += 1
            else:
                error = outcome.error if isinstance(outcome, Permanent) else outcome.reason
                await self._update(tenant_id, row["id"], "failed", error, 0)
                failed += 1
        more = len(claimed) == self.batch or flushed.more
        return DispatchStep(tenant_id, sent, deferred, failed, more, len(flushed.queued))

    async def _claim(self, conn: AsyncConnection) -> list[Any]:
        rows = await conn.execute(
            text(
                "UPDATE tenantry.alert_outbox SET not_before = now() + :lease, "
                "attempts = attempts + 1 WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM "
                "tenantry.alert_outbox WHERE status = 'queued' AND "
                "not_before <= now() ORDER BY created_at, id LIMIT :n FOR UPDATE SKIP LOCKED) "
                "RETURNING id, receiver, message, attempts, created_at"
            ),
            {"lease": _LEASE, "n": self.batch},
        )
        return sorted(rows.mappings().all(), key=lambda r: (r["created_at"], r["id"]))

    async def _update(
        self,
        tenant_id: str,
        row_id: str,
        status: str,
        error: str | None,
        wait: float,
        *,
        ts: str | None = None,
        back: int = 0,
    ) -> None:
        """Record an attempt's outcome (and the attempt itself, unless it was not made:
        ``back`` gives back attempts not made)."""
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                if not back:
                    outcome = "rate_limited" if error == "rate_limited" else status
                    await conn.execute(
                        text(
                            "INSERT INTO tenantry.alert_attempts (tenant_id, outbox_id, attempt, "
                            "outcome, detail) SELECT :t, :id, attempts, :outcome, :error FROM "
                            "tenantry.alert_outbox WHERE tenant_id = :t AND id = :id "
                            "ON CONFLICT DO NOTHING"
                        ),
                        {"t": tenant_id, "id": row_id, "outcome": outcome, "error": error},
                    )
                await conn.execute(
                    text(
                        "UPDATE tenantry.alert_outbox SET status = :status, last_error = "
                        "coalesce(:error, last_error), not_before = now() + :wait, "
                        "attempts = attempts - :back, slack_ts = coalesce(:ts, slack_ts), "
                        "sent_at = CASE WHEN :status = 'sent' THEN now() ELSE sent_at END "
                        "WHERE id = :id"
                    ),
                    {
                        "id": row_id,
                        "status": status,
                        "error": error,
                        "wait": timedelta(seconds=wait),
                        "back": back,
                        "ts": ts,
                    },
                )

    async def _defer_receiver(self, tenant_id: str, receiver: str, seconds: float) -> None:
        """Every queued message of ``receiver`` waits ``seconds`` (Slack's Retry-After)."""
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                await conn.execute(
                    text(
                        "UPDATE tenantry.alert_outbox SET not_before = greatest(not_before, "
                        "now() + :wait) WHERE receiver = :r "
                        "AND status = 'queued'"
                    ),
                    {"r": receiver, "wait": timedelta(seconds=seconds)},
                )
