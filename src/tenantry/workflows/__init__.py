"""Durable workflows: sagas with compensation on PostgreSQL, run by any number of workers.

See docs/workflows.md. :class:`WorkflowManager` starts and reads a tenant's sagas;
:class:`WorkflowWorker` runs them (the service runs one; ``tenantry worker`` runs more);
:class:`WorkflowEngine` is what a worker runs each saga with.
"""

from tenantry.workflows.definitions import (
    MAX_JSON_BYTES,
    CompensationStrategy,
    RetryPolicy,
    Step,
    StepContext,
    StepFailed,
    WorkflowDefinition,
    WorkflowRegistry,
    default_registry,
)
from tenantry.workflows.engine import WorkflowEngine
from tenantry.workflows.manager import (
    MAX_OPEN_WORKFLOWS,
    StepView,
    WorkflowManager,
    WorkflowView,
)
from tenantry.workflows.worker import DEFAULT_CAPS, WorkflowWorker

__all__ = [
    "DEFAULT_CAPS",
    "MAX_JSON_BYTES",
    "MAX_OPEN_WORKFLOWS",
    "CompensationStrategy",
    "RetryPolicy",
    "Step",
    "StepContext",
    "StepFailed",
    "StepView",
    "WorkflowDefinition",
    "WorkflowEngine",
    "WorkflowManager",
    "WorkflowRegistry",
    "WorkflowView",
    "WorkflowWorker",
    "default_registry",
]
