"""Hybrid X25519 + ML-KEM-768 key wrapping, for tenants at ``SecurityLevel.QUANTUM``.

To wrap a KEK, encapsulate to both public keys of one root key version (an ephemeral X25519
exchange and an ML-KEM-768 encapsulation), combine both shared secrets with HKDF-SHA256 and wrap
the KEK with AES-256-GCM under the result. The HKDF ``info`` binds the context (tenant and KEK
version), the ephemeral X25519 public key, the root's X25519 public key and the ML-KEM
ciphertext, as X-Wing does; the KEK stays safe while either X25519 or ML-KEM-768 holds. The blob
is::

    0x01 | X25519 ephemeral public key (32) | ML-KEM-768 ciphertext (1088) | nonce (12) | GCM

The root key version is not in the blob: the KEK's row records it (``root_key_version``), and a
root rotation re-wraps the KEK to the new version's keys. Tampering with either KEM part changes
the derived key (ML-KEM rejects implicitly), so the GCM tag fails and
:class:`~tenantry.errors.DecryptionError` is raised.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantry.errors import DecryptionError
from tenantry.keys.crypto import KEY_BYTES, aead_unwrap, aead_wrap, frame
from tenantry.keys.provider import HybridKeyProvider

__all__ = ["MLKEM768_CIPHERTEXT_BYTES", "X25519_BYTES", "hybrid_unwrap", "hybrid_wrap"]

X25519_BYTES = 32
MLKEM768_CIPHERTEXT_BYTES = 1088
_FORMAT = b"\x01"
_LABEL = b"tenantry hybrid kek v1"


def _combine(
    provider: HybridKeyProvider,
    version: int,
    shared_x: bytes,
    shared_m: bytes,
    *,
    ephemeral: bytes,
    mlkem_ciphertext: bytes,
    context: bytes,
) -> bytes:
    root_x = provider.hybrid_public_keys(version)[0].public_bytes_raw()
    info = _LABEL + frame(context) + ephemeral + root_x + mlkem_ciphertext
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
    return hkdf.derive(shared_m + shared_x)


def hybrid_wrap(provider: HybridKeyProvider, key: bytes, context: bytes, *, version: int) -> bytes:
    """Wrap ``key`` to the X25519 and ML-KEM-768 public keys of root key ``version``, bound to
    ``context``."""
    root_x, root_m = provider.hybrid_public_keys(version)
    ephemeral_private = X25519PrivateKey.generate()
    ephemeral = ephemeral_private.public_key().public_bytes_raw()
    shared_x = ephemeral_private.exchange(root_x)
    shared_m, mlkem_ciphertext = root_m.encapsulate()
    wrapping_key = _combine(
        provider,
        version,
        shared_x,
        shared_m,
        ephemeral=ephemeral,
        mlkem_ciphertext=mlkem_ciphertext,
        context=context,
    )
    return _FORMAT + ephemeral + mlkem_ciphertext + aead_wrap(wrapping_key, key, context)


async def hybrid_unwrap(
    provider: HybridKeyProvider, wrapped: bytes, context: bytes, *, version: int
) -> bytes:
    """The key :func:`hybrid_wrap` wrapped at root key ``version``, or :class:`DecryptionError`."""
    head = len(_FORMAT) + X25519_BYTES + MLKEM768_CIPHERTEXT_BYTES
    if wrapped[:1] != _FORMAT or len(wrapped) < head:
        raise DecryptionError("hybrid-wrapped key: unknown format or truncated")
    ephemeral = wrapped[1 : 1 + X25519_BYTES]
    mlkem_ciphertext = wrapped[1 + X25519_BYTES : head]
    shared_x, shared_m = await provider.hybrid_decapsulate(version, ephemeral, mlkem_ciphertext)
    wrapping_key = _combine(
        provider,
        version,
        shared_x,
        shared_m,
        ephemeral=ephemeral,
        mlkem_ciphertext=mlkem_ciphertext,
        context=context,
    )
    return aead_unwrap(wrapping_key, wrapped[head:], context, what="hybrid-wrapped key")
