"""HTTP routes of metadata records (the documents' Metadata Manager API).

Every route acts for the caller's tenant: ``metadata:read`` to read, list and search,
``metadata:write`` to change. An id or ``tenant_id`` naming another tenant is a probe: recorded,
and 404 as if it did not exist.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tenantry.access.probes import ensure_own_tenant
from tenantry.actions import METADATA_READ, METADATA_WRITE
from tenantry.errors import InvalidInput
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.metadata.manager import ID_PREFIX, MetadataManager
from tenantry.metadata.schemas import (
    MetadataCreate,
    MetadataPage,
    MetadataRecord,
    MetadataRollback,
    MetadataSearch,
    MetadataSearchBody,
    MetadataType,
    MetadataUpdate,
    MetadataVersion,
    SearchHit,
)
from tenantry.principal import Principal
from tenantry.sessions.tokens import tenant_of_id

__all__ = ["router"]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["metadata"])
Reader = Annotated[Principal, require(METADATA_READ)]
Writer = Annotated[Principal, require(METADATA_WRITE)]
Metadata = Annotated[MetadataManager, Depends(provided("metadata"))]
RecordId = Annotated[str, Path(min_length=5, max_length=200)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def _own(request: Request, principal: Principal, record_id: str) -> None:
    """An id naming another tenant is a probe: recorded, and 404 as if it did not exist."""
    await ensure_own_tenant(principal, tenant_of_id(record_id, ID_PREFIX), record_id, request)


async def _own_tenant(request: Request, principal: Principal, tenant_id: str | None) -> None:
    if tenant_id is not None:
        await ensure_own_tenant(principal, tenant_id, f"tenant {tenant_id}", request)


@router.post("/metadata/create", status_code=status.HTTP_201_CREATED)
async def create_metadata(
    body: MetadataCreate, request: Request, caller: Writer, metadata: Metadata
) -> MetadataRecord:
    """Store a record (version 1); content naming a schema is validated against it."""
    await _own_tenant(request, caller, body.tenant_id)
    record_id = await metadata.create_metadata(
        caller.tenant_id,
        body.metadata_type,
        body.content,
        body.schema_name,
        schema_version=body.schema_version,
        language=body.language,
        sensitive=body.sensitive,
        sensitive_fields=body.sensitive_fields,
        actor=caller.actor,
    )
    return await metadata.get_metadata(caller.tenant_id, record_id)


class ListQuery(BaseModel):
    """``GET /metadata``'s query: filters, page size and the cursor of the page."""

    model_config = ConfigDict(extra="forbid")

    metadata_type: MetadataType | None = None
    schema_name: str | None = Field(default=None, max_length=100)
    fields: str | None = Field(
        default=None,
        max_length=4000,
        description='Top-level field values, as a JSON object: {"genre": "jazz"}',
    )
    limit: int = Field(default=50, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=400)


@router.get("/metadata")
async def list_metadata(
    query: Annotated[ListQuery, Query()], caller: Reader, metadata: Metadata
) -> MetadataPage:
    """Records newest first, a page at a time (``next_cursor`` gives the next)."""
    return await metadata.list_metadata(
        caller.tenant_id,
        metadata_type=query.metadata_type,
        schema_name=query.schema_name,
        fields=_fields(query.fields),
        limit=query.limit,
        cursor=query.cursor,
    )


@router.post("/metadata/search")
async def search_metadata(
    body: MetadataSearchBody, request: Request, caller: Reader, metadata: Metadata
) -> list[SearchHit]:
    """Hybrid search: full text and meaning fused by reciprocal rank (see ``MetadataSearch``)."""
    await _own_tenant(request, caller, body.tenant_id)
    search = MetadataSearch(**body.model_dump(exclude={"tenant_id"}))
    return await metadata.search_metadata(caller.tenant_id, search)


@router.get("/metadata/{record_id}", responses=problems(404))
async def get_metadata(
    record_id: RecordId, request: Request, caller: Reader, metadata: Metadata
) -> MetadataRecord:
    await _own(request, caller, record_id)
    return await metadata.get_metadata(caller.tenant_id, record_id)


@router.put("/metadata/{record_id}", responses=problems(404, 409))
async def update_metadata(
    record_id: RecordId,
    body: MetadataUpdate,
    request: Request,
    caller: Writer,
    metadata: Metadata,
) -> MetadataRecord:
    """Write the next version; ``expected_version`` is the one the change was made to (409 if
    the record has moved on)."""
    await _own(request, caller, record_id)
    return await metadata.update_metadata(
        caller.tenant_id,
        record_id,
        body.content,
        expected_version=body.expected_version,
        schema_version=body.schema_version,
        language=body.language,
        sensitive=body.sensitive,
        sensitive_fields=body.sensitive_fields,
        actor=caller.actor,
    )


@router.delete(
    "/metadata/{record_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 409)
)
async def delete_metadata(
    record_id: RecordId,
    request: Request,
    caller: Writer,
    metadata: Metadata,
    expected_version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    await _own(request, caller, record_id)
    await metadata.delete_metadata(
        caller.tenant_id, record_id, expected_version=expected_version, actor=caller.actor
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/metadata/{record_id}/versions", responses=problems(404))
async def list_versions(
    record_id: RecordId, request: Request, caller: Reader, metadata: Metadata
) -> list[MetadataVersion]:
    await _own(request, caller, record_id)
    return await metadata.versions(caller.tenant_id, record_id)


@router.get("/metadata/{record_id}/versions/{version}", responses=problems(404))
async def get_version(
    record_id: RecordId, version: Version, request: Request, caller: Reader, metadata: Metadata
) -> MetadataVersion:
    await _own(request, caller, record_id)
    return await metadata.get_version(caller.tenant_id, record_id, version)


@router.post("/metadata/{record_id}/rollback", responses=problems(404, 409))
async def rollback(
    record_id: RecordId,
    body: MetadataRollback,
    request: Request,
    caller: Writer,
    metadata: Metadata,
) -> MetadataRecord:
    """Write a new version equal to ``to_version``."""
    await _own(request, caller, record_id)
    return await metadata.rollback(
        caller.tenant_id,
        record_id,
        body.to_version,
        expected_version=body.expected_version,
        actor=caller.actor,
    )


def _fields(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput('fields must be a JSON object, e.g. {"genre": "jazz"}') from None
    if not isinstance(value, dict):
        raise InvalidInput('fields must be a JSON object, e.g. {"genre": "jazz"}')
    return value
