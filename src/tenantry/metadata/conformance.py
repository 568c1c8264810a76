"""What a record's schema asks of it: validation on write, sealing, upgrade on read.

A record that names a schema (``schema_name``) is written against one version of it: the latest
when none is given; its content must validate (every violation listed, nothing stored). A
top-level property the schema marks ``"x-sensitive": true`` is sealed like a field named in
``sensitive_fields``.

When the subject gains versions, stored records are **upgraded on read**: a record written with
version *n* is read through each later version's :func:`~tenantry.metadata.evolution.upgrade`
(renames by ``aliases``, defaults of added properties) while the subject's mode keeps readers
able to read older data (BACKWARD, FULL and their transitive forms); under FORWARD or NONE a
record is returned as written. ``tenantry metadata upgrade`` writes the upgraded content as new
versions (``change = "upgrade"``), so that reads stop paying for it.

The latest version of a subject is cached for ``latest_ttl`` seconds (5 by default): a version
registered by another process reaches this one's reads within that time. Versions themselves
never change, so their documents are cached without expiry (bounded).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from tenantry.errors import InvalidInput
from tenantry.metadata.evolution import upgrade
from tenantry.metadata.registry import SchemaRegistry
from tenantry.metadata.schemas import CompatibilityMode, SchemaVersion

__all__ = ["READABLE_MODES", "SENSITIVE_KEYWORD", "Conformance"]

#: The schema keyword that marks a top-level property sensitive (sealed, never searched).
SENSITIVE_KEYWORD: Final = "x-sensitive"
#: Modes under which a newer version reads content written with an older one.
READABLE_MODES: Final = frozenset(
    {
        CompatibilityMode.BACKWARD,
        CompatibilityMode.BACKWARD_TRANSITIVE,
        CompatibilityMode.FULL,
        CompatibilityMode.FULL_TRANSITIVE,
    }
)
_CACHED_VERSIONS = 4096


class Conformance:
    """The schema side of the metadata manager (see the module docstring)."""

    def __init__(self, registry: SchemaRegistry, *, latest_ttl: float = 5.0) -> None:
        self.registry = registry
        self.latest_ttl = latest_ttl
        self._latest: dict[tuple[str, str], tuple[float, SchemaVersion]] = {}
        self._versions: OrderedDict[tuple[str, str, int], SchemaVersion] = OrderedDict()

    async def version(self, tenant_id: str, name: str, version: int) -> SchemaVersion:
        key = (tenant_id, name, version)
        found = self._versions.get(key)
        if found is None:
            found = await self.registry.get(tenant_id, name, version)
            self._versions[key] = found
            while len(self._versions) > _CACHED_VERSIONS:
                self._versions.popitem(last=False)
        return found

    async def latest(self, tenant_id: str, name: str) -> SchemaVersion:
        key, now = (tenant_id, name), time.monotonic()
        cached = self._latest.get(key)
        if cached is not None and now - cached[0] < self.latest_ttl:
            return cached[1]
        found = await self.registry.get(tenant_id, name)
        if len(self._latest) >= _CACHED_VERSIONS:
            self._latest.clear()
        self._latest[key] = (now, found)
        return found

    async def for_write(
        self,
        tenant_id: str,
        name: str,
        version: int | None,
        content: Mapping[str, Any],
        *,
        at_least: int | None = None,
    ) -> SchemaVersion:
        """The version ``content`` is written with (``version``, else the latest), after it
        validated against it (:class:`~tenantry.errors.SchemaViolation` lists what is wrong)."""
        if version is None:
            chosen = await self.registry.get(tenant_id, name)  # the latest, fresh
        else:
            chosen = await self.version(tenant_id, name, version)
        if at_least is not None and chosen.version < at_least:
            raise InvalidInput(
                f"the record is written with version {at_least} of schema {name!r}; "
                f"it cannot go back to version {chosen.version}"
            )
        await self.registry.validate_content(tenant_id, name, chosen.version, dict(content))
        return chosen

    @staticmethod
    def sensitive(schema: SchemaVersion, named: Sequence[str]) -> list[str]:
        """``named`` (the stored form: ``["*"]`` or field names) with the properties the schema
        marks sensitive."""
        if "*" in named:
            return list(named)
        properties = schema.document.get("properties", {})
        marked = {
            key
            for key, spec in (properties.items() if isinstance(properties, Mapping) else ())
            if isinstance(spec, Mapping) and spec.get(SENSITIVE_KEYWORD) is True
        }
        return sorted(set(named) | marked)

    async def upgraded(
        self,
        tenant_id: str,
        name: str,
        version: int,
        content: dict[str, Any],
        *,
        to: SchemaVersion | None = None,
    ) -> tuple[dict[str, Any], int]:
        """``content`` (written with ``version`` of ``name``) as version ``to`` (default: the
        latest) reads it, and that version's number; as written when the subject's mode does
        not let newer versions read older content."""
        target = to or await self.latest(tenant_id, name)
        if target.version <= version or target.compatibility not in READABLE_MODES:
            return content, version
        writer = await self.version(tenant_id, name, version)
        for number in range(version + 1, target.version + 1):
            reader = await self.version(tenant_id, name, number)
            content = upgrade(content, writer.document, reader.document)
            writer = reader
        return content, target.version
