"""Rows to the shapes callers get: a record (upgraded to its schema's latest version on read)
and a version (as written)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantry.keys import Keyring
from tenantry.metadata.conformance import Conformance
from tenantry.metadata.schemas import MetadataRecord, MetadataType, MetadataVersion
from tenantry.metadata.versions import open_content

__all__ = ["record_of", "version_of"]


async def record_of(
    tenant_id: str,
    row: Mapping[Any, Any],
    keyring: Keyring | None,
    conformance: Conformance,
) -> MetadataRecord:
    """The record of a row of the current version; its content as its schema's latest version
    reads it (see :mod:`tenantry.metadata.conformance`)."""
    content = await open_content(keyring, tenant_id, row["id"], row)
    schema_name, schema_version = row["schema_name"], row["schema_version"]
    if schema_name is not None:
        content, schema_version = await conformance.upgraded(
            tenant_id, schema_name, schema_version, content
        )
    return MetadataRecord(
        id=row["id"],
        tenant_id=tenant_id,
        metadata_type=MetadataType(row["metadata_type"]),
        version=row["version"],
        content=content,
        schema_name=schema_name,
        schema_version=schema_version,
        language=row["language"],
        sensitive_fields=tuple(row["sensitive_fields"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        embedded=bool(row["embedded"]),
    )


async def version_of(
    tenant_id: str, row: Mapping[Any, Any], keyring: Keyring | None
) -> MetadataVersion:
    """A version as it was written."""
    content = await open_content(keyring, tenant_id, row["record_id"], row)
    return MetadataVersion(
        record_id=row["record_id"],
        version=row["version"],
        change=row["change"],
        metadata_type=MetadataType(row["metadata_type"]),
        content=content,
        schema_name=row["schema_name"],
        schema_version=row["schema_version"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )
