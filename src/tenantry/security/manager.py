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

from tenantry.context import validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.security.audit import AuditLog
from tenantry.security.audit_schemas import AuditEntry
from tenantry.security.events import SecurityEvents
from tenantry.security.keyring import Keyring
from tenantry.security.models import PLATFORM_TENANT
from tenantry.security.threats import Threat, ThreatAnalyzer, ThreatReport
from tenantry.security.trail import AuditTrail, KeyringAuditCipher, trail_for

__all__ = ["ComplianceManager", "KeyringAuditCipher", "SecurityManager"]


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
            shared = trail_for(database)  # one keyring per database, shared with the managers
            keyring, audit_log = shared.keyring, shared.audit_log
        self.keyring = keyring or Keyring(database)
        self.audit_log = audit_log or AuditLog(database, cipher=KeyringAuditCipher(self.keyring))
        self.trail = AuditTrail(self.audit_log, self.keyring)
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

    async def rotate_keys(self, tenant_id: str, *, actor: str = "tenantry") -> None:
        await self.keyring.rotate(tenant_id)
        await self.audit(PLATFORM_TENANT, actor=actor, action="keys.rotate", resource=tenant_id)

    async def destroy_tenant_keys(self, tenant_id: str, *, actor: str = "tenantry") -> None:
        """Crypto-shred ``tenant_id``: its ciphertexts (audit payloads too) become unreadable."""
        validate_tenant_id(tenant_id)
        await self.keyring.destroy_tenant_keys(tenant_id)
        await self.audit(
            PLATFORM_TENANT,
            actor=actor,
            action="keys.destroy",
            resource=tenant_id,
            frameworks=("GDPR",),
        )

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
        entry = AuditEntry(
            actor=actor,
            action=action,
            resource=resource,
            tenant=tenant_id,
            outcome=outcome,
            request_id=request_id,
            frameworks=tuple(frameworks),
            detail=detail or {},
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
