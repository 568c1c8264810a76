"""The root of the key hierarchy: the :class:`KeyProvider` interfaces and this process's provider.

A provider wraps and unwraps tenant KEKs under a root key it holds; it never sees data. A root
key has versions: the newest wraps new KEKs, older ones still unwrap until they are retired, and
every KEK row records the version that wraps it (``tenant_keys.root_key_version``), so a root
rotation (:meth:`~tenantry.keys.manager.Keyring.rotate_root`) can re-wrap every KEK and then
retire the old versions. The interfaces, smallest first:

- :class:`KeyProvider`: ``key_id``, ``versions()``, ``wrap``/``unwrap`` at a version. A KMS or
  Vault provider implements this (its calls are async for that reason);
- :class:`RotatableKeyProvider`: adds and retires versions itself (with a KMS, rotate there and
  call ``rotate_root(resume=True)``);
- :class:`HybridKeyProvider`: holds X25519 and ML-KEM-768 keys per version, for the hybrid,
  quantum-safe wrapping of ``x25519-mlkem768-hkdf-aes256gcm`` KEKs (``kem.py``).

:class:`~tenantry.keys.file.FileKeyProvider` implements all three with a file: its
``<data dir>/root.key`` is created mode 0600 on first start, or ``TENANTRY_ROOT_KEY_FILE`` names it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from tenantry.config import Settings, load_settings
from tenantry.keys.file import FileKeyProvider

__all__ = [
    "ROOT_KEY_ENV",
    "FileKeyProvider",
    "HybridKeyProvider",
    "KeyProvider",
    "RotatableKeyProvider",
    "provider_from_environment",
]

#: Names the root key file; unset, it is ``<TENANTRY_DATA_DIR>/root.key`` (created if missing).
ROOT_KEY_ENV = "TENANTRY_ROOT_KEY_FILE"


class KeyProvider(Protocol):
    """Wraps and unwraps key material under a root key it holds (a file, a KMS, Vault)."""

    @property
    def key_id(self) -> str:
        """A non-secret name of the root key (for messages)."""
        ...

    async def versions(self) -> Sequence[int]:
        """The root key versions it can unwrap with, oldest first; the last one wraps new keys.

        Called before new keys are wrapped, so it should notice a rotation done elsewhere.
        """
        ...

    async def wrap(self, plaintext_key: bytes, context: bytes, *, version: int) -> bytes:
        """Encrypt ``plaintext_key`` under ``version``, bound to ``context`` (not secret)."""
        ...

    async def unwrap(self, wrapped: bytes, context: bytes, *, version: int) -> bytes:
        """The key ``wrap`` was given at ``version``, or :class:`DecryptionError`."""
        ...


@runtime_checkable
class RotatableKeyProvider(KeyProvider, Protocol):
    """A provider that makes and retires root key versions itself."""

    async def add_version(self) -> int:
        """Make a new newest version (persisted before returning) and return its number."""
        ...

    async def retire_versions(self, versions: Collection[int]) -> None:
        """Forget ``versions`` for good: what they wrapped can never be unwrapped again."""
        ...


@runtime_checkable
class HybridKeyProvider(KeyProvider, Protocol):
    """A provider that also holds X25519 and ML-KEM-768 private keys (``SecurityLevel.QUANTUM``)."""

    def hybrid_public_keys(self, version: int) -> tuple[X25519PublicKey, MLKEM768PublicKey]: ...

    async def hybrid_decapsulate(
        self, version: int, x25519_ephemeral: bytes, mlkem_ciphertext: bytes
    ) -> tuple[bytes, bytes]:
        """(X25519 shared secret, ML-KEM shared secret) for one encapsulation at ``version``."""
        ...


def provider_from_environment(settings: Settings | None = None) -> FileKeyProvider:
    """The root key provider of this process.

    ``TENANTRY_ROOT_KEY_FILE`` names an existing file (never created: a new root key there would
    silently orphan every tenant key); without it, ``<data dir>/root.key`` is loaded, or created
    with mode 0600 on first start.
    """
    settings = settings or load_settings()
    if settings.root_key_file is not None:
        return FileKeyProvider.load(settings.root_key_file)
    path = settings.data_dir / "root.key"
    if path.exists():
        return FileKeyProvider.load(path)
    return FileKeyProvider.create(path)
