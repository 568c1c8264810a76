"""AES-256-GCM building blocks of the key hierarchy: contexts, record ciphertexts, key wrapping.

A record ciphertext (what :class:`~tenantry.keys.manager.Keyring` returns) is::

    format (1 byte, 0x01) | data-key version (4 bytes, big endian) | nonce (12) | GCM ciphertext+tag

The associated data is the 17-byte header followed by the length-prefixed tenant id, purpose and
record id, so a ciphertext opens only for the tenant, purpose, record and key version it was
made for; anything else fails the tag check. Nonces are random (96 bits): keep well under 2**32
encryptions per data key, which :meth:`Keyring.rotate` makes easy.

Key wrapping (a data key under a KEK, a KEK under the root key) is ``nonce | GCM(key)`` with the
wrapping context (tenant, purpose, versions) as associated data.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenantry.errors import DecryptionError

__all__ = [
    "ALG_DATA",
    "ALG_HYBRID",
    "ALG_ROOT",
    "FORMAT_V1",
    "HEADER",
    "KEY_BYTES",
    "NONCE_BYTES",
    "TAG_BYTES",
    "aead_unwrap",
    "aead_wrap",
    "data_key_context",
    "frame",
    "kek_context",
    "new_key",
    "record_context",
]

FORMAT_V1 = 1
#: format byte, data-key version, nonce.
HEADER = struct.Struct(">BI12s")
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

#: ``tenant_keys.algorithm`` values.
ALG_ROOT = "aes256gcm-root"  # a KEK wrapped by the root key provider
ALG_HYBRID = "x25519-mlkem768-hkdf-aes256gcm"  # a KEK wrapped to the root's hybrid KEM keys
ALG_DATA = "aes256gcm-kek"  # a data key wrapped by the tenant's KEK of ``kek_version``

_LEN = struct.Struct(">H")


def frame(*parts: str | bytes) -> bytes:
    """``parts`` with a 2-byte length before each: an unambiguous concatenation."""
    out = bytearray()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        if len(raw) > 0xFFFF:
            raise ValueError("a context part is at most 65535 bytes")
        out += _LEN.pack(len(raw)) + raw
    return bytes(out)


def record_context(tenant_id: str, purpose: str, record_id: str) -> bytes:
    """The part of a record ciphertext's associated data after the header."""
    return frame(tenant_id, purpose, record_id)


def kek_context(tenant_id: str, version: int) -> bytes:
    """What a KEK's wrapping is bound to."""
    return b"tenantry/kek/v1" + frame(tenant_id, str(version))


def data_key_context(tenant_id: str, version: int, kek_version: int) -> bytes:
    """What a data key's wrapping is bound to."""
    return b"tenantry/data-key/v1" + frame(tenant_id, str(version), str(kek_version))


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def aead_wrap(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """``nonce | AES-256-GCM(key, plaintext, associated_data)``."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def aead_unwrap(key: bytes, wrapped: bytes, associated_data: bytes, *, what: str) -> bytes:
    """The inverse of :func:`aead_wrap`; :class:`DecryptionError` naming ``what`` on failure."""
    if len(wrapped) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"{what}: too short to be a wrapped key")
    try:
        return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise DecryptionError(
            f"{what}: authentication failed (wrong key, wrong context, or tampered)"
        ) from None
