"""HTTP routes of the caller's tenant's models: ``ai:train`` to train and promote, ``ai:read``
to list models, follow training jobs and ask for predictions. Another tenant's model or job is
not found. With ``ML_MODELS_ENABLED`` off every route answers 409 (feature disabled)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field

from tenantry.actions import AI_READ, AI_TRAIN
from tenantry.ai.catalogue import MODEL_TYPES
from tenantry.ai.data import MAX_FEATURES, MAX_PREDICT_ROWS, MIN_TRAINING_ROWS
from tenantry.ai.jobs import JobView, TrainingJobs
from tenantry.ai.schemas import ModelView, Prediction
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.principal import Principal

__all__ = ["MAX_HTTP_TRAINING_ROWS", "router"]

#: Rows a training request may carry (the body's byte cap, TENANTRY_MAX_BODY_BYTES, applies too).
MAX_HTTP_TRAINING_ROWS: Final = 20_000

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["ai"])
Reader = Annotated[Principal, require(AI_READ)]
Trainer = Annotated[Principal, require(AI_TRAIN)]
Jobs = Annotated[TrainingJobs, Depends(provided("ai_jobs"))]
ModelName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
JobId = Annotated[str, Path(max_length=64)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Row = Annotated[list[Finite], Field(min_length=1, max_length=MAX_FEATURES)]
Text = Annotated[str, Field(max_length=200)]

ModelType = StrEnum("ModelType", {name: name for name in MODEL_TYPES})  # type: ignore[misc]

_EXAMPLE_ROWS: Any = [[float(i % 4), float(i % 3), float(i % 5)] for i in range(24)]


class TrainingDataBody(BaseModel):
    """Rows to train on: ``features``, and ``target`` (a performance_predictor's latencies) or
    ``labels`` (1 for an anomaly); the lineage: where they came from and which time they cover."""

    model_config = ConfigDict(extra="forbid")

    features: list[Row] = Field(min_length=MIN_TRAINING_ROWS, max_length=MAX_HTTP_TRAINING_ROWS)
    target: list[Finite] | None = Field(default=None, max_length=MAX_HTTP_TRAINING_ROWS)
    labels: list[Literal[0, 1]] | None = Field(default=None, max_length=MAX_HTTP_TRAINING_ROWS)
    feature_names: list[Text] | None = Field(default=None, max_length=MAX_FEATURES)
    source: Text = "http"
    rows: Text = ""
    start: datetime | None = None
    end: datetime | None = None


class TrainBody(BaseModel):
    """A training: the model's name (default: its type's), its data and its parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "checkout-latency",
                    "training_data": {
                        "features": _EXAMPLE_ROWS,
                        "target": [10 + 3 * a + 2 * b + c for a, b, c in _EXAMPLE_ROWS],
                        "feature_names": ["rps", "cpu", "pool_in_use"],
                        "source": "load test 2026-12-01",
                    },
                    "parameters": {"max_iter": 20},
                }
            ]
        },
    )

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")] | None = None
    training_data: TrainingDataBody
    parameters: dict[Text, float | str] = Field(default_factory=dict, max_length=16)


class PredictBody(BaseModel):
    """Rows to predict (a list of rows, or one row as a mapping of feature names), and which
    version answers: an alias (default ``champion``) or a version number."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"input_data": [[1.0, 2.0, 3.0]]}]}
    )

    input_data: list[Row] | dict[Text, Finite] = Field(max_length=MAX_PREDICT_ROWS)
    alias: Literal["champion", "challenger"] = "champion"
    version: Annotated[int, Field(ge=1)] | None = None


class PromoteBody(BaseModel):
    """The version to make champion (default: the latest kept one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})

    version: Annotated[int, Field(ge=1)] | None = None


def _data(body: TrainingDataBody) -> dict[str, Any]:
    return body.model_dump(exclude_none=True)


@router.post(
    "/ai/models/{model_type}/train",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(409, 429),
)
async def train_model(
    model_type: ModelType, body: TrainBody, caller: Trainer, jobs: Jobs
) -> JobView:
    """Start training a new version of a model: a job (``GET /ai/jobs/{job_id}`` follows it).
    Invalid data changes nothing (422); a tenant has at most 8 jobs open (429)."""
    return jobs.submit(
        caller.tenant_id, model_type.value, _data(body.training_data), name=body.name,
        parameters=body.parameters, actor=caller.actor,
    )  # fmt: skip


@router.get("/ai/jobs/{job_id}", responses=problems(404, 409))
async def get_job(job_id: JobId, caller: Reader, jobs: Jobs) -> JobView:
    """A training job of the tenant: its status, progress and, once done, its result."""
    jobs.ai.check_enabled()
    return jobs.job(caller.tenant_id, job_id)


@router.get("/ai/models", responses=problems(409))
async def list_models(caller: Reader, jobs: Jobs) -> list[ModelView]:
    """The tenant's models: their aliases and kept versions (metrics, parameters, lineage)."""
    return await jobs.ai.models(tenant_id=caller.tenant_id)


@router.post("/ai/models/{model_name}/predict", responses=problems(404, 409))
async def predict(
    model_name: ModelName, body: PredictBody, caller: Reader, jobs: Jobs
) -> Prediction:
    """Predictions of the model's champion (or the alias or version given)."""
    return await jobs.ai.predict(
        model_name, body.input_data, tenant_id=caller.tenant_id, alias=body.alias,
        version=body.version,
    )  # fmt: skip


@router.post("/ai/models/{model_name}/promote", responses=problems(404, 409))
async def promote(
    model_name: ModelName, body: PromoteBody, caller: Trainer, jobs: Jobs
) -> ModelView:
    """Make a version the model's champion (audited)."""
    return await jobs.ai.promote(
        model_name, body.version, tenant_id=caller.tenant_id, actor=caller.actor
    )
