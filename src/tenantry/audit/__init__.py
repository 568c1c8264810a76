"""The audit log: an append-only Merkle tree per tenant (RFC 9162) with signed checkpoints.

:class:`AuditLog` appends entries, serves inclusion and consistency proofs, signs checkpoints
(Ed25519, co-signed ML-DSA-65 at ``quantum``) and exports; :func:`verify_export` checks an
export offline. Managers record their changes through an :class:`AuditTrail`, which queues each
entry in the change's own transaction. :func:`lock_statement` is the tenant's tree lock, for
work that must take turns with the appends (a tenant's erasure).
"""

from tenantry.audit.manager import AuditCipher, AuditLog
from tenantry.audit.merkle import verify_consistency, verify_inclusion
from tenantry.audit.notes import CheckpointSigner, NoteVerifier
from tenantry.audit.repository import lock_statement
from tenantry.audit.schemas import (
    AuditEntry,
    ConsistencyProof,
    InclusionProof,
    SignedCheckpoint,
    StoredEntry,
)
from tenantry.audit.trail import SYSTEM_ACTOR, AuditTrail, KeyringAuditCipher, trail_for, use_trail
from tenantry.audit.verifier import Problem, VerificationReport, verify_export

__all__ = [
    "SYSTEM_ACTOR",
    "AuditCipher",
    "AuditEntry",
    "AuditLog",
    "AuditTrail",
    "CheckpointSigner",
    "ConsistencyProof",
    "InclusionProof",
    "KeyringAuditCipher",
    "NoteVerifier",
    "Problem",
    "SignedCheckpoint",
    "StoredEntry",
    "VerificationReport",
    "lock_statement",
    "trail_for",
    "use_trail",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
]
