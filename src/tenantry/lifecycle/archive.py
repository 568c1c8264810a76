"""The sealed export archive: its format, the writer of its sealed members, and its verifier.

An export is a tar file (PAX) holding, in this order:

- ``export.json``, in clear: ``{"format", "tenant_id", "export_id", "manifest_sha256"}``, what
  a reader needs to know whose keys open the rest;
- ``manifest.json``, sealed: the tenant, the time, tenantry's version, the database's migration
  revision, and for each file its table, columns, rows, bytes and SHA-256 (of its JSON lines);
- ``<table>.jsonl`` for every tenant table, sealed: one JSON object per row.

A sealed member is a sequence of chunks, each ``length (4 bytes, big endian) | ciphertext``,
the ciphertext being :meth:`~tenantry.keys.Keyring.seal` of the zstd-compressed next
:data:`CHUNK_BYTES` (at most) of the member's plaintext, for the tenant, purpose
:data:`PURPOSE` and record ``<export id>/<member>/<index>`` (``/last`` added on the last chunk).
So a chunk opens only in its place: moved to another index, member, export or tenant, dropped
at the end (truncation) or changed by one bit, it fails the tag check. Nothing is ever held
whole in memory, and no plaintext touches the disk: the export's size is not bounded by memory.

:func:`open_export` checks all of it (every chunk's seal, the manifest's SHA-256 against
``export.json``, every file's rows, bytes and SHA-256 against the manifest, and that the tar holds
those files and no others) before it answers an :class:`ExportArchive`, whose
:meth:`~ExportArchive.rows` then reads a table's rows back.
"""

from __future__ import annotations

import hashlib
import json
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import zstandard

from tenantry.context import validate_tenant_id
from tenantry.errors import DecryptionError, InvalidTenantId
from tenantry.keys import Keyring

__all__ = [
    "CHUNK_BYTES",
    "FORMAT",
    "HEADER_NAME",
    "MANIFEST_NAME",
    "PURPOSE",
    "ExportArchive",
    "SealedWriter",
    "open_export",
]

FORMAT: Final = "tenantry-export/1"
#: The purpose the archive's chunks are sealed for (with the tenant's data key).
PURPOSE: Final = "tenant.export"
#: Plaintext bytes a chunk holds at most (the memory an export or a reader needs per file).
CHUNK_BYTES: Final = 1 << 20
HEADER_NAME: Final = "export.json"
MANIFEST_NAME: Final = "manifest.json"
#: The largest manifest a reader accepts (a manifest lists tables: kilobytes).
MAX_MANIFEST_BYTES: Final = 8 << 20
_LENGTH = struct.Struct(">I")
#: A sealed chunk's largest length: zstd's bound on incompressible input, plus the seal.
_MAX_SEALED: Final = CHUNK_BYTES + (CHUNK_BYTES >> 7) + 1024


def _record_id(export_id: str, name: str, index: int, last: bool) -> str:
    return f"{export_id}/{name}/{index}" + ("/last" if last else "")


class SealedWriter:
    """One sealed member: takes its plaintext in pieces, writes sealed chunks to ``out``, and
    counts and hashes the plaintext (what the manifest records)."""

    def __init__(
        self, keyring: Keyring, tenant_id: str, export_id: str, name: str, out: IO[bytes]
    ) -> None:
        self._keyring, self._tenant_id = keyring, tenant_id
        self._export_id, self.name, self._out = export_id, name, out
        self._buffer = bytearray()
        self._index = 0
        self._compressor = zstandard.ZstdCompressor(level=3)
        self._hash = hashlib.sha256()
        #: Plaintext bytes written so far.
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:  # the rest, however short, is the last chunk
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]

    def close(self) -> None:
        """Seal what is left as the last chunk (an empty member is one empty last chunk)."""
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _emit(self, chunk: bytes, *, last: bool) -> None:
        record = _record_id(self._export_id, self.name, self._index, last)
        sealed = self._keyring.seal(
            self._tenant_id, self._compressor.compress(chunk), PURPOSE, record
        )
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


def _chunks(
    stream: IO[bytes], keyring: Keyring, tenant_id: str, export_id: str, name: str
) -> Iterator[bytes]:
    """The plaintext chunks of the sealed member ``name`` read from ``stream``, each opened."""
    decompressor = zstandard.ZstdDecompressor()
    index, head = 0, stream.read(_LENGTH.size)
    while True:
        if len(head) != _LENGTH.size:
            raise DecryptionError(f"export archive: {name} is truncated")
        (size,) = _LENGTH.unpack(head)
        if size > _MAX_SEALED:
            raise DecryptionError(f"export archive: {name} has a chunk of impossible length")
        sealed = stream.read(size)
        if len(sealed) != size:
            raise DecryptionError(f"export archive: {name} is truncated")
        head = stream.read(_LENGTH.size)
        last = not head
        record = _record_id(export_id, name, index, last)
        compressed = keyring.open(tenant_id, sealed, PURPOSE, record)
        try:  # authenticated: only a changed codec fails here
            yield decompressor.decompress(compressed, max_output_size=CHUNK_BYTES)
        except zstandard.ZstdError as exc:
            raise DecryptionError(f"export archive: {name} does not decompress: {exc}") from None
        if last:
            return
        index += 1


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines (without their newline) of the text the chunks make."""
    rest = b""
    for chunk in chunks:
        *whole, rest = (rest + chunk).split(b"\n")
        yield from whole
    if rest:
        yield rest


@dataclass(frozen=True, slots=True)
class ExportArchive:
    """A verified export: its manifest, and its tables' rows (:meth:`rows`)."""

    path: Path
    tenant_id: str
    export_id: str
    #: The SHA-256 of ``manifest.json`` (the one the ``tenant.export`` audit entry names).
    manifest_sha256: str
    manifest: dict[str, Any]
    keyring: Keyring

    @property
    def tables(self) -> list[str]:
        return [f["table"] for f in self.manifest["files"].values()]

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        """The rows of ``table`` as written (see the manifest's ``encoding``), checked again
        against the manifest as they are read (:class:`DecryptionError` at the end if not)."""
        name = f"{table}.jsonl"
        entry = self.manifest["files"].get(name)
        if entry is None:
            raise KeyError(f"the export holds no table {table!r}")
        with tarfile.open(self.path, "r:") as tar:
            digest, count = hashlib.sha256(), 0
            for line in _lines(self._member(tar, name, digest)):
                count += 1
                yield json.loads(line)
            _check(name, entry, digest.hexdigest(), count)

    def _member(self, tar: tarfile.TarFile, name: str, digest: Any) -> Iterator[bytes]:
        stream = _extract(tar, name)
        for chunk in _chunks(stream, self.keyring, self.tenant_id, self.export_id, name):
            digest.update(chunk)
            yield chunk


async def open_export(path: str | Path, keyring: Keyring) -> ExportArchive:
    """Open and verify the export at ``path`` with the tenant's keys (``keyring``): every chunk,
    the manifest and every file, as the module docstring says. :class:`DecryptionError` for an
    archive that does not verify (tampered, truncated, or not an export),
    :class:`~tenantry.errors.KeysDestroyed` once the tenant's keys are destroyed."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:") as tar:
            header = _header(tar)
            tenant_id, export_id = header["tenant_id"], header["export_id"]
            await keyring.load(tenant_id)
            raw = bytearray()
            stream = _extract(tar, MANIFEST_NAME)
            for chunk in _chunks(stream, keyring, tenant_id, export_id, MANIFEST_NAME):
                raw += chunk
                if len(raw) > MAX_MANIFEST_BYTES:
                    raise DecryptionError("export archive: the manifest is too large")
            manifest_sha256 = hashlib.sha256(raw).hexdigest()
            if manifest_sha256 != header["manifest_sha256"]:
                raise DecryptionError("export archive: the manifest does not match its SHA-256")
            manifest = json.loads(raw)
            if (manifest["tenant_id"], manifest["export_id"]) != (tenant_id, export_id):
                raise DecryptionError("export archive: the manifest is another export's")
            names = [m.name for m in tar.getmembers()]
            expected = [HEADER_NAME, MANIFEST_NAME, *manifest["files"]]
            if sorted(names) != sorted(expected):
                raise DecryptionError(
                    "export archive: its files are not the manifest's "
                    f"(extra: {sorted(set(names) - set(expected))}, "
                    f"missing: {sorted(set(expected) - set(names))})"
                )
            archive = ExportArchive(path, tenant_id, export_id, manifest_sha256, manifest, keyring)
            for name, entry in manifest["files"].items():
                digest = hashlib.sha256()
                count = sum(1 for _ in _lines(archive._member(tar, name, digest)))
                _check(name, entry, digest.hexdigest(), count)
            return archive
    except (tarfile.TarError, OSError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DecryptionError(f"export archive: not a readable tenantry export ({exc})") from None


def _header(tar: tarfile.TarFile) -> dict[str, Any]:
    header = json.loads(_extract(tar, HEADER_NAME).read(64 * 1024))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DecryptionError(f"export archive: not a {FORMAT} archive")
    try:
        validate_tenant_id(header["tenant_id"])
    except InvalidTenantId:
        raise DecryptionError("export archive: its header names no valid tenant") from None
    return header


def _extract(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    stream = tar.extractfile(name)
    if stream is None:
        raise DecryptionError(f"export archive: {name} is not a file")
    return stream


def _check(name: str, entry: dict[str, Any], sha256: str, rows: int) -> None:
    if sha256 != entry["sha256"] or rows != entry["rows"]:
        raise DecryptionError(
            f"export archive: {name} does not match its manifest "
            f"(sha256 {sha256}, {rows} rows; the manifest says {entry['sha256']}, "
            f"{entry['rows']} rows)"
        )
