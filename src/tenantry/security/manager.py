"""SecurityManager and ComplianceManager: the documents' names over keys, audit and threats.

- ``encrypt``/``decrypt``/``destroy_tenant_keys``: the tenant :class:`Keyring`;
- ``audit``/``ComplianceManager.log_access``: the tenant's Merkle-tree audit log, whose entries
  are sealed with the tenant's data key (so crypto-shredding leaves only the hashes);
- ``analyze_threats``: the :class:`ThreatAnalyzer` over the tenant's security events; HIGH and
  above write an audit entry, and reach every ``on_threat`` hook (the monitoring issue adds one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from tenantry.audit.manager import AuditLog
from tenantry.audit.trail import (
    SYSTEM_ACTOR,
    AuditTrail,
    KeyringAuditCipher,
    audit_entry,
    trail_for,
)
from tenantry.context import PLATFORM_TENANT, validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import Conflict
from tenantry.keys.changes import KeyChange, RecordKeyChange
from tenantry.keys.hierarchy import Progress
from tenantry.keys.manager import Keyring
from tenantry.keys.root import RootRotation
from tenantry.levels import SecurityLevel
from tenantry.threats.events import SecurityEvents
from tenantry.threats.manager import Threat, ThreatAnalyzer, ThreatReport

__all__ = ["ComplianceManager", "KeyringAuditCipher", "SecurityManager"]

#: The compliance frameworks an audited key change serves, by its action.
_FRAMEWORKS: dict[str, tuple[str, ...]] = {"destroy": ("GDPR",)}


class SecurityManager(UsesDatabase):
    """Keys, audit and threats of every tenant. Make it with no arguments, or give it the parts."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        keyring: Keyring | None = None,
        audit_log: AuditLog | None = None,
        threats: ThreatAnalyzer | None = None,
        events: SecurityEvents | None = None,
    ) -> None:
        self._database = database
        if database is not None and keyring is None and audit_log is None:
            self.trail = trail_for(database)  # one keyring per database, shared with the managers
        elif audit_log is None:
            self.trail = AuditTrail.for_database(database, keyring)
        else:
            self.trail = AuditTrail(audit_log, keyring or Keyring(database))
        self.keyring = self.trail.keyring
        self.audit_log = self.trail.audit_log
        self.threats = threats or ThreatAnalyzer(database)
        self.events = events or SecurityEvents(database)
        self.threats.on_threat.append(self._audit_threat)

    # -- keys ------------------------------------------------------------------------------------

    async def encrypt(
        self, tenant_id: str, plaintext: bytes, *, purpose: str, record_id: str
    ) -> bytes:
        return await self.keyring.encrypt(
            tenant_id, plaintext, purpose=purpose, record_id=record_id
        )

    async def decrypt(
        self, tenant_id: str, ciphertext: bytes, *, purpose: str, record_id: str
    ) -> bytes:
        return await self.keyring.decrypt(
            tenant_id, ciphertext, purpose=purpose, record_id=record_id
        )

    # Key changes are written to the platform's audit tree (resource ``tenant:<id>`` or
    # ``root-key``) inside the transaction that makes them: the keyring awaits ``record`` there.

    async def rotate_keys(
        self, tenant_id: str, *, quantum: bool | None = None, actor: str | None = None
    ) -> int:
        """New KEK and data key versions (see :meth:`Keyring.rotate`); the new data-key version."""
        record = await self._recorder(actor)
        return await self.keyring.rotate(tenant_id, quantum=quantum, record=record)

    async def rewrap_keys(
        self, tenant_id: str, *, progress: Progress | None = None, actor: str | None = None
    ) -> int:
        """Re-wrap older data keys under the newest KEK; how many were re-wrapped."""
        record = await self._recorder(actor)
        return await self.keyring.rewrap(tenant_id, progress=progress, record=record)

    async def set_security_level(
        self,
        tenant_id: str,
        level: SecurityLevel | str,
        *,
        rotate: bool = True,
        actor: str | None = None,
    ) -> SecurityLevel:
        """Set the tenant's level (quantum: hybrid KEKs, rotated now unless ``rotate=False``)."""
        record = await self._recorder(actor)
        return await self.keyring.set_security_level(
            tenant_id, level, rotate=rotate, actor=actor, audit=self.trail, record=record
        )

    async def rotate_root_key(
        self,
        *,
        resume: bool = False,
        retire: bool = False,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> RootRotation:
        """A new root key version with every tenant's KEKs re-wrapped (see the keyring)."""
        record = await self._recorder(actor)
        return await self.keyring.rotate_root(
            resume=resume, retire=retire, progress=progress, record=record
        )

    async def retire_root_keys(
        self, *, progress: Progress | None = None, actor: str | None = None
    ) -> tuple[int, ...]:
        """Retire the root key versions no KEK uses any more (else Conflict, nothing changed)."""
        record = await self._recorder(actor)
        return await self.keyring.retire_root(progress=progress, record=record)

    async def destroy_tenant_keys(self, tenant_id: str, *, actor: str | None = None) -> None:
        """Crypto-shred ``tenant_id``: its ciphertexts (audit payloads too) become unreadable."""
        validate_tenant_id(tenant_id)
        if tenant_id == PLATFORM_TENANT:
            raise Conflict(
                "the platform's keys seal its audit tree, where key destructions are recorded: "
                "they are not destroyed"
            )
        record = await self._recorder(actor)
        await self.trail.outbox.integrate(tenant_id)  # queued entries, while they still open
        await self.keyring.destroy_tenant_keys(tenant_id, record=record)

    async def _recorder(self, actor: str | None) -> RecordKeyChange:
        """How the keyring records a key change of ``actor``: queued for the platform's tree in
        the change's transaction (a tenant's, or the platform's). The platform's keys are
        loaded here, before that transaction opens."""
        await self.trail.prepare(PLATFORM_TENANT)

        async def record(change: KeyChange) -> None:
            tenant = change.tenant_id
            await self.trail.record(
                PLATFORM_TENANT,
                f"keys.{change.action}",
                "root-key" if tenant is None else f"tenant:{tenant}",
                actor=actor or SYSTEM_ACTOR,
                outcome=change.outcome,
                frameworks=_FRAMEWORKS.get(change.action, ()),
                detail=change.detail,
            )

        return record

    # -- audit -----------------------------------------------------------------------------------

    async def audit(
        self,
        tenant_id: str,
        *,
        actor: str,
        action: str,
        resource: str = "",
        outcome: str = "success",
        request_id: str | None = None,
        frameworks: Sequence[str] = (),
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Append an entry to ``tenant_id``'s audit tree; returns its index."""
        entry = audit_entry(
            tenant_id,
            action,
            resource,
            actor=actor,
            outcome=outcome,
            request_id=request_id,
            frameworks=frameworks,
            detail=detail,
        )
        return await self.audit_log.append(tenant_id, entry)

    # -- threats ---------------------------------------------------------------------------------

    async def analyze_threats(
        self, tenant_id: str, window: timedelta = timedelta(hours=1)
    ) -> ThreatReport:
        return await self.threats.analyze(tenant_id, window)

    async def _audit_threat(self, threat: Threat) -> None:
        await self.audit(
            threat.tenant_id,
            actor="tenantry.threats",
            action="threat.detected",
            resource=f"{threat.subject_type}:{threat.subject}",
            outcome=str(threat.level),
            detail={"reasons": list(threat.reasons)},
        )


class ComplianceManager:
    """The documents' ``ComplianceManager.log_access``: an access, in the tenant's audit log."""

    def __init__(self, security: SecurityManager | None = None) -> None:
        self.security = security or SecurityManager()

    async def log_access(
        self,
        user_id: str,
        action: str,
        resource: str,
        tenant: str,
        compliance_frameworks: Sequence[str] = (),
        *,
        outcome: str = "success",
        request_id: str | None = None,
    ) -> int:
        return await self.security.audit(
            tenant,
            actor=user_id,
            action=action,
            resource=resource,
            outcome=outcome,
            request_id=request_id,
            frameworks=compliance_frameworks,
        )
