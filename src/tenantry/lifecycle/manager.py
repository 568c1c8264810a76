"""LifecycleManager: a tenant's life, from provisioning to erasure (the documents'
``create_tenant_lifecycle(tenant_id, lifecycle_policy="enterprise_tier")``).

- ``create_tenant_lifecycle`` provisions the tenant with the ``tenant_provisioning`` saga
  (:mod:`tenantry.lifecycle.provisioning`), run by any workflow worker. It is idempotent: for a
  tenant being provisioned it answers the saga under way, for a provisioned one its state, and
  after a provisioning that failed (compensated, failed or cancelled) it starts a new one.
- ``transition`` moves a tenant between the states of
  :data:`~tenantry.tenants.TRANSITIONS` (provisioning → active ⇄ suspended → archived → active;
  anything but deleted → deleted); every credential of a tenant that is not active is refused
  at the boundary, with the tenant's status in the error.
- ``lifecycle`` is a tenant's :class:`ResourceLifecycle`: its status, tier and policy, the
  states it may move to, and its provisioning saga.
- ``export_tenant`` writes every tenant table of the tenant to an archive sealed for it
  (:mod:`tenantry.lifecycle.export`); ``open_export`` verifies and reads one.
- ``erase_tenant`` erases a deleted tenant (rows deleted, keys destroyed, audit tree kept as
  hashes) and answers the :class:`~tenantry.lifecycle.erasure.ErasureReport` that proves it
  (:mod:`tenantry.lifecycle.erasure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tenantry.cache import CacheManager
from tenantry.context import PLATFORM_TENANT, RESERVED_TENANTS, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import Conflict, InvalidInput, TenantExists, TenantNotFound
from tenantry.keys import Keyring
from tenantry.lifecycle.erasure import ErasureParts, ErasureReport, erase
from tenantry.lifecycle.export import ExportProgress, ExportReport, TenantExporter
from tenantry.lifecycle.policies import TierPolicy, policies, tier_of_policy
from tenantry.lifecycle.provisioning import PROVISIONING
from tenantry.lifecycle.retention import RetentionJob
from tenantry.security import SecurityManager
from tenantry.tenants import TRANSITIONS, TenantRegistry, TenantStatus
from tenantry.validation import parse_enum
from tenantry.workflows import WorkflowManager, WorkflowView

__all__ = ["MAX_PROVISIONING_ATTEMPTS", "LifecycleManager", "ResourceLifecycle"]

#: Provisioning sagas of one tenant that may have failed before another is refused.
MAX_PROVISIONING_ATTEMPTS: Final = 20
_UNSUCCESSFUL: Final = frozenset({"compensated", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class ResourceLifecycle:
    """Where a tenant is in its life."""

    tenant_id: str
    status: TenantStatus
    policy: TierPolicy
    next_states: tuple[TenantStatus, ...]
    provisioning: WorkflowView | None

    def as_dict(self) -> dict[str, Any]:
        saga = self.provisioning
        return {
            "tenant_id": self.tenant_id,
            "status": self.status.value,
            "policy": f"{self.policy.tier.value}_tier",
            "quotas": self.policy.as_dict(),
            "next_states": [s.value for s in self.next_states],
            "provisioning": None
            if saga is None
            else {"workflow_id": saga.id, "status": saga.status, "reason": saga.reason},
        }


class LifecycleManager(RecordsChanges):
    """See the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        workflows: WorkflowManager | None = None,
        tenants: TenantRegistry | None = None,
        audit: ChangeLog | None = None,
        keyring: Keyring | None = None,
        security: SecurityManager | None = None,
        cache: CacheManager | None = None,
    ) -> None:
        self._database, self._audit = database, audit
        self._workflows = workflows
        self._tenants = tenants
        self._keyring = keyring
        self._security = security
        #: The app's cache: an erasure drops the tenant's entries from it, on every node.
        self._cache = cache
        #: The app's retention job (its rounds also recount storage totals), when it runs one.
        self.retention: RetentionJob | None = None

    async def _parts(self) -> tuple[WorkflowManager, TenantRegistry]:
        db = await self._db()
        if self._workflows is None:
            self._workflows = WorkflowManager(db, audit=self._audit)
        if self._tenants is None:
            self._tenants = TenantRegistry(db, audit=self._audit)
        return self._workflows, self._tenants

    async def create_tenant_lifecycle(
        self,
        tenant_id: str,
        lifecycle_policy: str = "enterprise_tier",
        *,
        display_name: str | None = None,
        admin_user: str | None = None,
        actor: str | None = None,
    ) -> ResourceLifecycle:
        """Provision ``tenant_id`` under ``lifecycle_policy`` (``<tier>_tier``); idempotent."""
        validate_tenant_id(tenant_id)
        if tenant_id in RESERVED_TENANTS:
            raise TenantExists(f"tenant id {tenant_id!r} is reserved")
        tier = tier_of_policy(lifecycle_policy)
        workflows, tenants = await self._parts()
        try:
            existing = await tenants.get(tenant_id)
        except TenantNotFound:
            existing = None
        if existing is not None and existing.status is not TenantStatus.PROVISIONING:
            if existing.status is TenantStatus.DELETED:
                raise Conflict(f"tenant {tenant_id!r} is deleted: deletion is final")
            return await self.lifecycle(tenant_id)  # provisioned already
        data = {
            "tenant_id": tenant_id,
            "display_name": display_name or tenant_id,
            "tier": tier.value,
            "admin_user": admin_user,
        }
        for attempt in range(MAX_PROVISIONING_ATTEMPTS):
            saga = await workflows.create_workflow(
                PLATFORM_TENANT,
                PROVISIONING,
                data,
                idempotency_key=_key(tenant_id, attempt),
                actor=actor,
            )
            view = await workflows.get_workflow(PLATFORM_TENANT, saga)
            if view.status not in _UNSUCCESSFUL:
                return await self.lifecycle(tenant_id, provisioning=view)
        raise Conflict(
            f"tenant {tenant_id!r} failed provisioning {MAX_PROVISIONING_ATTEMPTS} times: "
            "look at its provisioning workflows"
        )

    async def lifecycle(
        self, tenant_id: str, *, provisioning: WorkflowView | None = None
    ) -> ResourceLifecycle:
        """``tenant_id``'s state; a tenant whose provisioning has not registered it yet is
        ``provisioning`` (with its saga)."""
        validate_tenant_id(tenant_id)
        workflows, tenants = await self._parts()
        if provisioning is None:
            provisioning = await self._latest_provisioning(workflows, tenant_id)
        try:
            tenant = await tenants.get(tenant_id)
            status, tier = tenant.status, tenant.tier
        except TenantNotFound:
            if provisioning is None:
                raise
            status = TenantStatus.PROVISIONING
            tier = tier_of_policy(str(provisioning.input["tier"]))
        return ResourceLifecycle(
            tenant_id,
            status,
            policies()[tier],
            tuple(sorted(TRANSITIONS[status], key=list(TenantStatus).index)),
            provisioning,
        )

    async def transition(
        self, tenant_id: str, status: TenantStatus | str, *, actor: str | None = None
    ) -> ResourceLifecycle:
        """Move the tenant to ``status``; a change :data:`~tenantry.tenants.TRANSITIONS` does
        not allow is a :class:`~tenantry.errors.Conflict` (nothing changes)."""
        target = parse_enum(TenantStatus, status)
        if target is TenantStatus.PROVISIONING:
            raise InvalidInput("a tenant is provisioned by create_tenant_lifecycle")
        _, tenants = await self._parts()
        await tenants.update_status(tenant_id, target, actor=actor)
        return await self.lifecycle(tenant_id)

    async def export_tenant(
        self,
        tenant_id: str,
        destination: str | Path,
        *,
        actor: str | None = None,
        progress: ExportProgress | None = None,
    ) -> ExportReport:
        """Export every tenant table of ``tenant_id`` to ``destination`` (a new file), sealed
        for the tenant, and record ``tenant.export`` in its audit log; see
        :mod:`tenantry.lifecycle.export`."""
        exporter = TenantExporter(await self._db(), keyring=self._keyring, audit=self._audit)
        return await exporter.export(tenant_id, destination, actor=actor, progress=progress)

    async def erase_tenant(self, tenant_id: str, *, actor: str | None = None) -> ErasureReport:
        """Erase a ``deleted`` tenant: delete its rows from every tenant table but its audit
        tree's, destroy its keys, and answer the report that proves nothing of it is readable
        (recorded as ``tenant.erase`` on the platform's audit tree). Idempotent. A tenant that
        is not deleted, or a reserved one, is a :class:`~tenantry.errors.Conflict`."""
        _, tenants = await self._parts()
        db = await self._db()
        if self._security is None:
            self._security = SecurityManager(db)
        audit = await self._trail(PLATFORM_TENANT)
        parts = ErasureParts(db, tenants, self._security, audit, self._cache)
        return await erase(parts, tenant_id, actor=actor)

    async def _latest_provisioning(
        self, workflows: WorkflowManager, tenant_id: str
    ) -> WorkflowView | None:
        """The tenant's last provisioning saga (their idempotency keys are numbered)."""
        latest = None
        for attempt in range(MAX_PROVISIONING_ATTEMPTS):
            view = await workflows.by_idempotency_key(PLATFORM_TENANT, _key(tenant_id, attempt))
            if view is None:
                break
            latest = view
        return latest


def _key(tenant_id: str, attempt: int) -> str:
    return f"provision:{tenant_id}" + (f":{attempt}" if attempt else "")
