"""The root key in a local file: :class:`FileKeyProvider`, with versions.

The file (mode 0600) holds one 256-bit secret per root key version::

    tenantry-root-key v2
    1 <base64 of 32 bytes>
    2 <base64 of 32 bytes>

The newest version wraps new KEKs; older ones still unwrap until they are retired (removed from
the file). A file in the first format (``tenantry-root-key v1`` and one base64 line) loads as
version 1. Every key a version uses is derived from its secret with HKDF-SHA256, each under its own
label: the AES-256-GCM wrapping key, an X25519 private key and the 64-byte seed of an ML-KEM-768
private key (the hybrid wrapping of ``kem.py``), and a fingerprint (wrapped keys carry it, so a
wrong root key is named as such). One secret per version keeps one thing to back up.

Changes (a new version, retiring old ones) take a lock file next to the key file, re-read the file
and replace it atomically, so concurrent rotations on one machine never lose a version. The
provider notices when another process changed the file (its inode, size or mtime) and re-reads it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fcntl
import os
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.mlkem import (
    MLKEM768PrivateKey,
    MLKEM768PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantry.errors import ConfigError, DecryptionError
from tenantry.keys.crypto import KEY_BYTES, aead_unwrap, aead_wrap

__all__ = ["FileKeyProvider"]

_MAGIC_V1 = "tenantry-root-key v1"
_MAGIC_V2 = "tenantry-root-key v2"
_WRAP_FORMAT = b"\x01"
_ID_BYTES = 8
_Stamp = tuple[int, int, int]  # inode, size, mtime (ns): "has another process changed it?"


def _derive(secret: bytes, label: str, length: int) -> bytes:
    info = f"tenantry root {label}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


@dataclass(frozen=True, slots=True)
class _Version:
    """The keys of one root key version, derived from its secret."""

    secret: bytes
    wrap_key: bytes
    fingerprint: bytes
    x25519: X25519PrivateKey
    mlkem: MLKEM768PrivateKey
    public: tuple[X25519PublicKey, MLKEM768PublicKey]

    @classmethod
    def derive(cls, secret: bytes) -> _Version:
        x25519 = X25519PrivateKey.from_private_bytes(_derive(secret, "x25519 v1", 32))
        mlkem = MLKEM768PrivateKey.from_seed_bytes(_derive(secret, "mlkem768 seed v1", 64))
        return cls(
            secret=secret,
            wrap_key=_derive(secret, "wrap v1", KEY_BYTES),
            fingerprint=_derive(secret, "key id v1", _ID_BYTES),
            x25519=x25519,
            mlkem=mlkem,
            public=(x25519.public_key(), mlkem.public_key()),
        )


def _check(secrets: Mapping[int, bytes]) -> dict[int, bytes]:
    if not secrets:
        raise ConfigError("a root key needs at least one version")
    for number, secret in secrets.items():
        if number < 1:
            raise ConfigError(f"root key versions start at 1, not {number}")
        if len(secret) != KEY_BYTES:
            raise ConfigError(f"a root key is {KEY_BYTES} bytes, not {len(secret)}")
    return dict(sorted(secrets.items()))


def _parse(text: str) -> dict[int, bytes]:
    """The secrets of a key file by version; ValueError if it is not one."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError
    magic = " ".join(lines[0])
    if magic == _MAGIC_V1 and len(lines) == 2 and len(lines[1]) == 1:
        pairs = [("1", lines[1][0])]
    elif magic == _MAGIC_V2 and len(lines) > 1 and all(len(line) == 2 for line in lines[1:]):
        pairs = [(line[0], line[1]) for line in lines[1:]]
    else:
        raise ValueError
    secrets: dict[int, bytes] = {}
    for number, encoded in pairs:
        if not number.isdigit() or int(number) < 1 or int(number) in secrets:
            raise ValueError
        secret = base64.b64decode(encoded, validate=True)
        if len(secret) != KEY_BYTES:
            raise ValueError
        secrets[int(number)] = secret
    return secrets


def _render(secrets: Mapping[int, bytes]) -> bytes:
    lines = [_MAGIC_V2] + [
        f"{n} {base64.b64encode(s).decode()}" for n, s in sorted(secrets.items())
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def _read(path: Path) -> tuple[dict[int, bytes], _Stamp]:
    """The file's secrets and the stamp of what was read; :class:`ConfigError` if unusable."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            text = handle.read().decode("ascii")
    except FileNotFoundError:
        raise ConfigError(f"root key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read root key file {path}: {exc}") from None
    try:
        secrets = _parse(text)
    except (ValueError, binascii.Error):
        raise ConfigError(
            f"root key file {path} is corrupt: expected the line {_MAGIC_V2!r} and one line "
            f"'<version> <base64 of {KEY_BYTES} bytes>' per version (or the {_MAGIC_V1!r} "
            "format); restore it from your backup (a new root key cannot decrypt existing "
            "tenant keys)"
        ) from None
    return secrets, (info.st_ino, info.st_size, info.st_mtime_ns)


def _stamp(path: Path) -> _Stamp | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _write_new(path: Path, secrets: Mapping[int, bytes]) -> Path:
    """A temporary file next to ``path`` (mode 0600) holding ``secrets``, synced to disk."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, _render(secrets))
        os.fsync(fd)
    finally:
        os.close(fd)
    return Path(temporary)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileKeyProvider:
    """The root key in a local file; a :class:`~tenantry.keys.provider.RotatableKeyProvider`
    and a :class:`~tenantry.keys.provider.HybridKeyProvider`.

    ``FileKeyProvider(secret)`` is version 1 of an in-memory root key (tests, or a secret from
    elsewhere); :meth:`load` and :meth:`create` work on a file.
    """

    def __init__(self, secrets: bytes | Mapping[int, bytes], *, path: Path | None = None) -> None:
        self.path = path
        self._stamp: _Stamp | None = None
        self._versions: dict[int, _Version] = {}
        self._install(_check({1: secrets} if isinstance(secrets, bytes) else secrets))

    def _install(self, secrets: Mapping[int, bytes], stamp: _Stamp | None = None) -> None:
        old = self._versions
        self._versions = {
            n: old[n] if n in old and old[n].secret == s else _Version.derive(s)
            for n, s in sorted(secrets.items())
        }
        self._stamp = stamp

    # -- files ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> FileKeyProvider:
        """Read the root key file at ``path``; :class:`ConfigError` if missing or corrupt."""
        secrets, stamp = _read(path)
        provider = cls(secrets, path=path)
        provider._stamp = stamp
        return provider

    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Write a new random root key to ``path`` (mode 0600); if one exists, load that one.

        The file is written next to ``path`` and linked into place, so concurrent first starts
        agree on one key and nobody reads a half-written file.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _write_new(path, {1: os.urandom(KEY_BYTES)})
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        return cls.load(path)

    def _refresh(self) -> None:
        """Re-read the file if another process (or provider) changed it."""
        if self.path is None:
            return
        stamp = _stamp(self.path)
        if stamp is None:
            raise ConfigError(f"root key file {self.path} does not exist any more")
        if stamp != self._stamp:
            self._install(*_read(self.path))

    @contextmanager
    def _locked(self, path: Path) -> Iterator[dict[int, bytes]]:
        """Hold the lock file next to ``path``; yields the file's secrets as they are now."""
        lock = path.with_name(f".{path.name}.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot change root key file {path}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield _read(path)[0]
        finally:
            os.close(fd)  # releases the lock

    def _replace(self, path: Path, secrets: Mapping[int, bytes]) -> None:
        temporary = _write_new(path, secrets)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise ConfigError(f"cannot replace root key file {path}: {exc}") from None
        _sync_directory(path.parent)
        self._install(secrets, _stamp(path))

    def _add_version(self) -> int:
        if self.path is None:
            secrets = {n: v.secret for n, v in self._versions.items()}
            number = max(secrets) + 1
            self._install({**secrets, number: os.urandom(KEY_BYTES)})
            return number
        with self._locked(self.path) as secrets:
            number = max(secrets) + 1
            self._replace(self.path, {**secrets, number: os.urandom(KEY_BYTES)})
        return number

    def _retire(self, versions: Collection[int]) -> None:
        if self.path is None:
            secrets = {n: v.secret for n, v in self._versions.items()}
            self._check_retire(secrets, versions)
            self._install({n: s for n, s in secrets.items() if n not in versions})
            return
        with self._locked(self.path) as secrets:
            self._check_retire(secrets, versions)
            self._replace(self.path, {n: s for n, s in secrets.items() if n not in versions})

    @staticmethod
    def _check_retire(secrets: Mapping[int, bytes], versions: Collection[int]) -> None:
        if max(secrets) in versions:
            raise ConfigError(f"root key version {max(secrets)} is the newest: it cannot retire")

    def _held(self, version: int) -> _Version:
        held = self._versions.get(version)
        if held is None:
            self._refresh()  # rotated by another process?
            held = self._versions.get(version)
        if held is None:
            where = f"root key file {self.path}" if self.path else "this root key"
            raise DecryptionError(
                f"root key version {version} is not in {where} (it holds "
                f"{', '.join(map(str, self._versions))}): retired, or the file was rotated "
                "elsewhere and this copy is older"
            )
        return held

    @property
    def held(self) -> tuple[int, ...]:
        """The versions in memory now (:meth:`versions` re-reads a changed file first)."""
        return tuple(self._versions)

    # -- KeyProvider ---------------------------------------------------------------------------
    @property
    def key_id(self) -> str:
        return "file:" + self._versions[max(self._versions)].fingerprint.hex()

    async def versions(self) -> Sequence[int]:
        self._refresh()
        return tuple(self._versions)

    async def wrap(self, plaintext_key: bytes, context: bytes, *, version: int) -> bytes:
        held = self._held(version)
        return _WRAP_FORMAT + held.fingerprint + aead_wrap(held.wrap_key, plaintext_key, context)

    async def unwrap(self, wrapped: bytes, context: bytes, *, version: int) -> bytes:
        head = len(_WRAP_FORMAT) + _ID_BYTES
        if wrapped[:1] != _WRAP_FORMAT or len(wrapped) < head:
            raise DecryptionError("wrapped key: unknown format")
        held = self._held(version)
        if wrapped[1:head] != held.fingerprint:
            raise DecryptionError(
                f"wrapped key: wrapped by root key file:{wrapped[1:head].hex()}, but this "
                f"provider's version {version} is file:{held.fingerprint.hex()}"
            )
        return aead_unwrap(held.wrap_key, wrapped[head:], context, what="wrapped key")

    # -- RotatableKeyProvider ------------------------------------------------------------------
    async def add_version(self) -> int:
        return await asyncio.to_thread(self._add_version)

    async def retire_versions(self, versions: Collection[int]) -> None:
        await asyncio.to_thread(self._retire, frozenset(versions))

    # -- HybridKeyProvider ---------------------------------------------------------------------
    def hybrid_public_keys(self, version: int) -> tuple[X25519PublicKey, MLKEM768PublicKey]:
        return self._held(version).public

    async def hybrid_decapsulate(
        self, version: int, x25519_ephemeral: bytes, mlkem_ciphertext: bytes
    ) -> tuple[bytes, bytes]:
        held = self._held(version)
        try:
            shared_x = held.x25519.exchange(X25519PublicKey.from_public_bytes(x25519_ephemeral))
            shared_m = held.mlkem.decapsulate(mlkem_ciphertext)
        except ValueError as exc:
            raise DecryptionError(f"hybrid-wrapped key: invalid encapsulation ({exc})") from None
        return shared_x, shared_m
