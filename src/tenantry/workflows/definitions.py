"""Workflow definitions as code, and the registry that names them so they can be started as data.

A :class:`WorkflowDefinition` is a name and its :class:`Step` list. A step has an ``action`` (an
async function of a :class:`StepContext`, returning what the next steps read: JSON), an optional
``compensation`` (an async function that undoes the action, given the same context with the
action's output), a :class:`RetryPolicy` and a ``timeout``.

A step is *transactional* when its effect is a write to tenantry's database: the engine opens
the tenant's transaction, runs the action in it (``ctx.connection``; a manager called inside it
joins it) and writes the step's checkpoint in the same transaction, so the effect and the
checkpoint commit together or not at all: exactly one effect, whatever crashes. Any other step
runs outside a transaction and may run again after a crash or a timeout (at least once); it gets
``ctx.idempotency_key``, the same on every attempt of that step of that workflow, to hand to the
service it calls so that a repeat has one effect.

:class:`WorkflowRegistry` maps names to definitions. ``create_workflow`` over HTTP names a
registered definition and gives its input as JSON; every worker process must register the same
definitions (``tenantry worker --definitions my.module`` imports a module that registers them).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.context import PLATFORM_TENANT
from tenantry.errors import ConfigError, InvalidInput, NotFound, PermissionDenied

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_STEPS",
    "CompensationStrategy",
    "RetryPolicy",
    "Step",
    "StepAction",
    "StepContext",
    "StepFailed",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "check_json",
    "default_registry",
]

#: The largest input, step output or result a workflow may carry (its JSON, in bytes).
MAX_JSON_BYTES: Final = 64 * 1024
MAX_STEPS: Final = 64
_NAME: Final = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class CompensationStrategy(StrEnum):
    """What happens to the completed steps when a step fails for good (or on cancellation).

    ``automatic``: they are compensated in reverse order, then the workflow is ``compensated``
    (``cancelled`` after a cancellation). ``manual``: the workflow is ``parked`` for an
    operator, who resumes or compensates it. ``none``: it ends ``failed`` (``cancelled``) as it
    is.
    """

    AUTOMATIC = "automatic"
    MANUAL = "manual"
    NONE = "none"


class StepFailed(Exception):
    """Raised by a step to fail with a message the workflow's history keeps (any other
    exception fails it too, recorded by its type alone)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts of one step: ``max_attempts`` in all, waiting ``initial`` seconds after the
    first failure, times ``multiplier`` after each next one, at most ``max_delay``, each wait
    drawn between half and all of it (jitter, so retries of many workflows spread out)."""

    max_attempts: int = 3
    initial: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 100:
            raise ConfigError("max_attempts is from 1 to 100")
        if not (0 <= self.initial <= self.max_delay and self.multiplier >= 1):
            raise ConfigError("a retry waits 0 <= initial <= max_delay, with multiplier >= 1")

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure (from 1)."""
        base = min(self.max_delay, self.initial * self.multiplier ** max(0, failed_attempts - 1))
        return base * (0.5 + 0.5 * (rng or random).random())


@dataclass(slots=True)
class StepContext:
    """What a step's action (or compensation) is given.

    ``input`` is the workflow's input; ``outputs`` the outputs of the steps completed before
    (by step name); ``output`` the action's own output when compensating. ``connection`` is the
    tenant's open transaction of a transactional step (None for the others).
    """

    tenant_id: str
    workflow_id: str
    step: str
    compensating: bool
    attempt: int
    idempotency_key: str
    input: Mapping[str, Any]
    outputs: Mapping[str, Any]
    output: Any = None
    connection: AsyncConnection | None = None
    services: Mapping[str, Any] = field(default_factory=dict)

    def service(self, name: str) -> Any:
        """A service the worker was given (the app gives its managers: ``metadata``,
        ``alerts``...); :class:`~tenantry.errors.ConfigError` if it has none of that name."""
        try:
            return self.services[name]
        except KeyError:
            raise ConfigError(f"this worker has no service {name!r} for steps") from None


StepAction = Callable[[StepContext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    action: StepAction
    compensation: StepAction | None = None
    retry: RetryPolicy = RetryPolicy()
    timeout: float = 60.0
    transactional: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"a step name is [a-z][a-z0-9_.-]{{0,63}}, not {self.name!r}")
        if not 0 < self.timeout <= 24 * 3600:
            raise ConfigError("a step's timeout is more than 0 and at most a day (seconds)")


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    """A named sequence of steps; ``input_model`` (pydantic) checks the input when given.

    ``platform_only``: a saga of it is the platform's alone (its steps act on other tenants, as
    provisioning does): started for any other tenant it is refused, and a worker fails such a
    saga found under another tenant without running a step."""

    name: str
    steps: tuple[Step, ...]
    input_model: type[BaseModel] | None = None
    description: str = ""
    platform_only: bool = False

    def check_owner(self, tenant_id: str) -> None:
        """:class:`~tenantry.errors.PermissionDenied` when ``tenant_id`` may not run it."""
        if self.platform_only and tenant_id != PLATFORM_TENANT:
            raise PermissionDenied(f"workflow {self.name!r} is the platform's alone")

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"a workflow name is [a-z][a-z0-9_.-]{{0,63}}, not {self.name!r}")
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise ConfigError(f"a workflow has 1 to {MAX_STEPS} steps")
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ConfigError(f"the steps of {self.name!r} need distinct names")

    def check_input(self, data: object) -> dict[str, Any]:
        """``data`` as the workflow stores it: JSON within :data:`MAX_JSON_BYTES`, checked by
        ``input_model`` (its errors are an :class:`~tenantry.errors.InvalidInput`)."""
        if not isinstance(data, Mapping):
            raise InvalidInput("a workflow's input is a JSON object")
        checked = dict(data)
        if self.input_model is not None:
            try:
                checked = self.input_model.model_validate(checked).model_dump(mode="json")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "input"
                raise InvalidInput(f"input of {self.name!r}: {where}: {first['msg']}") from None
        check_json(checked, "a workflow's input")
        return checked


def check_json(value: object, what: str) -> str:
    """``value`` as JSON text, refused (:class:`~tenantry.errors.InvalidInput`) when it is not
    JSON or is larger than :data:`MAX_JSON_BYTES`."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be JSON (objects, lists, strings, numbers)") from None
    if len(text.encode()) > MAX_JSON_BYTES:
        raise InvalidInput(f"{what} is larger than {MAX_JSON_BYTES // 1024} KiB of JSON")
    return text


class WorkflowRegistry:
    """Definitions by name, for starting workflows as data and for the workers that run them."""

    def __init__(self, definitions: Sequence[WorkflowDefinition] = ()) -> None:
        self._definitions: dict[str, WorkflowDefinition] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        """Register ``definition`` (again: the same object is a no-op; another one of the
        same name is a :class:`~tenantry.errors.ConfigError`)."""
        known = self._definitions.get(definition.name)
        if known is not None and known is not definition:
            raise ConfigError(f"another workflow definition is registered as {definition.name!r}")
        self._definitions[definition.name] = definition
        return definition

    def get(self, name: str) -> WorkflowDefinition:
        try:
            return self._definitions[name]
        except (KeyError, TypeError):
            raise NotFound(f"no workflow definition {InvalidInput.excerpt(name)}") from None

    def find(self, name: str) -> WorkflowDefinition | None:
        return self._definitions.get(name)

    def names(self) -> list[str]:
        return sorted(self._definitions)


_default = WorkflowRegistry()


def default_registry() -> WorkflowRegistry:
    """The process's registry: what ``register`` calls without a registry add to, and what the
    service and ``tenantry worker`` use."""
    return _default
