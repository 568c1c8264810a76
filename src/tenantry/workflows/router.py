"""HTTP routes of the caller's tenant's workflows: ``workflows:read`` to list and read them
(with each step's history) and the registered definitions, ``workflows:run`` to start and
cancel, ``workflows:operate`` to resume or compensate a parked one. Another tenant's workflow
is not found. Each change is audited by the manager."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantry.actions import WORKFLOWS_OPERATE, WORKFLOWS_READ, WORKFLOWS_RUN
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.principal import Principal
from tenantry.workflows.definitions import CompensationStrategy
from tenantry.workflows.manager import MAX_LIST, WorkflowManager, WorkflowView
from tenantry.workflows.models import STATUSES

__all__ = ["DefinitionView", "WorkflowBody", "router"]

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["workflows"])
Reader = Annotated[Principal, require(WORKFLOWS_READ)]
Runner = Annotated[Principal, require(WORKFLOWS_RUN)]
Operator = Annotated[Principal, require(WORKFLOWS_OPERATE)]
Workflows = Annotated[WorkflowManager, Depends(provided("workflows"))]
WorkflowId = Annotated[uuid.UUID, Path()]


class WorkflowBody(BaseModel):
    """A saga to start: a registered definition's name, its input (JSON, checked by the
    definition), the compensation strategy, and an idempotency key that makes a retried
    request return the first saga."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "definition": "release_track",
                    "input": {
                        "title": "Night Drive",
                        "artists": ["Ada Wave"],
                        "release_date": "2027-03-01",
                        "country": "DE",
                        "registrant": "TNT",
                        "stores": ["spotify", "apple_music"],
                    },
                    "compensation_strategy": "automatic",
                    "idempotency_key": "release-night-drive",
                }
            ]
        },
    )

    definition: str = Field(min_length=1, max_length=64)
    input: dict[str, Any] = Field(default_factory=dict)
    compensation_strategy: CompensationStrategy = CompensationStrategy.AUTOMATIC
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)


class DefinitionView(BaseModel):
    name: str
    steps: list[str]
    description: str
    input_schema: dict[str, Any] | None


@router.post("/workflows", status_code=status.HTTP_201_CREATED, responses=problems(404, 409))
async def create_workflow(body: WorkflowBody, caller: Runner, workflows: Workflows) -> WorkflowView:
    """Start a saga of a registered definition; an unknown definition is 404, input its
    definition refuses is 422, a tenant at its 50,000 unfinished workflows is 409. With an
    ``idempotency_key`` used before, the first saga is answered and nothing starts."""
    workflow_id = await workflows.create_workflow(
        caller.tenant_id,
        body.definition,
        body.input,
        compensation_strategy=body.compensation_strategy,
        idempotency_key=body.idempotency_key,
        actor=caller.actor,
    )
    return await workflows.get_workflow(caller.tenant_id, workflow_id)


class WorkflowFilter(BaseModel):
    """Which workflows a listing shows: of ``status`` and ``definition``, created ``before``
    (the last ``created_at`` of the previous page), at most ``limit``."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, pattern=f"^({'|'.join(STATUSES)})$")
    definition: str | None = Field(default=None, max_length=64)
    before: datetime | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIST)

    @field_validator("before", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        """A time as ISO 8601 text (``2026-12-06T09:00:00Z``), not a number of seconds."""
        if isinstance(value, str) and not _ISO.match(value):
            raise ValueError("before is a time in ISO 8601 (2026-12-06T09:00:00Z)")
        return value


@router.get("/workflows")
async def list_workflows(
    caller: Reader, workflows: Workflows, query: Annotated[WorkflowFilter, Query()]
) -> list[WorkflowView]:
    """The tenant's workflows, the newest first; ``before`` (a ``created_at``) pages on."""
    return await workflows.list_workflows(
        caller.tenant_id,
        status=query.status,
        definition=query.definition,
        before=query.before,
        limit=query.limit,
    )


@router.get("/workflows/definitions")
async def list_definitions(caller: Reader, workflows: Workflows) -> list[DefinitionView]:
    """The definitions a workflow can be started with here, with their input's JSON schema."""
    del caller
    found = []
    for name in workflows.registry.names():
        d = workflows.registry.get(name)
        schema = d.input_model.model_json_schema() if d.input_model is not None else None
        found.append(DefinitionView(name=name, steps=[s.name for s in d.steps],
                                    description=d.description, input_schema=schema))  # fmt: skip
    return found


@router.get("/workflows/{workflow_id}", responses=problems(404))
async def get_workflow(
    workflow_id: WorkflowId, caller: Reader, workflows: Workflows
) -> WorkflowView:
    """The workflow with each step's state, attempts, output and errors."""
    return await workflows.get_workflow(caller.tenant_id, str(workflow_id))


@router.post("/workflows/{workflow_id}/cancel", responses=problems(404, 409))
async def cancel_workflow(
    workflow_id: WorkflowId, caller: Runner, workflows: Workflows
) -> WorkflowView:
    """Cancel: a pending or parked workflow ends now; a running one after its current step,
    compensated by its strategy. A finished one is 409."""
    return await workflows.cancel(caller.tenant_id, str(workflow_id), actor=caller.actor)


@router.post("/workflows/{workflow_id}/resume", responses=problems(404, 409))
async def resume_workflow(
    workflow_id: WorkflowId, caller: Operator, workflows: Workflows
) -> WorkflowView:
    """A parked workflow tries its failed step (or compensation) again; 409 if not parked."""
    return await workflows.resume(caller.tenant_id, str(workflow_id), actor=caller.actor)


@router.post("/workflows/{workflow_id}/compensate", responses=problems(404, 409))
async def compensate_workflow(
    workflow_id: WorkflowId, caller: Operator, workflows: Workflows
) -> WorkflowView:
    """A workflow parked in its forward phase compensates its completed steps, last first."""
    return await workflows.compensate(caller.tenant_id, str(workflow_id), actor=caller.actor)
