"""HTTP routes of the schema registry, for the caller's tenant.

``POST /schemas/{subject}`` registers a version (``schemas:write``; 409 with the reasons
when it is incompatible), ``GET /schemas`` lists the subjects, ``GET /schemas/{subject}/
versions`` and ``.../versions/{version}`` (a number or ``latest``) read them (``schemas:read``),
``POST /schemas/{subject}/compatibility`` checks a schema without registering it
(``schemas:read``), and ``PUT /schemas/{subject}/config`` sets the subject's compatibility
mode (``schemas:write``). Bodies are bounded by the app's body limit and a schema by
``MAX_SCHEMA_BYTES``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from tenantry.actions import SCHEMAS_READ, SCHEMAS_WRITE
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.metadata.registry import SchemaRegistry
from tenantry.metadata.schemas import (
    SCHEMA_NAME_PATTERN,
    CompatibilityCheck,
    CompatibilityReport,
    CompatibilityUpdate,
    SchemaRegistration,
    SchemaSubject,
    SchemaVersion,
)
from tenantry.principal import Principal

__all__ = ["router"]

#: Every route reads the tenant's schemas in the database.
router = APIRouter(
    prefix="/schemas", tags=["schemas"], route_class=Route, responses=problems(*BACKEND)
)
Read = Annotated[Principal, require(SCHEMAS_READ)]
Write = Annotated[Principal, require(SCHEMAS_WRITE)]
Registry = Annotated[SchemaRegistry, Depends(provided("schemas"))]
SchemaName = Annotated[str, Path(pattern=SCHEMA_NAME_PATTERN, examples=["track"])]
VersionRef = Annotated[str, Path(pattern=r"^([1-9][0-9]{0,8}|latest)$", examples=["1", "latest"])]


@router.post("/{subject}", responses=problems(409))
async def register_schema(
    subject: SchemaName, body: SchemaRegistration, caller: Write, registry: Registry
) -> SchemaVersion:
    """Register ``schema`` as the next version of ``subject`` (an identical schema answers its
    existing version); ``compatibility`` also sets the subject's mode."""
    return await registry.register(
        caller.tenant_id,
        subject,
        body.schema_,
        compatibility=body.compatibility,
        actor=caller.actor,
    )


@router.get("")
async def list_schemas(caller: Read, registry: Registry) -> list[SchemaSubject]:
    return await registry.subjects(caller.tenant_id)


@router.get("/{subject}/versions", responses=problems(404))
async def list_schema_versions(
    subject: SchemaName, caller: Read, registry: Registry
) -> list[SchemaVersion]:
    return await registry.versions(caller.tenant_id, subject)


@router.get("/{subject}/versions/{version}", responses=problems(404))
async def get_schema_version(
    subject: SchemaName, version: VersionRef, caller: Read, registry: Registry
) -> SchemaVersion:
    number = None if version == "latest" else int(version)
    return await registry.get(caller.tenant_id, subject, number)


@router.post("/{subject}/compatibility")
async def check_schema_compatibility(
    subject: SchemaName, body: CompatibilityCheck, caller: Read, registry: Registry
) -> CompatibilityReport:
    """Whether ``schema`` could be registered as the next version of ``subject``; writes
    nothing."""
    return await registry.check(caller.tenant_id, subject, body.schema_)


@router.put("/{subject}/config", responses=problems(404))
async def set_schema_compatibility(
    subject: SchemaName, body: CompatibilityUpdate, caller: Write, registry: Registry
) -> SchemaSubject:
    return await registry.set_compatibility(
        caller.tenant_id, subject, body.compatibility, actor=caller.actor
    )
