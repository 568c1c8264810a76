"""Training jobs: ``train_model`` in the background, with a job id and its progress.

Per tenant, one job trains at a time and at most :data:`MAX_OPEN_JOBS` are queued or running
(one more is refused: :class:`~tenantry.errors.BulkheadFull`, a 429); the training data is
checked before a job is made, so a bad request is refused at once and makes no job. Jobs live in
the process that runs them: a finished one is readable for :data:`KEEP_FINISHED` (at most
:data:`MAX_KEPT_JOBS` per tenant), and a restart forgets them (a version stored is kept). A job
id names its tenant's job only: another tenant's is not found.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from tenantry.ai.data import TrainingData
from tenantry.ai.manager import AIManager
from tenantry.ai.schemas import TrainingResult
from tenantry.errors import BulkheadFull, NotFound, TenantryError
from tenantry.logging import get_logger

__all__ = ["KEEP_FINISHED", "MAX_OPEN_JOBS", "JobStatus", "JobView", "TrainingJobs"]

MAX_OPEN_JOBS: Final = 8
KEEP_FINISHED: Final = 3600.0
MAX_KEPT_JOBS: Final = 100
_log = get_logger("tenantry.ai")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobView:
    """A training job as its tenant sees it; ``progress`` from 0 to 1, at ``stage``."""

    id: str
    model_type: str
    model_name: str
    status: JobStatus
    progress: float
    stage: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: TrainingResult | None = None
    error: str | None = None


@dataclass
class _Job:
    view: JobView
    tenant: str
    finished: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class TrainingJobs:
    """The background trainings of one process; see the module docstring."""

    def __init__(self, ai: AIManager) -> None:
        self.ai = ai
        self._jobs: dict[str, _Job] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def submit(
        self,
        tenant_id: str,
        model_type: str,
        training_data: TrainingData | Mapping[str, Any],
        *,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> JobView:
        """Check the request, then queue its training; the new job."""
        data = self.ai.check_training(model_type, training_data, parameters)
        self._collect()
        open_jobs = [
            j for j in self._jobs.values()
            if j.tenant == tenant_id and j.view.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        ]  # fmt: skip
        if len(open_jobs) >= MAX_OPEN_JOBS:
            raise BulkheadFull(
                f"a tenant has at most {MAX_OPEN_JOBS} training jobs queued or running",
                retry_after=5.0,
            )
        view = JobView(
            f"job_{secrets.token_urlsafe(12)}", model_type, name or model_type, JobStatus.QUEUED,
            0.0, "queued", datetime.now(UTC),
        )  # fmt: skip
        job = _Job(view, tenant_id)
        self._jobs[view.id] = job
        job.task = asyncio.create_task(
            self._run(job, data, dict(parameters or {}), actor), name=f"ai-train-{view.id}"
        )
        return view

    def job(self, tenant_id: str, job_id: str) -> JobView:
        """A job of ``tenant_id``; :class:`~tenantry.errors.NotFound` for any other id."""
        job = self._jobs.get(job_id)
        if job is None or job.tenant != tenant_id:
            raise NotFound(f"no training job {NotFound.excerpt(job_id)}")
        return job.view

    async def _run(
        self, job: _Job, data: Any, parameters: dict[str, Any], actor: str | None
    ) -> None:
        lock = self._locks.setdefault(job.tenant, asyncio.Lock())
        async with lock:
            job.view = replace(
                job.view, status=JobStatus.RUNNING, stage="starting", started_at=datetime.now(UTC)
            )

            def progress(fraction: float, stage: str) -> None:
                job.view = replace(job.view, progress=round(fraction, 3), stage=stage)

            try:
                result = await self.ai.train_model(
                    job.view.model_type, data, name=job.view.model_name, parameters=parameters,
                    tenant_id=job.tenant, actor=actor, progress=progress,
                )  # fmt: skip
            except TenantryError as exc:
                self._finish(job, JobStatus.FAILED, error=f"{exc.title}: {exc.detail}")
            except Exception:  # noqa: BLE001 - a job's failure is its own; logged, kept
                _log.exception("training failed", job=job.view.id, tenant=job.tenant)
                self._finish(job, JobStatus.FAILED, error="internal error")
            else:
                self._finish(job, JobStatus.SUCCEEDED, result=result)

    def _finish(
        self, job: _Job, status: JobStatus, *, result: TrainingResult | None = None,
        error: str | None = None,
    ) -> None:  # fmt: skip
        job.view = replace(
            job.view, status=status, finished_at=datetime.now(UTC), result=result, error=error,
            progress=1.0 if status is JobStatus.SUCCEEDED else job.view.progress,
            stage="done" if status is JobStatus.SUCCEEDED else "failed",
        )  # fmt: skip
        job.finished = time.monotonic()

    def _collect(self) -> None:
        now = time.monotonic()
        done = [j for j in self._jobs.values() if j.finished]
        for job in done:
            if now - job.finished > KEEP_FINISHED:
                self._jobs.pop(job.view.id, None)
        by_tenant: dict[str, list[_Job]] = {}
        for job in (j for j in self._jobs.values() if j.finished):
            by_tenant.setdefault(job.tenant, []).append(job)
        for jobs in by_tenant.values():
            for job in sorted(jobs, key=lambda j: j.finished)[:-MAX_KEPT_JOBS]:
                self._jobs.pop(job.view.id, None)

    async def wait(self, tenant_id: str, job_id: str) -> JobView:
        """The job once it has finished."""
        job = self._jobs.get(job_id)
        if job is None or job.tenant != tenant_id:
            raise NotFound(f"no training job {NotFound.excerpt(job_id)}")
        if job.task is not None:
            await asyncio.shield(job.task)
        return job.view

    async def close(self) -> None:
        """Cancel the jobs still queued or running."""
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
