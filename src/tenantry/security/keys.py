"""The root of the key hierarchy: the :class:`KeyProvider` interface and the file provider.

A provider wraps and unwraps tenant KEKs; it never sees data. :class:`FileKeyProvider` keeps a
256-bit root secret in a file (``<data dir>/root.key``, created mode 0600 on first start, or the
file named by ``TENANTRY_ROOT_KEY_FILE``). Every key it uses is derived from that one secret with
HKDF-SHA256, each under its own label:

- the AES-256-GCM wrapping key (``aes256gcm-root`` KEKs),
- an X25519 private key and the 64-byte seed of an ML-KEM-768 private key (the hybrid,
  quantum-safe wrapping of ``x25519-mlkem768-hkdf-aes256gcm`` KEKs, see ``kem.py``),
- the key id (a fingerprint; wrapped keys carry it, so a wrong root key is named as such).

Deriving instead of storing three keys keeps one secret to back up and move into a KMS or
Vault later. A KMS-backed provider implements :class:`KeyProvider` (its ``wrap``/``unwrap``
are async for that reason); the hybrid wrapping needs :class:`HybridKeyProvider` as well.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.mlkem import (
    MLKEM768PrivateKey,
    MLKEM768PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantry.config import Settings, load_settings
from tenantry.errors import ConfigError, DecryptionError
from tenantry.security.crypto import KEY_BYTES, aead_unwrap, aead_wrap

__all__ = [
    "ROOT_KEY_ENV",
    "FileKeyProvider",
    "HybridKeyProvider",
    "KeyProvider",
    "provider_from_environment",
]

#: Names the root key file; unset, it is ``<TENANTRY_DATA_DIR>/root.key`` (created if missing).
ROOT_KEY_ENV = "TENANTRY_ROOT_KEY_FILE"
_MAGIC = "tenantry-root-key v1"
_WRAP_FORMAT = b"\x01"
_ID_BYTES = 8


class KeyProvider(Protocol):
    """Wraps and unwraps key material under a root key it holds (a file, a KMS, Vault)."""

    @property
    def key_id(self) -> str:
        """A stable, non-secret name of the root key."""
        ...

    async def wrap(self, plaintext_key: bytes, context: bytes) -> bytes:
        """Encrypt ``plaintext_key``, bound to ``context`` (authenticated, not secret)."""
        ...

    async def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """The key ``wrap`` was given, or :class:`DecryptionError`."""
        ...


@runtime_checkable
class HybridKeyProvider(KeyProvider, Protocol):
    """A provider that also holds X25519 and ML-KEM-768 private keys (``SecurityLevel.QUANTUM``)."""

    def hybrid_public_keys(self) -> tuple[X25519PublicKey, MLKEM768PublicKey]: ...

    async def hybrid_decapsulate(
        self, x25519_ephemeral: bytes, mlkem_ciphertext: bytes
    ) -> tuple[bytes, bytes]:
        """(X25519 shared secret, ML-KEM shared secret) for one encapsulation."""
        ...


def _derive(secret: bytes, label: str, length: int) -> bytes:
    info = f"tenantry root {label}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


class FileKeyProvider:
    """The root key in a local file; implements :class:`HybridKeyProvider`."""

    def __init__(self, secret: bytes, *, path: Path | None = None) -> None:
        if len(secret) != KEY_BYTES:
            raise ConfigError(f"a root key is {KEY_BYTES} bytes, not {len(secret)}")
        self.path = path
        self._wrap_key = _derive(secret, "wrap v1", KEY_BYTES)
        self._fingerprint = _derive(secret, "key id v1", _ID_BYTES)
        self._x25519 = X25519PrivateKey.from_private_bytes(_derive(secret, "x25519 v1", 32))
        self._mlkem = MLKEM768PrivateKey.from_seed_bytes(_derive(secret, "mlkem768 seed v1", 64))
        self._public = (self._x25519.public_key(), self._mlkem.public_key())

    # -- files ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> FileKeyProvider:
        """Read the root key file at ``path``; :class:`ConfigError` if missing or corrupt."""
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise ConfigError(f"root key file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read root key file {path}: {exc}") from None
        lines = text.split()
        try:
            if len(lines) != len(_MAGIC.split()) + 1 or " ".join(lines[:-1]) != _MAGIC:
                raise ValueError
            secret = base64.b64decode(lines[-1], validate=True)
            if len(secret) != KEY_BYTES:
                raise ValueError
        except (ValueError, binascii.Error):
            raise ConfigError(
                f"root key file {path} is corrupt: expected the line {_MAGIC!r} and the base64 "
                f"of {KEY_BYTES} bytes; restore it from your backup (a new root key cannot "
                "decrypt existing tenant keys)"
            ) from None
        return cls(secret, path=path)

    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Write a new random root key to ``path`` (mode 0600); if one exists, load that one.

        The file is written next to ``path`` and linked into place, so concurrent first starts
        agree on one key and nobody reads a half-written file.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = os.urandom(KEY_BYTES)
        content = f"{_MAGIC}\n{base64.b64encode(secret).decode()}\n".encode("ascii")
        fd, temporary = tempfile.mkstemp(prefix=".root.key.", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, content)
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(temporary, path)
            except FileExistsError:
                return cls.load(path)
        finally:
            os.unlink(temporary)
        return cls(secret, path=path)

    # -- KeyProvider ---------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        return "file:" + self._fingerprint.hex()

    async def wrap(self, plaintext_key: bytes, context: bytes) -> bytes:
        return _WRAP_FORMAT + self._fingerprint + aead_wrap(self._wrap_key, plaintext_key, context)

    async def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        head = len(_WRAP_FORMAT) + _ID_BYTES
        if wrapped[:1] != _WRAP_FORMAT or len(wrapped) < head:
            raise DecryptionError("wrapped key: unknown format")
        if wrapped[1:head] != self._fingerprint:
            raise DecryptionError(
                f"wrapped key: wrapped by root key file:{wrapped[1:head].hex()}, "
                f"but this provider holds {self.key_id}"
            )
        return aead_unwrap(self._wrap_key, wrapped[head:], context, what="wrapped key")

    # -- HybridKeyProvider ---------------------------------------------------------------------
    def hybrid_public_keys(self) -> tuple[X25519PublicKey, MLKEM768PublicKey]:
        return self._public

    async def hybrid_decapsulate(
        self, x25519_ephemeral: bytes, mlkem_ciphertext: bytes
    ) -> tuple[bytes, bytes]:
        try:
            shared_x = self._x25519.exchange(X25519PublicKey.from_public_bytes(x25519_ephemeral))
            shared_m = self._mlkem.decapsulate(mlkem_ciphertext)
        except ValueError as exc:
            raise DecryptionError(f"hybrid-wrapped key: invalid encapsulation ({exc})") from None
        return shared_x, shared_m


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
