"""Alert templates: checked and rendered from strings, in the message's locale and the tenant's
time zone, within :class:`~tenantry.alerts.sandbox.RenderLimits` (the sandbox, its escaping and
its budget are :mod:`tenantry.alerts.sandbox`'s).

The context is copied to plain data first (dicts, lists, strings, numbers, booleans, times;
within counts, depth and text caps), so no application object reaches a template. Errors are
:class:`~tenantry.errors.TemplateError` with the template's line when known, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from jinja2 import Template, UndefinedError
from jinja2.exceptions import SecurityError

from tenantry.alerts.formatting import Formatter
from tenantry.alerts.sandbox import Budget, RenderLimits, compile_template, spending
from tenantry.errors import ContentTooLarge, InvalidInput, TemplateError, TenantryError

__all__ = ["TemplateRenderer"]


def _line(error: BaseException) -> int | None:
    """The template line an error was raised on (Jinja2 rewrites tracebacks to name it)."""
    found = [
        line
        for frame, line in traceback.walk_tb(error.__traceback__)
        if frame.f_code.co_filename == "<template>"
    ]
    return found[-1] if found else None


_PLAIN = (str, int, float, Decimal, bool, dt.datetime, dt.date, dt.time, dt.timedelta)


@dataclass(slots=True)
class _Copier:
    limits: RenderLimits
    items: int = 0
    chars: int = 0

    def copy(self, value: object, where: str, depth: int = 0) -> object:
        """``value`` as plain data (dicts, lists, strings, numbers, times), within the caps."""
        self.items += 1
        if self.items > self.limits.max_context_items or depth > self.limits.max_context_depth:
            raise InvalidInput(f"the template context is too large or too deep (at {where})")
        if value is None or isinstance(value, _PLAIN):
            if isinstance(value, str):
                self.chars += len(value)
                if self.chars > self.limits.max_context_chars:
                    raise ContentTooLarge("the template context holds too much text")
                return str.__str__(value)  # a str subclass (an enum) as a plain str
            return value
        if isinstance(value, Mapping):
            copied: dict[str, object] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidInput(f"the template context has a non-string key at {where}")
                copied[str.__str__(key)] = self.copy(item, f"{where}.{key}", depth + 1)
            return copied
        if isinstance(value, list | tuple):
            return [self.copy(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        raise InvalidInput(
            f"the template context holds a {type(value).__name__} at {where}: "
            "use strings, numbers, booleans, times, lists and dicts"
        )


class TemplateRenderer:
    """Checks and renders alert templates under :class:`RenderLimits`."""

    def __init__(self, limits: RenderLimits | None = None) -> None:
        self.limits = limits or RenderLimits()

    def check(self, source: str) -> None:
        """Raise :class:`TemplateError` (or :class:`ContentTooLarge`) unless ``source`` compiles."""
        self._template(source)

    def _template(self, source: str) -> Template:
        if not isinstance(source, str):
            raise TemplateError("a template is a string")
        if len(source) > self.limits.max_source_chars:
            most = self.limits.max_source_chars
            raise ContentTooLarge(f"the template has {len(source)} characters (at most {most})")
        return compile_template(source)

    def render(
        self,
        source: str,
        context: Mapping[str, object],
        *,
        locale: str = "en",
        time_zone: str = "UTC",
    ) -> str:
        """``source`` rendered with ``context`` in ``locale`` and ``time_zone``, mrkdwn-escaped."""
        template = self._template(source)
        formatter = Formatter.for_locale(locale, time_zone)
        values = _Copier(self.limits).copy(dict(context), "context")
        budget = Budget(self.limits, formatter, time.monotonic() + self.limits.max_seconds)
        chunks = cast(Generator[str, None, None], template.generate(cast(dict[str, Any], values)))
        output: list[str] = []
        size = 0
        try:
            with spending(budget):
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.limits.max_output_chars:
                        most = self.limits.max_output_chars
                        raise TemplateError(f"the template's output exceeds {most} characters")
                    budget.tick()
                    output.append(chunk)
        except TenantryError as error:
            raise TemplateError(_located(error.detail, _line(error))) from None
        except Exception as error:  # noqa: BLE001 (a template can raise what any builtin raises)
            raise TemplateError(_located(_describe(error), _line(error))) from None
        finally:
            chunks.close()
        return "".join(output)


def _located(detail: str, line: int | None) -> str:
    return detail if line is None or detail.startswith("line ") else f"line {line}: {detail}"


_MAX_MESSAGE = 300
_KINDS = {SecurityError: "refused", UndefinedError: "undefined"}


def _describe(error: Exception) -> str:
    """One line about ``error``: its kind and message, cut short; never a traceback."""
    text = " ".join(str(error).split())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "…"
    kind = next((name for cls, name in _KINDS.items() if isinstance(error, cls)), None)
    return f"{kind or type(error).__name__}: {text}"
