"""HTTP routes of the caller's tenant's silences, as Alertmanager's ``/api/v2/silences``:
``alerts:read`` to read, ``alerts:write`` to create, change and expire. Another tenant's
silence is not found (row-level security does not show it). What a route does for a tenant
id is a function of its own, shared with the platform's routes for operators
(:mod:`tenantry.alerts.platform_router`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tenantry.actions import ALERTS_READ, ALERTS_WRITE
from tenantry.alerts.silences import (
    MAX_SILENCE_COMMENT,
    MAX_SILENCE_MATCHERS,
    SilenceManager,
    SilenceState,
    SilenceView,
)
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.principal import Principal

__all__ = [
    "SilenceBody",
    "SilenceChange",
    "SilenceFilter",
    "create_for",
    "list_for",
    "router",
    "update_for",
]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["alerts"])
Reader = Annotated[Principal, require(ALERTS_READ)]
Writer = Annotated[Principal, require(ALERTS_WRITE)]
Silences = Annotated[SilenceManager, Depends(provided("silences"))]
SilenceId = Annotated[uuid.UUID, Path()]
MatcherText = Annotated[str, Field(min_length=1, max_length=2048)]
SilenceFilter = Annotated[
    list[MatcherText] | None, Query(alias="filter", max_length=MAX_SILENCE_MATCHERS)
]


class SilenceBody(BaseModel):
    """A new silence: what it mutes (Alertmanager's matchers), from when (default: now; a time
    in the past is now) until when (required, at most a year later), and why."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "matchers": ['alertname="disk_full"', 'env=~"staging|dev"'],
                    "starts_at": "2099-01-01T08:00:00Z",
                    "ends_at": "2099-01-01T10:00:00Z",
                    "comment": "maintenance of the staging disks",
                }
            ]
        },
    )

    matchers: list[MatcherText] = Field(min_length=1, max_length=MAX_SILENCE_MATCHERS)
    starts_at: datetime | None = None
    ends_at: datetime
    comment: str = Field(default="", max_length=MAX_SILENCE_COMMENT)


class SilenceChange(BaseModel):
    """What an update may change: when a pending or active silence ends, and its comment."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"comment": "until the fix is out"}]}
    )

    ends_at: datetime | None = None
    comment: str | None = Field(default=None, max_length=MAX_SILENCE_COMMENT)


@router.post("/alerts/silences", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_silence(body: SilenceBody, caller: Writer, silences: Silences) -> SilenceView:
    """Create a silence; invalid ones (a bad matcher, one that matches everything, an end
    before the start or in the past, longer than a year) change nothing (422), nor does one
    beyond the tenant's 1,000 live silences (409)."""
    return await create_for(caller.tenant_id, body, silences, caller.actor)


async def create_for(
    tenant_id: str, body: SilenceBody, silences: SilenceManager, actor: str | None
) -> SilenceView:
    return await silences.create(
        tenant_id,
        body.matchers,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        comment=body.comment,
        actor=actor,
    )


async def list_for(
    tenant_id: str,
    silences: SilenceManager,
    state: SilenceState | None,
    matchers: list[str] | None,
) -> list[SilenceView]:
    return await silences.silences(tenant_id, state=state, matchers=matchers or ())


async def update_for(
    tenant_id: str,
    silence_id: uuid.UUID,
    body: SilenceChange,
    silences: SilenceManager,
    actor: str | None,
) -> SilenceView:
    return await silences.update(
        tenant_id, str(silence_id), ends_at=body.ends_at, comment=body.comment, actor=actor
    )


@router.get("/alerts/silences")
async def list_silences(
    caller: Reader,
    silences: Silences,
    state: SilenceState | None = None,
    matchers: SilenceFilter = None,
) -> list[SilenceView]:
    """The tenant's silences (expired ones for five days), those in ``state`` and, with
    ``filter`` (repeatable: ``?filter=alertname="disk_full"``), those whose matchers' labels
    and values match each filter, as Alertmanager's ``filter``."""
    return await list_for(caller.tenant_id, silences, state, matchers)


@router.get("/alerts/silences/{silence_id}", responses=problems(404))
async def get_silence(silence_id: SilenceId, caller: Reader, silences: Silences) -> SilenceView:
    return await silences.silence(caller.tenant_id, str(silence_id))


@router.patch("/alerts/silences/{silence_id}", responses=problems(404, 409))
async def update_silence(
    silence_id: SilenceId, body: SilenceChange, caller: Writer, silences: Silences
) -> SilenceView:
    """Change a pending or active silence's ``ends_at`` or ``comment`` (in place); an expired
    one answers 409. To change what a silence mutes, expire it and create another."""
    return await update_for(caller.tenant_id, silence_id, body, silences, caller.actor)


@router.delete(
    "/alerts/silences/{silence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404),
)
async def expire_silence(silence_id: SilenceId, caller: Writer, silences: Silences) -> Response:
    """Expire the silence now (it stays readable, expired, for five days); 204 for one that
    had expired already."""
    await silences.expire(caller.tenant_id, str(silence_id), actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
