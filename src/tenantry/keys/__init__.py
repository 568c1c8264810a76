"""Tenant keys: a versioned root key wraps each tenant's KEKs, which wrap its data keys.

:class:`Keyring` seals and opens records (AES-256-GCM bound to tenant, purpose and record),
rotates and re-wraps keys, crypto-shreds a tenant, and rotates the root key; a key change
reaches every process, and its audit entry (``record=``, a :class:`KeyChange`) is written in
the transaction that makes it. Tenants at ``SecurityLevel.QUANTUM`` get hybrid X25519 +
ML-KEM-768 KEKs.
"""

from tenantry.keys.changes import KeyChange, RecordKeyChange
from tenantry.keys.encrypted import EncryptedField, bytes_field, json_field, text_field
from tenantry.keys.file import FileKeyProvider
from tenantry.keys.manager import KeyInfo, Keyring, Progress, RootRotation
from tenantry.keys.provider import (
    ROOT_KEY_ENV,
    HybridKeyProvider,
    KeyProvider,
    RotatableKeyProvider,
    provider_from_environment,
)

__all__ = [
    "ROOT_KEY_ENV",
    "EncryptedField",
    "FileKeyProvider",
    "HybridKeyProvider",
    "KeyChange",
    "KeyInfo",
    "KeyProvider",
    "Keyring",
    "Progress",
    "RecordKeyChange",
    "RootRotation",
    "RotatableKeyProvider",
    "bytes_field",
    "json_field",
    "provider_from_environment",
    "text_field",
]
