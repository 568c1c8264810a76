"""The service's workflows: the manager its routes use, and the worker it runs in-process.

The worker (unless ``TENANTRY_WORKFLOW_WORKER`` is off) runs sagas of every tenant with the
process's registry: ``release_track`` and what the modules of ``TENANTRY_WORKFLOW_DEFINITIONS``
register. Its steps find the service's ``metadata`` and ``notifier`` managers. It stops before
the database is disposed, giving back the leases of the sagas in flight.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

from tenantry.config import Settings
from tenantry.db.changes import ChangeLog
from tenantry.db.engine import Database
from tenantry.errors import ConfigError
from tenantry.lifecycle import policies
from tenantry.lifecycle import provisioning as _provisioning  # noqa: F401 - its saga
from tenantry.workflows import WorkflowManager, WorkflowWorker, default_registry
from tenantry.workflows import release as _release  # noqa: F401 - registers release_track

__all__ = ["import_definitions", "start_workflows", "workflow_caps"]


def workflow_caps(settings: Settings) -> dict[str, int]:
    """Each tier's ``workflow_concurrency`` (a wrong policy file stops the service here)."""
    return {t.value: p.workflow_concurrency for t, p in policies(settings.tier_policies).items()}


def import_definitions(modules: Sequence[str]) -> None:
    """Import each module of ``modules`` (each registers its workflow definitions)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"cannot import workflow definitions from {module!r}: {exc}") from exc


async def start_workflows(
    stack: AsyncExitStack,
    database: Database,
    trail: ChangeLog,
    settings: Settings,
    services: Mapping[str, Any],
) -> tuple[WorkflowManager, WorkflowWorker | None]:
    import_definitions(settings.workflow_definitions)
    manager = WorkflowManager(database, audit=trail)
    if not settings.workflow_worker:
        return manager, None
    worker = WorkflowWorker(
        database,
        default_registry(),
        caps=workflow_caps(settings),
        concurrency=settings.workflow_concurrency,
        lease=settings.workflow_lease,
        services=services,
        audit=trail,
    )
    await worker.start()
    stack.push_async_callback(worker.close)
    manager.on_created(worker.wake)
    return manager, worker
