"""SecurityManager end to end: encryption, audit, log_access, threats, crypto-shredding."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantry.audit.manager import AuditLog
from tenantry.audit.merkle import verify_inclusion
from tenantry.audit.notes import CheckpointSigner
from tenantry.db.engine import Database
from tenantry.errors import DecryptionError, KeysDestroyed
from tenantry.keys.manager import Keyring
from tenantry.keys.provider import provider_from_environment
from tenantry.security.manager import ComplianceManager, KeyringAuditCipher, SecurityManager
from tenantry.threats.events import SecurityEvents
from tenantry.threats.manager import ThreatAnalyzer
from tests.conftest import NewTenant


@pytest.fixture
def security(db: Database, tmp_path: Path) -> SecurityManager:
    keyring = Keyring(db, provider_from_environment())  # the tests' one root key
    return SecurityManager(
        db,
        keyring=keyring,
        audit_log=AuditLog(
            db, signer=CheckpointSigner.from_data_dir(tmp_path), cipher=KeyringAuditCipher(keyring)
        ),
        threats=ThreatAnalyzer(db),
        events=SecurityEvents(db),
    )


async def test_log_access_lands_in_the_tenants_tree(
    security: SecurityManager, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    compliance = ComplianceManager(security)
    seq = await compliance.log_access(
        user_id="mira",
        action="fixture_read",
        resource="spotify_alerts",
        tenant=tenant,
        compliance_frameworks=["SOC2", "DSGVO", "HIPAA"],
    )
    assert seq == 0
    [stored] = await security.audit_log.entries(tenant)
    assert stored.entry is not None
    assert stored.entry.actor == "mira"
    assert stored.entry.frameworks == ("DSGVO", "HIPAA", "SOC2")
    report = await security.audit_log.verify(tenant)
    assert report.ok, report.problems


async def test_encryption_is_bound_to_tenant_and_record(
    security: SecurityManager, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant()).id, (await new_tenant()).id
    sealed = await security.encrypt(
        a, b"royalty split 60/40", purpose="contracts.terms", record_id="c-1"
    )
    assert await security.decrypt(a, sealed, purpose="contracts.terms", record_id="c-1") == (
        b"royalty split 60/40"
    )
    with pytest.raises(DecryptionError):
        await security.decrypt(b, sealed, purpose="contracts.terms", record_id="c-1")
    with pytest.raises(DecryptionError):
        await security.decrypt(a, sealed, purpose="contracts.terms", record_id="c-2")


async def test_shredding_keeps_the_tree_provable(
    security: SecurityManager, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    for n in range(5):
        await security.audit(tenant, actor="mira", action="track.upload", resource=f"track:{n}")
    sealed = await security.encrypt(tenant, b"secret", purpose="p.q", record_id="r")
    await security.audit_log.checkpoint(tenant)
    await security.destroy_tenant_keys(tenant)

    with pytest.raises(KeysDestroyed):
        await security.decrypt(tenant, sealed, purpose="p.q", record_id="r")
    entries = await security.audit_log.entries(tenant)
    assert [e.entry for e in entries] == [None] * 5  # payloads are gone ...
    proof = await security.audit_log.inclusion_proof(tenant, 3)
    assert verify_inclusion(proof.leaf_hash, 3, proof.tree_size, proof.path, proof.root_hash)
    report = await security.audit_log.verify(tenant)  # ... the hashes and signatures still verify
    assert report.ok, report.problems
    assert report.payloads_unavailable == 5
    platform = await security.audit_log.entries("platform", start=0, limit=10_000)
    destroyed = [(e.entry.action, e.entry.resource) for e in platform if e.entry is not None]
    assert ("keys.destroy", f"tenant:{tenant}") in destroyed


async def test_high_threats_are_audited(
    security: SecurityManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    await SecurityEvents(db).record(tenant, "passkey_counter_regression", principal_id="u9")
    report = await security.analyze_threats(tenant)
    assert report.level == "critical"
    entries = await security.audit_log.entries(tenant)
    assert [e.entry.action for e in entries if e.entry] == ["threat.detected"]
