"""SchemaRegistry: named JSON Schemas per tenant, with immutable versions and compatibility modes.

A *subject* (a schema's name) has a compatibility mode (BACKWARD unless chosen) and versions
1, 2, 3 ... that never change. Registering a schema checks it (draft 2020-12, bounded, local
references only: :mod:`~tenantry.metadata.validation`), returns the existing version when an
identical schema is registered already (as Confluent Schema Registry does), and otherwise checks
it against the earlier versions its mode names (:mod:`~tenantry.metadata.compatibility`): an
incompatible schema is refused with :class:`~tenantry.errors.IncompatibleSchema`, every reason an
issue, and nothing is stored. Registrations of one subject are serialised by a lock on its row,
so two never get the same version. Every change writes an audit entry in its transaction
(``schema.register``, ``schema.compatibility``).

Content is validated with :meth:`SchemaRegistry.validate_content`, whose compiled validators are
cached by (tenant, name, version): versions are immutable, so a cached validator is never stale.
Called inside an open transaction (a metadata record's write), its read joins that transaction.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy.engine import RowMapping

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import IncompatibleSchema, InvalidInput, Issue, SchemaNotFound
from tenantry.metadata.compatibility import check_compatibility
from tenantry.metadata.schema_repository import SchemaRepository
from tenantry.metadata.schemas import (
    SCHEMA_NAME_PATTERN,
    CompatibilityMode,
    CompatibilityReport,
    SchemaSubject,
    SchemaVersion,
)
from tenantry.metadata.validation import CompiledSchema, check_schema, compile_schema
from tenantry.validation import parse_enum

__all__ = ["DEFAULT_COMPATIBILITY", "VALIDATOR_CACHE_SIZE", "SchemaRegistry"]

#: The mode of a subject registered without one (Confluent's default).
DEFAULT_COMPATIBILITY = CompatibilityMode.BACKWARD
#: How many compiled validators a registry keeps, by (tenant, name, version).
VALIDATOR_CACHE_SIZE = 1024
_NAME = re.compile(SCHEMA_NAME_PATTERN)


def check_name(name: object) -> str:
    """``name`` if it names a schema (1-100 of ``A-Z a-z 0-9 _ . -``); else InvalidInput."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        shown = InvalidInput.excerpt(name)
        raise InvalidInput(
            f"invalid schema name {shown}: use 1-100 characters of A-Z, a-z, 0-9, '_.-'"
        )
    return name


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"invalid schema version {InvalidInput.excerpt(version)}: use 1, 2, ...")
    return version


def _version(row: RowMapping) -> SchemaVersion:
    return SchemaVersion.model_validate(dict(row))


class SchemaRegistry(RecordsChanges):
    """Named JSON Schemas of each tenant. ``database`` defaults to the process's, ``audit`` to
    its change log (as every manager's)."""

    def __init__(self, database: Database | None = None, *, audit: ChangeLog | None = None) -> None:
        self._database = database
        self._audit = audit
        self._validators: OrderedDict[tuple[str, str, int], CompiledSchema] = OrderedDict()
        self._lock = threading.Lock()

    async def register(
        self,
        tenant_id: str,
        name: str,
        schema: dict[str, Any],
        *,
        compatibility: CompatibilityMode | str | None = None,
        actor: str | None = None,
    ) -> SchemaVersion:
        """Register ``schema`` as the next version of ``name`` (the first creates the subject).

        ``compatibility``, when given, becomes the subject's mode and is the one checked. An
        identical schema returns its existing version; an incompatible one raises
        :class:`IncompatibleSchema` with each reason as an issue, and nothing is stored.
        """
        validate_tenant_id(tenant_id)
        check_name(name)
        mode = None if compatibility is None else parse_enum(CompatibilityMode, compatibility)
        check_schema(schema)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = SchemaRepository(conn)
                await repo.ensure_subject(name, (mode or DEFAULT_COMPATIBILITY).value)
                subject = await repo.subject(name, lock=True)
                if subject is None:  # pragma: no cover - inserted above, in this transaction
                    raise SchemaNotFound(f"schema {name!r} does not exist")
                current = CompatibilityMode(subject["compatibility"])
                if mode is not None and mode is not current:
                    await repo.update_subject(name, compatibility=mode.value)
                    await trail.record(
                        tenant_id,
                        "schema.compatibility",
                        f"schema:{name}",
                        actor=actor,
                        detail={"compatibility": mode.value, "was": current.value},
                    )
                mode = mode or current
                same = await repo.same_as(name, schema)
                if same is not None:
                    return _version(same)
                earlier = [row["schema"] for row in await repo.versions(name)]
                report = check_compatibility(schema, earlier, mode)
                if not report.compatible:
                    raise IncompatibleSchema(
                        f"the schema is not {mode.value} compatible with schema {name!r} "
                        f"({len(report.reasons)} reason{'s' if len(report.reasons) != 1 else ''})",
                        issues=[Issue(("schema",), r, "compatibility") for r in report.reasons],
                    )
                version = subject["latest"] + 1
                row = await repo.insert_version(name, version, schema, mode.value, actor)
                await repo.update_subject(name, latest=version)
                await trail.record(
                    tenant_id,
                    "schema.register",
                    f"schema:{name}",
                    actor=actor,
                    detail={"version": version, "compatibility": mode.value},
                )
        return _version(row)

    async def get(self, tenant_id: str, name: str, version: int | None = None) -> SchemaVersion:
        """Version ``version`` of ``name`` (the latest when None); else :class:`SchemaNotFound`."""
        validate_tenant_id(tenant_id)
        check_name(name)
        if version is not None:
            _check_version(version)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = SchemaRepository(conn)
                row = await (repo.latest(name) if version is None else repo.version(name, version))
        if row is None:
            which = "" if version is None else f" version {version}"
            raise SchemaNotFound(f"schema {name!r}{which} does not exist")
        return _version(row)

    async def subjects(self, tenant_id: str) -> list[SchemaSubject]:
        """The tenant's schemas (subjects), by name."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SchemaRepository(conn).subjects()
        return [SchemaSubject.model_validate(dict(r)) for r in rows]

    async def versions(self, tenant_id: str, name: str) -> list[SchemaVersion]:
        """Every version of ``name``, version 1 first; :class:`SchemaNotFound` if it has none."""
        validate_tenant_id(tenant_id)
        check_name(name)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SchemaRepository(conn).versions(name)
        if not rows:
            raise SchemaNotFound(f"schema {name!r} does not exist")
        return [_version(r) for r in rows]

    async def check(self, tenant_id: str, name: str, schema: dict[str, Any]) -> CompatibilityReport:
        """Whether ``schema`` could be registered as the next version of ``name`` under its
        mode (a subject with no versions yet takes any valid schema). Writes nothing."""
        validate_tenant_id(tenant_id)
        check_name(name)
        check_schema(schema)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = SchemaRepository(conn)
                subject = await repo.subject(name)
                rows = [] if subject is None else await repo.versions(name)
        mode = DEFAULT_COMPATIBILITY if subject is None else subject["compatibility"]
        return check_compatibility(schema, [row["schema"] for row in rows], mode)

    async def set_compatibility(
        self,
        tenant_id: str,
        name: str,
        mode: CompatibilityMode | str,
        *,
        actor: str | None = None,
    ) -> SchemaSubject:
        """Set the compatibility mode of ``name`` (checked from its next registration on)."""
        validate_tenant_id(tenant_id)
        check_name(name)
        chosen = parse_enum(CompatibilityMode, mode)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = SchemaRepository(conn)
                subject = await repo.subject(name, lock=True)
                if subject is None:
                    raise SchemaNotFound(f"schema {name!r} does not exist")
                row = await repo.update_subject(name, compatibility=chosen.value)
                if subject["compatibility"] != chosen.value:
                    await trail.record(
                        tenant_id,
                        "schema.compatibility",
                        f"schema:{name}",
                        actor=actor,
                        detail={"compatibility": chosen.value, "was": subject["compatibility"]},
                    )
        if row is None:  # pragma: no cover - locked above
            raise SchemaNotFound(f"schema {name!r} does not exist")
        return SchemaSubject.model_validate(dict(row))

    async def validator(self, tenant_id: str, name: str, version: int) -> CompiledSchema:
        """The compiled validator of a version (cached; a miss reads the version, joining an
        open transaction); :class:`SchemaNotFound` if there is no such version."""
        key = (tenant_id, name, _check_version(version))
        with self._lock:
            found = self._validators.get(key)
            if found is not None:
                self._validators.move_to_end(key)
                return found
        compiled = compile_schema((await self.get(tenant_id, name, version)).document)
        with self._lock:
            self._validators[key] = compiled
            while len(self._validators) > VALIDATOR_CACHE_SIZE:
                self._validators.popitem(last=False)
        return compiled

    async def validate_content(self, tenant_id: str, name: str, version: int, content: Any) -> None:
        """Nothing if ``content`` matches version ``version`` of ``name``; else
        :class:`~tenantry.errors.SchemaViolation` listing every violation (``loc`` the path into
        the content), or :class:`SchemaNotFound`."""
        (await self.validator(tenant_id, name, version)).validate(content)
