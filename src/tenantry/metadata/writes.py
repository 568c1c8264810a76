"""One change of a record, inside its tenant transaction: the version composed, stored, audited.

Every write of a record goes through :meth:`Writes.put`: creation (version 1), an update, a
rollback and a schema upgrade. The version's content is sealed and encoded by
:func:`~tenantry.metadata.versions.compose`; the audit entry (``metadata.<change>``) names the
record, its version, type and schema, never the content. Its stored bytes are counted against
the tenant's limit (:mod:`~tenantry.metadata.storage`) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from tenantry.db.changes import ChangeLog
from tenantry.errors import MetadataNotFound, VersionConflict
from tenantry.keys import Keyring
from tenantry.metadata.repository import MetadataRepository
from tenantry.metadata.storage import StorageUsage, version_bytes
from tenantry.metadata.versions import compose

__all__ = ["Header", "Writes"]


@dataclass(frozen=True, slots=True)
class Header:
    """What a version says of its record besides the content."""

    metadata_type: str
    schema_name: str | None
    schema_version: int | None
    language: str | None
    sensitive_fields: Sequence[str]

    @classmethod
    def of(cls, row: Mapping[Any, Any], **changes: Any) -> Header:
        """The header of a record's row (``metadata_records``), with ``changes``."""
        fields = {
            "metadata_type": row["metadata_type"],
            "schema_name": row["schema_name"],
            "schema_version": row["schema_version"],
            "language": row["language"],
            "sensitive_fields": list(row["sensitive_fields"]),
        }
        return cls(**(fields | changes))


@dataclass(frozen=True, slots=True)
class Writes:
    """The writes of one tenant transaction (``repo``'s), by ``actor``."""

    repo: MetadataRepository
    keyring: Keyring
    trail: ChangeLog
    tenant_id: str
    actor: str | None
    #: The bytes the tenant may store (its tier's ``storage_bytes``; ``None``: no limit).
    limit: int | None = None

    async def locked(self, record_id: str, expected: int | None) -> RowMapping:
        """The record, locked until the transaction ends; at ``expected`` when given."""
        row = await self.repo.get(record_id, lock=True)
        if row is None:
            raise MetadataNotFound(f"metadata {record_id!r} does not exist")
        if expected is not None and row["version"] != expected:
            raise VersionConflict(
                f"metadata {record_id!r} is at version {row['version']}, not {expected}: "
                "read it again and apply the change to that version"
            )
        return row

    async def put(
        self,
        record_id: str,
        version: int,
        content: Mapping[str, Any],
        header: Header,
        change: str,
        **detail: Any,
    ) -> None:
        """Write ``version`` of the record (``change``: create, update, rollback, upgrade)."""
        new = compose(
            self.keyring,
            self.tenant_id,
            record_id,
            version,
            content,
            metadata_type=header.metadata_type,
            schema_name=header.schema_name,
            schema_version=header.schema_version,
            language=header.language,
            sensitive_fields=header.sensitive_fields,
        )
        await StorageUsage(self.repo.conn).charge(
            version_bytes(new.payload, new.sealed), self.limit
        )
        if change == "create":
            await self.repo.create(record_id, new, self.actor)
        else:
            await self.repo.write(record_id, version, new, change, self.actor)
        await self.trail.record(
            self.tenant_id,
            f"metadata.{change}",
            f"metadata:{record_id}",
            actor=self.actor,
            detail={
                "version": version,
                "metadata_type": header.metadata_type,
                "schema_name": header.schema_name,
                "schema_version": header.schema_version,
                "sealed": new.sealed is not None,
                **detail,
            },
        )
