"""The retention job: each tenant's old data deleted by its tier's ``retention_days``.

Every ``interval`` seconds (an hour) the job visits the tenants noticed since the last visit, and
every ``sweep_every`` rounds (a day) it notices every active tenant and the platform. A visit
deletes, in the tenant's transactions and at most ``batch`` rows of a kind at a time (a visit
with more left comes back next round):

- ``workflows``: finished workflows (completed, compensated, failed, cancelled) whose
  ``finished_at`` is older than the tier's days, with their steps' history;
- ``security_events``: security events older than the tier's days (the threat analysis reads
  the last hours and its baseline the last weeks: a tier keeps at least 30 days);
- ``alert_deliveries``: sent or failed messages of the alert outbox older than the tier's
  days (queued ones stay until delivered).

The metric series' own retention (``metrics``) is the monitoring manager's downsampler's, given
the same policies.

**Storage recounts.** Given ``recount`` (the app's: the metadata manager's ``recount_storage``),
each sweep also queues every active tenant to have its stored-bytes total set to the exact sum
of its metadata versions (the running total may drift: rows restored by hand), and each round,
before its visits, recounts the tenants at the head of the queue: at most ``recount_batch`` of
them and for at most ``recount_seconds`` (a recount is O(the tenant's versions)). The queue is
first in, first out and a tenant is in it once: every active tenant is recounted in turn, about
once between two sweeps when the rounds keep up; one tenant's failure is logged and the others
go on. Each visit with deletions is recorded on the tenant's audit log
(``retention.delete``, with the counts). Suspended and archived tenants are not swept (their
data waits until they are active again, or erased).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import text

from tenantry.context import PLATFORM_TENANT, tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, change_log_for
from tenantry.db.engine import Database
from tenantry.errors import TenantryError
from tenantry.lifecycle.policies import TierPolicy
from tenantry.logging import get_logger
from tenantry.tenants import TenantRegistry, TenantStatus, TenantTier
from tenantry.tenants.rounds import ActiveTenantRounds

__all__ = ["RETENTION_QUERIES", "RetentionJob", "RetentionVisit"]

_log = get_logger("tenantry.retention")

_FINISHED: Final = "('completed', 'compensated', 'failed', 'cancelled')"
#: The kind of data, and the statement that deletes up to ``:n`` of the tenant's rows of that
#: kind older than ``:before`` (in the tenant's transaction: row-level security scopes it).
RETENTION_QUERIES: Final[Mapping[str, str]] = {
    "workflows": (
        "DELETE FROM tenantry.workflows WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM "
        f"tenantry.workflows WHERE status IN {_FINISHED} AND finished_at < :before LIMIT :n)"
    ),
    "security_events": (
        "DELETE FROM tenantry.security_events WHERE (tenant_id, event_id) IN (SELECT "
        "tenant_id, event_id FROM tenantry.security_events WHERE occurred_at < :before LIMIT :n)"
    ),
    "alert_deliveries": (
        "DELETE FROM tenantry.alert_outbox WHERE (tenant_id, id) IN (SELECT tenant_id, id FROM "
        "tenantry.alert_outbox WHERE status IN ('sent', 'failed') AND created_at < :before "
        "LIMIT :n)"
    ),
}


@dataclass(frozen=True, slots=True)
class RetentionVisit:
    """What one visit deleted, by kind; whether rows older than the tier's days are left."""

    tenant_id: str
    deleted: Mapping[str, int] = field(default_factory=dict)
    more: bool = False


class RetentionJob(ActiveTenantRounds[RetentionVisit]):
    """See the module docstring."""

    work = "retention"
    with_platform = True

    def __init__(
        self,
        database: Database | None,
        policies: Mapping[TenantTier, TierPolicy],
        *,
        interval: float = 3600.0,
        sweep_every: int = 24,
        batch: int = 10_000,
        audit: ChangeLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recount: Callable[[str], Awaitable[int]] | None = None,
        recount_batch: int = 200,
        recount_seconds: float = 30.0,
    ) -> None:
        self._database = database
        super().__init__(interval=interval)
        self.policies, self.sweep_every, self.batch = policies, sweep_every, batch
        self._audit, self._clock = audit, clock
        self.recount, self.recount_batch, self.recount_seconds = (
            recount,
            recount_batch,
            recount_seconds,
        )
        self._recounts: OrderedDict[str, None] = OrderedDict()
        #: Tenants whose storage total was recounted, and recounts that failed.
        self.recounted = 0
        self.recount_failures = 0

    @property
    def recounts_due(self) -> tuple[str, ...]:
        """The tenants waiting for a storage recount, first first."""
        return tuple(self._recounts)

    def recount_soon(self, tenant_id: str) -> None:
        """Queue ``tenant_id`` for a storage recount (at the end, unless it is queued)."""
        self._recounts.setdefault(validate_tenant_id(tenant_id), None)

    async def sweep(self) -> int:
        found = await super().sweep()
        if self.recount is not None:
            for tenant_id in sorted(self.noticed - {PLATFORM_TENANT}):
                self._recounts.setdefault(tenant_id, None)
        return found

    async def before_round(self, number: int) -> None:
        await super().before_round(number)
        await self.recount_some()

    async def recount_some(self) -> int:
        """Recount the storage totals of the tenants at the head of the queue (at most
        ``recount_batch``, for at most ``recount_seconds``); how many were recounted."""
        if self.recount is None:
            return 0
        done, start = 0, time.monotonic()
        while (
            self._recounts
            and done < self.recount_batch
            and time.monotonic() - start < self.recount_seconds
        ):
            tenant_id, _ = self._recounts.popitem(last=False)
            try:
                tenant = await TenantRegistry(await self._db()).get(tenant_id)
                if tenant.status is TenantStatus.ACTIVE:  # not one being erased meanwhile
                    await self.recount(tenant_id)
                    self.recounted += 1
                    done += 1
            except TenantryError as exc:  # one tenant's failure must not stop the others
                self.recount_failures += 1
                _log.warning("storage recount failed", tenant=tenant_id, error=exc.detail)
            except Exception:  # noqa: BLE001 - nor a bug met in one tenant's data
                self.recount_failures += 1
                _log.exception("storage recount failed", tenant=tenant_id)
        return done

    async def visit(self, tenant_id: str) -> RetentionVisit:
        return await self.apply(tenant_id)

    def again(self, result: RetentionVisit) -> bool:
        return result.more

    async def apply(self, tenant_id: str) -> RetentionVisit:
        """Delete ``tenant_id``'s data older than its tier keeps (one batch of each kind)."""
        validate_tenant_id(tenant_id)
        db, now = await self._db(), self._clock()
        policy = self.policies[(await TenantRegistry(db).get(tenant_id)).tier]
        deleted: dict[str, int] = {}
        with tenant_scope(tenant_id):
            for kind, statement in RETENTION_QUERIES.items():
                before = now - timedelta(days=policy.retention_days[kind])
                async with db.tenant_transaction() as conn:
                    found = await conn.execute(text(statement), {"before": before, "n": self.batch})
                deleted[kind] = int(getattr(found, "rowcount", 0) or 0)
        if any(deleted.values()):
            trail = self._audit or change_log_for(db)
            await trail.prepare(tenant_id)
            with tenant_scope(tenant_id):
                async with db.tenant_transaction():
                    await trail.record(tenant_id, "retention.delete", "tenant:" + tenant_id,
                                       actor="tenantry.retention",
                                       detail={k: str(v) for k, v in deleted.items()})  # fmt: skip
        return RetentionVisit(tenant_id, deleted, any(n >= self.batch for n in deleted.values()))
