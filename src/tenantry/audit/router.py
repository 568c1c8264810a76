"""HTTP routes of the audit log, for the caller's tenant (action ``security:read``)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from tenantry.audit.manager import AuditLog
from tenantry.http import Route, problems, provided, require
from tenantry.principal import Principal

__all__ = ["AuditDep", "audit_log", "router"]

#: Every read first moves the tenant's queued entries into its tree: an altered one is a 409.
router = APIRouter(prefix="/audit", tags=["audit"], route_class=Route, responses=problems(409))


#: The app's AuditLog (``state.tenantry.audit``, made in the lifespan).
audit_log = provided("audit")
AuditDep = Annotated[AuditLog, Depends(audit_log)]
Reader = Annotated[Principal, require("security:read")]
Size = Annotated[int, Query(ge=0, le=2**62)]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class EntryOut(BaseModel):
    seq: int
    leaf_hash: str
    recorded_at: datetime
    entry: dict[str, Any] | None  # None: the payload can no longer be opened (shredded keys)


class EntriesPage(BaseModel):
    tree_size: int
    entries: list[EntryOut]
    next_start: int | None


class InclusionOut(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    path: list[str]


class ConsistencyOut(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]


class CheckpointOut(BaseModel):
    origin: str
    tree_size: int
    root_hash: str
    note: str
    keys: list[str]


@router.get("/entries")
async def list_entries(
    principal: Reader,
    audit: AuditDep,
    start: Size = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntriesPage:
    """A page of the tenant's audit entries, by sequence number."""
    tenant = principal.tenant_id
    size = await audit.size(tenant)
    rows = await audit.entries(tenant, start, limit)
    entries = [
        EntryOut(
            seq=r.seq,
            leaf_hash=_b64(r.leaf_hash),
            recorded_at=r.recorded_at,
            entry=r.entry.model_dump(mode="json") if r.entry is not None else None,
        )
        for r in rows
    ]
    following = rows[-1].seq + 1 if rows and len(rows) == limit else None
    return EntriesPage(tree_size=size, entries=entries, next_start=following)


@router.get("/proof/{index}")
async def inclusion_proof(
    index: Annotated[int, Path(ge=0, le=2**62)],
    principal: Reader,
    audit: AuditDep,
    tree_size: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> InclusionOut:
    """The inclusion proof of entry ``index`` (RFC 9162 §2.1.3)."""
    proof = await audit.inclusion_proof(principal.tenant_id, index, tree_size)
    return InclusionOut(
        index=proof.index,
        tree_size=proof.tree_size,
        leaf_hash=_b64(proof.leaf_hash),
        root_hash=_b64(proof.root_hash),
        path=[_b64(p) for p in proof.path],
    )


@router.get("/checkpoint")
async def checkpoint(principal: Reader, audit: AuditDep) -> CheckpointOut:
    """Sign (or return the stored signature of) the tenant's current tree head."""
    cp = await audit.checkpoint(principal.tenant_id)
    return CheckpointOut(
        origin=cp.origin,
        tree_size=cp.tree_size,
        root_hash=_b64(cp.root_hash),
        note=cp.note,
        keys=[key.encode() for key in audit.signer.verifiers()],
    )


@router.get("/consistency")
async def consistency_proof(
    principal: Reader,
    audit: AuditDep,
    old: Annotated[int, Query(alias="from", ge=0, le=2**62)],
    new: Annotated[int, Query(alias="to", ge=0, le=2**62)],
) -> ConsistencyOut:
    """The consistency proof between tree sizes ``from`` and ``to`` (RFC 9162 §2.1.4)."""
    proof = await audit.consistency_proof(principal.tenant_id, old, new)
    return ConsistencyOut(
        old_size=proof.old_size,
        new_size=proof.new_size,
        old_root=_b64(proof.old_root),
        new_root=_b64(proof.new_root),
        path=[_b64(p) for p in proof.path],
    )
