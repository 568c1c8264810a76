"""A record's content to a version row and back: the public part, the sealed part, the text.

The sensitive part is sealed with the tenant's data key for (``metadata_versions.sealed``,
``<record id>/<version>``), so a sealed value copied to another record, version or tenant does
not open. Sealing needs the tenant's keys loaded (``await keyring.load(tenant)``) and does no
I/O, so it can run inside the version's transaction once its number is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tenantry.errors import InvalidInput
from tenantry.keys import Keyring
from tenantry.metadata import codec
from tenantry.metadata.language import text_config
from tenantry.metadata.repository import NewVersion
from tenantry.metadata.text import searchable_text

__all__ = ["ALL_FIELDS", "SEALED_PURPOSE", "check_sensitive", "compose", "open_content"]

SEALED_PURPOSE = "metadata_versions.sealed"
#: ``sensitive_fields`` of a record that is sensitive as a whole.
ALL_FIELDS = "*"
_MAX_SENSITIVE = 100


def check_sensitive(sensitive: bool, fields: Sequence[str]) -> list[str]:
    """The stored form of a record's sensitivity: ``["*"]`` for all of it, else field names."""
    if isinstance(fields, str) or not all(isinstance(f, str) and 0 < len(f) <= 100 for f in fields):
        raise InvalidInput("sensitive_fields must be a list of 1-100 character field names")
    if len(fields) > _MAX_SENSITIVE:
        raise InvalidInput(f"at most {_MAX_SENSITIVE} sensitive fields")
    return [ALL_FIELDS] if sensitive else sorted(set(fields))


def compose(
    keyring: Keyring,
    tenant_id: str,
    record_id: str,
    version: int,
    content: Mapping[str, Any],
    *,
    metadata_type: str,
    schema_name: str | None,
    schema_version: int | None,
    language: str | None,
    sensitive_fields: Sequence[str],
) -> NewVersion:
    """The row of ``version``: content checked (``codec.dump``), split, encoded and sealed."""
    codec.dump(content)  # the limits, on the whole content
    hidden = content.keys() if ALL_FIELDS in sensitive_fields else sensitive_fields
    public, secret = codec.split(content, hidden)
    payload, packed = codec.compress(codec.dump(public))
    encoding = codec.PUBLIC_COMPRESSED if packed else 0
    sealed = None
    if secret:
        body, packed = codec.compress(codec.dump(secret))
        encoding |= codec.SEALED_COMPRESSED if packed else 0
        sealed = keyring.seal(tenant_id, body, SEALED_PURPOSE, f"{record_id}/{version}")
    return NewVersion(
        metadata_type=metadata_type,
        schema_name=schema_name,
        schema_version=schema_version,
        language=language,
        text_config=text_config(language),
        fields=codec.projection(public),
        search_text=searchable_text(public, schema_name),
        sensitive_fields=sensitive_fields,
        encoding=encoding,
        payload=payload,
        sealed=sealed,
    )


async def open_content(
    keyring: Keyring | None, tenant_id: str, record_id: str, row: Mapping[Any, Any]
) -> dict[str, Any]:
    """The whole content of a version (a row with its ``version``, ``encoding``, ``payload``
    and ``sealed``), its sealed part opened."""
    encoding, version = row["encoding"], row["version"]
    content = codec.load(codec.decompress(row["payload"], bool(encoding & codec.PUBLIC_COMPRESSED)))
    if row["sealed"] is not None:
        if keyring is None:
            raise ValueError("a sealed version needs the tenant's keyring")
        body = await keyring.decrypt(
            tenant_id, row["sealed"], purpose=SEALED_PURPOSE, record_id=f"{record_id}/{version}"
        )
        secret = codec.load(codec.decompress(body, bool(encoding & codec.SEALED_COMPRESSED)))
        content.update(secret)
    return dict(sorted(content.items()))
