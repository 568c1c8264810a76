"""Spans of tenantry's work, when the service traces (``TENANTRY_TRACING``, off by default).

Every layer that makes a span imports this module, so it sits low and imports nothing of
tenantry's but the current tenant, and nothing of OpenTelemetry's but its API. The tracer is a
contextvar, not a process-wide provider: the app's lifespan sets it for the background work it
starts, its middleware for each request (``tenantry.api.tracing``), so two apps in one process
trace apart and a library caller who never set one pays one contextvar read a call.

What a span holds is chosen here: the tenant (``tenantry.tenant_id``), the operation's name and
an error's type, never a credential, an argument's value or an exception's message (a database
error quotes the row it refused).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar, Token
from typing import Any, ParamSpec, TypeVar

from opentelemetry.trace import Span, Status, StatusCode, Tracer, use_span

from tenantry.context import TENANT_ID_PATTERN, current_tenant

__all__ = [
    "TENANT_ATTRIBUTE",
    "current_tracer",
    "end_span",
    "reset_tracer",
    "start_span",
    "traced",
    "use_tracer",
]

#: The attribute that names the tenant a span's work was for.
TENANT_ATTRIBUTE = "tenantry.tenant_id"

_P = ParamSpec("_P")
_R = TypeVar("_R")

_tracer: ContextVar[Tracer | None] = ContextVar("tenantry_tracer", default=None)
_TENANT = re.compile(TENANT_ID_PATTERN)


def current_tracer() -> Tracer | None:
    """The tracer of the running code (None: nothing is traced)."""
    return _tracer.get()


def use_tracer(tracer: Tracer | None) -> Token[Tracer | None]:
    """Trace the running code (and the tasks it starts) with ``tracer``; undo with
    :func:`reset_tracer`."""
    return _tracer.set(tracer)


def reset_tracer(token: Token[Tracer | None]) -> None:
    _tracer.reset(token)


def start_span(
    name: str, tenant_id: str | None = None, attributes: Mapping[str, str | bool] | None = None
) -> Span | None:
    """A span as a child of the current one, not made current (None when nothing is traced).
    For the hot paths that open and end in two methods (a transaction); end it with
    :func:`end_span`. Its tenant is ``tenant_id``, else the current tenant."""
    tracer = _tracer.get()
    if tracer is None:
        return None
    tenant = tenant_id if tenant_id is not None else current_tenant()
    given = dict(attributes) if attributes else {}
    if tenant is not None:
        given[TENANT_ATTRIBUTE] = tenant
    return tracer.start_span(name, attributes=given)


def end_span(span: Span | None, error: BaseException | None = None) -> None:
    """End ``span``; with ``error``, its status says so (its type only, see above)."""
    if span is None:
        return
    if error is not None:
        _failed(span, error)
    span.end()


def _failed(span: Span, error: BaseException) -> None:
    kind = type(error)
    span.set_attribute("error.type", f"{kind.__module__}.{kind.__qualname__}")
    span.set_status(Status(StatusCode.ERROR, kind.__name__))


def traced(
    name: str,
) -> Callable[[Callable[_P, Coroutine[Any, Any, _R]]], Callable[_P, Coroutine[Any, Any, _R]]]:
    """A span ``name`` around each call of the decorated coroutine function, current while it
    runs (the transactions and calls it makes are its children). Its tenant is the argument
    ``tenant_id`` when the function takes one, else the current tenant."""

    def decorate(
        function: Callable[_P, Coroutine[Any, Any, _R]],
    ) -> Callable[_P, Coroutine[Any, Any, _R]]:
        parameters = list(inspect.signature(function).parameters)
        position = parameters.index("tenant_id") if "tenant_id" in parameters else None

        @functools.wraps(function)
        async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            tracer = _tracer.get()
            if tracer is None:
                return await function(*args, **kwargs)
            tenant: object = None
            if position is not None:
                tenant = args[position] if position < len(args) else kwargs.get("tenant_id")
            if not isinstance(tenant, str) or _TENANT.fullmatch(tenant) is None:
                tenant = current_tenant()  # an argument not checked yet is not written down
            span = tracer.start_span(
                name, attributes={TENANT_ATTRIBUTE: tenant} if tenant is not None else None
            )
            with use_span(
                span, end_on_exit=True, record_exception=False, set_status_on_exception=False
            ):
                try:
                    return await function(*args, **kwargs)
                except BaseException as exc:
                    _failed(span, exc)
                    raise

        return wrapper

    return decorate
