"""Checkpoints as C2SP signed notes, signed Ed25519 and co-signed ML-DSA-65.

A checkpoint (C2SP ``tlog-checkpoint``) is the note text ``<origin>\\n<size>\\n<base64 root>\\n``;
the signed note (C2SP ``signed-note``) appends a blank line and one line per signature,
``— <key name> <base64(4-byte key id || signature)>``. The key id is the first four bytes of
``SHA-256(key name || 0x0A || type || public key)``; the verifier key string is
``<name>+<hex key id>+<base64(type || public key)>``.

Types: ``0x01`` is Ed25519 (as registered by signed-note). ML-DSA-65 has no registered type, so
tenantry uses ``0xff`` for its co-signature (FIPS 204 pure ML-DSA over the note text, empty
context); a verifier that does not know it ignores that line, as signed-note prescribes.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey

from tenantry.errors import AuditVerificationError

__all__ = [
    "ED25519",
    "KEY_NAME",
    "MLDSA65",
    "CheckpointSigner",
    "NoteVerifier",
    "checkpoint_body",
    "parse_checkpoint",
    "verify_note",
]

ED25519 = 0x01
MLDSA65 = 0xFF
KEY_NAME = "tenantry.local/audit"
ED25519_FILE = "audit-ed25519.key"
MLDSA65_FILE = "audit-mldsa65.key"
DASH = "\u2014"


def _key_id(name: str, kind: int, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The checkpoint note text (ends with a newline)."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(note: str) -> tuple[str, int, bytes, list[tuple[str, bytes]]]:
    """(origin, size, root, [(key name, base64-decoded signature)]); malformed raises."""
    text, sep, sigs = note.partition("\n\n")
    lines = text.split("\n")
    if not sep or len(lines) < 3:
        raise AuditVerificationError("malformed checkpoint note: no body or no signatures")
    try:
        size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise AuditVerificationError(f"malformed checkpoint note: {exc}") from None
    if size < 0 or len(root) != 32 or str(size) != lines[1]:
        raise AuditVerificationError("malformed checkpoint note: bad size or root hash")
    signatures: list[tuple[str, bytes]] = []
    for line in sigs.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise AuditVerificationError(f"malformed signature line {line[:80]!r}")
        try:
            signatures.append((parts[1], base64.b64decode(parts[2], validate=True)))
        except binascii.Error:
            raise AuditVerificationError(f"malformed signature line {line[:80]!r}") from None
    return lines[0], size, root, signatures


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """One verifier key: name, type (``0x01`` Ed25519, ``0xff`` ML-DSA-65), public key."""

    name: str
    kind: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.kind, self.public)

    def encode(self) -> str:
        """``<name>+<hex key id>+<base64(type || public key)>``."""
        blob = base64.b64encode(bytes([self.kind]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @classmethod
    def decode(cls, text: str) -> NoteVerifier:
        try:
            name, key_id, blob = text.split("+", 2)
            raw = base64.b64decode(blob, validate=True)
            verifier = cls(name, raw[0], raw[1:])
            ok = bytes.fromhex(key_id) == verifier.key_id and raw[0] in (ED25519, MLDSA65)
        except (ValueError, IndexError, binascii.Error):
            ok = False
        if not ok:
            raise AuditVerificationError(f"malformed verifier key {text[:80]!r}")
        return verifier

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            if self.kind == ED25519:
                Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
            else:
                MLDSA65PublicKey.from_public_bytes(self.public).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


def verify_note(note: str, verifiers: list[NoteVerifier]) -> set[int]:
    """The key types whose signatures on ``note`` verify (unknown keys are ignored).

    Raises :class:`AuditVerificationError` when a line of a known key carries a bad signature.
    """
    text = note.partition("\n\n")[0] + "\n"
    by_id = {(v.name, v.key_id): v for v in verifiers}
    good: set[int] = set()
    for name, blob in parse_checkpoint(note)[3]:
        verifier = by_id.get((name, blob[:4]))
        if verifier is None:
            continue
        if not verifier.verify(text.encode(), blob[4:]):
            raise AuditVerificationError(f"bad signature of {name} on the checkpoint")
        good.add(verifier.kind)
    return good


class CheckpointSigner:
    """Signs checkpoints Ed25519, and co-signs ML-DSA-65 when it holds that key (QUANTUM)."""

    def __init__(
        self,
        ed25519: Ed25519PrivateKey,
        mldsa65: MLDSA65PrivateKey | None = None,
        *,
        name: str = KEY_NAME,
    ) -> None:
        self.name = name
        self._ed25519 = ed25519
        self._mldsa65 = mldsa65

    @classmethod
    def generate(cls, *, quantum: bool = False, name: str = KEY_NAME) -> CheckpointSigner:
        """Fresh keys in memory (tests, examples)."""
        mldsa = MLDSA65PrivateKey.generate() if quantum else None
        return cls(Ed25519PrivateKey.generate(), mldsa, name=name)

    @classmethod
    def from_data_dir(cls, data_dir: str | Path, *, quantum: bool = False) -> CheckpointSigner:
        """Keys from ``audit-ed25519.key`` / ``audit-mldsa65.key`` (32-byte seeds, mode 0600),
        created on first use; the ML-DSA-65 key only with ``quantum``."""
        directory = Path(data_dir)
        ed = Ed25519PrivateKey.from_private_bytes(_seed(directory / ED25519_FILE))
        ml = MLDSA65PrivateKey.from_seed_bytes(_seed(directory / MLDSA65_FILE)) if quantum else None
        return cls(ed, ml)

    @property
    def quantum(self) -> bool:
        return self._mldsa65 is not None

    def verifiers(self) -> list[NoteVerifier]:
        """The public keys, for :meth:`NoteVerifier.encode` and offline verification."""
        keys = [NoteVerifier(self.name, ED25519, self._ed25519.public_key().public_bytes_raw())]
        if self._mldsa65 is not None:
            public = self._mldsa65.public_key().public_bytes_raw()
            keys.append(NoteVerifier(self.name + "-mldsa65", MLDSA65, public))
        return keys

    def sign(self, body: str) -> str:
        """The signed note of ``body`` (a checkpoint text ending in a newline)."""
        data = body.encode()
        sigs = [self._ed25519.sign(data)]
        if self._mldsa65 is not None:
            sigs.append(self._mldsa65.sign(data))
        lines = [
            f"{DASH} {v.name} {base64.b64encode(v.key_id + sig).decode()}\n"
            for v, sig in zip(self.verifiers(), sigs, strict=True)
        ]
        return body + "\n" + "".join(lines)


def _seed(path: Path) -> bytes:
    """A 32-byte secret seed from ``path``, written (0600) if it does not exist: next to it, then
    linked into place, so processes starting together agree on one seed and none reads a
    half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, os.urandom(32))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first
        finally:
            os.unlink(temporary)
    seed = path.read_bytes()
    if len(seed) != 32:
        raise AuditVerificationError(f"{path} is not a 32-byte key seed")
    return seed
