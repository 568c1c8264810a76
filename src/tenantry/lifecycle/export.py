"""Export (GDPR portability): every tenant table of a tenant, as JSON lines, in an archive sealed
for the tenant, with a manifest of hashes.

:meth:`TenantExporter.export` (``LifecycleManager.export_tenant``):

1. checks the tenant exists and loads its keys (:class:`KeysDestroyed` once they are destroyed:
   an erased tenant has nothing to export);
2. in one read-only ``REPEATABLE READ`` transaction as the tenant (one snapshot of all its data,
   and row-level security lets only its rows through), finds the tenant tables
   (:mod:`tenantry.lifecycle.tables`) and reads each in pages of ``page_rows`` in primary-key
   order (keyset pagination: memory stays bounded whatever the table's size), every row's
   ``tenant_id`` checked once more;
3. writes each table as sealed chunks (:mod:`tenantry.lifecycle.archive`) to a temporary file
   next to ``destination``, then the manifest, then the tar, renamed to ``destination`` only
   when complete (an existing file is never overwritten);
4. records ``tenant.export`` in the tenant's audit log, with the manifest's SHA-256 (if that
   fails, the archive is removed: no export without its entry).

Rows are exported as stored: a column tenantry seals with the tenant's data key (a metadata
record's sensitive fields, a receiver's secret, the audit entries) stays a ciphertext in the
archive, which opens with the same keys (see docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import tarfile
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database, joined
from tenantry.db.migrate import current_revision
from tenantry.errors import Conflict, InvalidInput, IsolationViolation, KeysDestroyed
from tenantry.keys import Keyring
from tenantry.lifecycle.archive import (
    FORMAT,
    HEADER_NAME,
    MANIFEST_NAME,
    PURPOSE,
    SealedWriter,
)
from tenantry.lifecycle.tables import ENCODING, ExportTable, discover, json_line
from tenantry.tenants import TenantRegistry

__all__ = ["ExportProgress", "ExportReport", "ExportStep", "TableExport", "TenantExporter"]

#: Rows a page reads (a row is bounded by the managers' stored-value limits).
PAGE_ROWS: Final = 500
_SNAPSHOT: Final = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@dataclass(frozen=True, slots=True)
class TableExport:
    """One table's file in the archive."""

    table: str
    file: str
    rows: int
    bytes: int
    sha256: str
    #: Declared with ``tenant_table`` (False: found in the catalog only, exported all the same).
    declared: bool


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What :meth:`TenantExporter.export` wrote."""

    tenant_id: str
    export_id: str
    path: Path
    created_at: datetime
    manifest_sha256: str
    tables: tuple[TableExport, ...]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "export_id": self.export_id,
            "path": str(self.path),
            "created_at": self.created_at.isoformat(),
            "manifest_sha256": self.manifest_sha256,
            "rows": self.rows,
            "bytes": self.bytes,
            "tables": {t.table: t.rows for t in self.tables},
        }


@dataclass(frozen=True, slots=True)
class ExportStep:
    """Progress: ``rows`` of ``table`` read so far; ``tables_done`` of ``tables_total``."""

    table: str
    rows: int
    tables_done: int
    tables_total: int


ExportProgress = Callable[[ExportStep], None]


class TenantExporter(RecordsChanges):
    """See the module docstring. ``keyring`` seals the archive (default: one on the database)."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        keyring: Keyring | None = None,
        audit: ChangeLog | None = None,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        if not 1 <= page_rows <= 10_000:
            raise InvalidInput("page_rows must be between 1 and 10000")
        self._database, self._audit, self._keyring = database, audit, keyring
        self._page_rows = page_rows

    async def export(
        self,
        tenant_id: str,
        destination: str | Path,
        *,
        actor: str | None = None,
        progress: ExportProgress | None = None,
    ) -> ExportReport:
        """Export ``tenant_id`` to ``destination`` (a new file); see the module docstring."""
        validate_tenant_id(tenant_id)
        path = _destination(destination)
        if joined(tenant_id) is not None:
            raise Conflict("an export reads in a transaction of its own: not inside another")
        db = await self._db()
        await TenantRegistry(db).get(tenant_id)  # TenantNotFound
        keyring = self._keyring = self._keyring or Keyring(db)
        await keyring.load(tenant_id)
        export_id = str(uuid.uuid4())
        try:
            with tenant_scope(tenant_id):
                keyring.seal(tenant_id, b"", PURPOSE, f"{export_id}/probe")
        except KeysDestroyed:
            raise KeysDestroyed(
                f"the keys of tenant {tenant_id!r} were destroyed: its data is erased and "
                "cannot be exported"
            ) from None
        trail = await self._trail(tenant_id)
        created = datetime.now(UTC)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tenantry-export-") as work:
            parts = _Parts(Path(work), keyring, tenant_id, export_id)
            with tenant_scope(tenant_id):
                async with db.tenant_transaction(prologue=_SNAPSHOT) as conn:
                    read = _Read(conn, parts, self._page_rows, progress)
                    revision = await current_revision(conn)
                    tables = await discover(conn)
                    files = [
                        await read.table(t, done, len(tables)) for done, t in enumerate(tables)
                    ]
            manifest = _manifest(
                tenant_id, export_id, created=created, revision=revision, tables=tables, files=files
            )
            report = ExportReport(
                tenant_id,
                export_id,
                path,
                created,
                parts.seal(MANIFEST_NAME, manifest),
                tuple(files),
            )
            await asyncio.to_thread(parts.write_tar, path, report)
        try:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction():
                    await trail.record(
                        tenant_id,
                        "tenant.export",
                        f"export:{export_id}",
                        actor=actor,
                        frameworks=("GDPR",),
                        detail={
                            "manifest_sha256": report.manifest_sha256,
                            "tables": len(files),
                            "rows": report.rows,
                            "bytes": report.bytes,
                        },
                    )
        except BaseException:  # no export without its audit entry
            path.unlink(missing_ok=True)
            raise
        return report


def _destination(destination: str | Path) -> Path:
    path = Path(destination)
    if path.exists():
        raise Conflict(f"{path} exists already: an export never overwrites a file")
    if not path.parent.is_dir():
        raise InvalidInput(f"{path.parent} is not a directory")
    return path


@dataclass(slots=True)
class _Read:
    """Reading the tables of one export, in its transaction."""

    conn: AsyncConnection
    parts: _Parts
    page_rows: int
    progress: ExportProgress | None

    async def table(self, table: ExportTable, done: int, total: int) -> TableExport:
        """Write ``table``'s rows, a page at a time in key order, to its sealed member."""
        name, tenant_id = f"{table.name}.jsonl", self.parts.tenant_id
        first, after = text(table.page(after=False)), text(table.page(after=True))
        tenant_column = [c.name for c in table.columns].index("tenant_id")
        rows, last = 0, None
        with self.parts.member(name) as writer:
            while True:
                values: dict[str, Any] = {"limit": self.page_rows}
                if last is not None:
                    values.update({f"k{i}": v for i, v in enumerate(last)})
                statement = first if last is None else after
                page = (await self.conn.execute(statement, values)).all()
                for row in page:
                    if row[tenant_column] != tenant_id:  # RLS lets none through
                        raise IsolationViolation(f"{table.name}: a row of another tenant was read")
                    writer.write(json_line(table, row))
                rows += len(page)
                if self.progress is not None:
                    self.progress(ExportStep(table.name, rows, done, total))
                if len(page) < self.page_rows:
                    break
                mapping = page[-1]._mapping
                last = tuple(mapping[k] for k in table.key)
        if self.progress is not None:
            self.progress(ExportStep(table.name, rows, done + 1, total))
        return TableExport(table.name, name, rows, writer.size, writer.sha256, table.declared)


class _Parts:
    """The archive's sealed members, as temporary files in ``work`` until the tar is written."""

    def __init__(self, work: Path, keyring: Keyring, tenant_id: str, export_id: str) -> None:
        self.work, self.keyring, self.tenant_id, self.export_id = (
            work,
            keyring,
            tenant_id,
            export_id,
        )

    def member(self, name: str) -> _Member:
        return _Member(self, name)

    def seal(self, name: str, content: dict[str, Any]) -> str:
        """Seal ``content`` as JSON in the member ``name``; its SHA-256."""
        raw = json.dumps(content, ensure_ascii=False, indent=1).encode()
        with self.member(name) as writer:
            writer.write(raw)
        return hashlib.sha256(raw).hexdigest()

    def write_tar(self, path: Path, report: ExportReport) -> None:
        """The tar of the members, moved to ``path`` once complete."""
        partial, created = self.work / "export.tar", report.created_at
        header = {
            "format": FORMAT,
            "tenant_id": report.tenant_id,
            "export_id": report.export_id,
            "manifest_sha256": report.manifest_sha256,
        }
        files = [t.file for t in report.tables]
        with (
            open(partial, "xb") as out,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            raw = json.dumps(header, indent=1).encode()
            _add(tar, HEADER_NAME, len(raw), created, io.BytesIO(raw))
            for name in (MANIFEST_NAME, *files):
                sealed = self.work / name
                with open(sealed, "rb") as source:
                    _add(tar, name, sealed.stat().st_size, created, source)
        if path.exists():
            raise Conflict(f"{path} exists already: an export never overwrites a file")
        os.replace(partial, path)


class _Member:
    def __init__(self, parts: _Parts, name: str) -> None:
        self._parts, self._name = parts, name

    def __enter__(self) -> SealedWriter:
        p = self._parts
        self._out = open(p.work / self._name, "xb")
        self._writer = SealedWriter(p.keyring, p.tenant_id, p.export_id, self._name, self._out)
        return self._writer

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._writer.close()
        finally:
            self._out.close()


def _add(tar: tarfile.TarFile, name: str, size: int, created: datetime, source: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(created.timestamp())
    tar.addfile(info, source)


def _manifest(
    tenant_id: str,
    export_id: str,
    *,
    created: datetime,
    revision: str | None,
    tables: list[ExportTable],
    files: list[TableExport],
) -> dict[str, Any]:
    from tenantry import __version__  # noqa: PLC0415 - the package is imported by then

    return {
        "format": FORMAT,
        "tenant_id": tenant_id,
        "export_id": export_id,
        "created_at": created.isoformat(),
        "tenantry_version": __version__,
        "migration_revision": revision,
        "encoding": ENCODING,
        "files": {
            f.file: {
                "table": f.table,
                "declared": f.declared,
                "columns": t.manifest_columns(),
                "rows": f.rows,
                "bytes": f.bytes,
                "sha256": f.sha256,
            }
            for t, f in zip(tables, files, strict=True)
        },
    }
