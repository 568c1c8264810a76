"""The sandbox alert templates run in: Jinja2's immutable sandbox, every value escaped for
Slack mrkdwn, every cost counted against a budget.

- **Escaping.** Every ``{{ value }}`` is escaped for mrkdwn (``&`` ``<`` ``>``, what Slack
  requires) by the environment's ``finalize`` hook, so no value can become ``<!channel>``, a
  ``<@U…>`` mention or a ``<url|link>``; only the template's own literal text can. Blocks that
  would capture already escaped output (``macro``, ``call``, ``filter``, ``{% set %}…{% endset
  %}``) are refused, so nothing is escaped twice.
- **Sandbox.** :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, no loader (no
  ``include``, ``import``, ``extends``), strict undefined (a typo is an error, ``| default``
  makes a value optional), no ``lipsum``, ``cycler``, ``joiner`` or ``namespace``; an unsafe
  attribute raises at once; methods of values are limited to a few that cannot grow a value
  (``upper``, ``split``, ``get``…); ``str.format`` and ``%`` formatting are refused (the
  formatting filters do that work).
- **Budget** (:class:`RenderLimits`, :class:`Budget`): render time, checked on every loop
  iteration, call, attribute, item, operator and filter (the parsed template is rewritten so
  that every ``for`` and ``~`` goes through a guard); loop iterations and ``range`` length; the
  size of every string or list a template builds, checked before the costly operators
  (``*``, ``+``, ``~``, ``join``, ``replace``) build it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes, pass_context
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from tenantry.alerts.formatting import Formatter
from tenantry.errors import TemplateError

__all__ = ["Budget", "RenderLimits", "compile_template", "escape_mrkdwn", "spending"]


def escape_mrkdwn(text: str) -> str:
    """``text`` with Slack's three control characters escaped (``&amp;``, ``&lt;``, ``&gt;``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """What one template may cost."""

    max_source_chars: int = 20_000
    max_output_chars: int = 12_000  # also the longest string a template may build
    #: The largest list, tuple or dict a template may build, weighed as every string's
    #: characters and every other value as one, nested ones included (``[a, a, a]`` weighs 3 a).
    max_built_weight: int = 50_000
    max_seconds: float = 0.25
    max_iterations: int = 10_000  # loop iterations in one render, all loops together
    max_range: int = 1_000
    max_context_items: int = 10_000  # values in the context, nested ones counted
    max_context_chars: int = 200_000
    max_context_depth: int = 12


# Jinja2's filters that neither reach attributes by name nor build unbounded output (``replace``
# and ``join`` are replaced by checked versions; ``center``, ``indent``, ``wordwrap``,
# ``format``, ``slice``, ``batch`` take sizes; ``attr`` names attributes; ``e``, ``safe``,
# ``urlize``, ``xmlattr``, ``tojson``, ``striptags`` are HTML's; ``random``, ``pprint`` pointless).
_JINJA_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
    "items", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
    "reverse", "round", "select", "selectattr", "sort", "string", "sum", "title", "trim",
    "truncate", "unique", "upper", "urlencode", "wordcount",
)  # fmt: skip
# Methods a template may call on a value: none makes a string or list longer than its input.
_SAFE_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "get", "isalnum", "isalpha",
        "isdigit", "isoformat", "islower", "isspace", "isupper", "items", "keys", "lower",
        "lstrip", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "title",
        "upper", "values",
    }
)  # fmt: skip
# Template constructs refused (and why, for the message).
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends (templates come from strings only)",
    nodes.Include: "include (templates come from strings only)",
    nodes.Import: "import (templates come from strings only)",
    nodes.FromImport: "import (templates come from strings only)",
    nodes.Macro: "macro",
    nodes.CallBlock: "call blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.AssignBlock: "block assignments ({% set %}...{% endset %})",
    nodes.ScopedEvalContextModifier: "autoescape blocks",
    nodes.EvalContextModifier: "autoescape blocks",
}
_MAX_INT_BITS = 1024
_MAX_EXPONENT = 64
_LOOP = "_tenantry_loop"
_CONCAT = "_tenantry_concat"
_BUILT = "_tenantry_built"


@dataclass(slots=True)
class Budget:
    """One render's caps, formatter, deadline and iterations so far."""

    limits: RenderLimits
    formatter: Formatter
    deadline: float
    iterations: int = field(default=0)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateError(f"the template took longer than {self.limits.max_seconds} s")

    def size(self, value: object) -> object:
        """``value``, unless it is a string longer than the output cap or a container heavier
        than :attr:`RenderLimits.max_built_weight`."""
        if isinstance(value, str) and len(value) > self.limits.max_output_chars:
            raise TemplateError(
                f"the template built a string of {len(value)} characters "
                f"(at most {self.limits.max_output_chars})"
            )
        if isinstance(value, _CONTAINERS):
            self.weigh(value)
        return value

    def weigh(self, value: object, times: int = 1) -> int:
        """The weight of ``value`` repeated ``times``; :class:`TemplateError` above the cap."""
        most = self.limits.max_built_weight
        weight = _weight(value, most // max(times, 1) + 1) * max(times, 0)
        if weight > most:
            raise TemplateError(f"the template built a list or dict heavier than {most}")
        return weight


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _weight(value: object, limit: int) -> int:
    """Characters of the strings in ``value``, about the digits of its integers, one for every
    other value; nested values counted each time they appear; the walk stops past ``limit``."""
    weight, stack = 0, [value]
    while stack and weight <= limit:
        item = stack.pop()
        if isinstance(item, str):
            weight += len(item)
        elif isinstance(item, int):
            weight += item.bit_length() // 3 + 1  # about its decimal digits
        elif isinstance(item, dict):
            weight += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            weight += 1
            stack.extend(item)
        else:
            weight += 1
    return weight


_budget: ContextVar[Budget | None] = ContextVar("tenantry_alert_budget", default=None)


@contextmanager
def spending(budget: Budget) -> Iterator[Budget]:
    """Run the templates rendered inside the block against ``budget``."""
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _current() -> Budget:
    state = _budget.get()
    if state is None:
        raise TemplateError("alert template filters run only inside TemplateRenderer.render")
    return state


class _SlackSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with every hook it offers checking the render's budget."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return not callable(value) or attr in _SAFE_METHODS

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # refused at once, not as an undefined that a list's repr or ``default`` would swallow
        kind = type(obj).__name__
        raise SecurityError(f"access to attribute {attribute!r} of a {kind!r} object is unsafe")

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format and format_map are refused by is_safe_attribute, not wrapped

    def getattr(self, obj: Any, attribute: str) -> Any:
        _current().tick()
        if isinstance(obj, dict) and attribute in obj and attribute not in _SAFE_METHODS:
            return obj[attribute]  # a label named "update" or "copy" is data, not a refused method
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _current().tick()
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        state = _current()
        state.tick()
        return state.size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        state = _current()
        state.tick()
        for operand in (left, right):
            if isinstance(operand, int) and operand.bit_length() > _MAX_INT_BITS:
                raise TemplateError(f"the template computed a number above 2**{_MAX_INT_BITS}")
        if operator == "%" and isinstance(left, str):
            raise TemplateError("% formatting is not available: use the formatting filters")
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise TemplateError(f"the template raised a number to more than {_MAX_EXPONENT}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str) and isinstance(times, int):
                    if len(seq) * times > state.limits.max_output_chars:
                        raise TemplateError("the template repeated a value beyond the output cap")
                elif isinstance(seq, list | tuple) and isinstance(times, int):
                    state.weigh(seq, times)
        joined = isinstance(left, str | list | tuple) and isinstance(right, type(left))
        if operator == "+" and joined:
            if isinstance(left, str) and len(left) + len(right) > state.limits.max_output_chars:
                raise TemplateError("the template joined values beyond the output cap")
            if not isinstance(left, str):
                state.weigh([left, right])
        return state.size(super().call_binop(context, operator, left, right))


def _guarded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a filter that checks the budget and the size of its result (the filters
    kept take no size argument that could grow their output)."""
    passes = getattr(getattr(function, "jinja_pass_arg", None), "name", None)

    @pass_context
    def guarded(context: Context, *args: Any, **kwargs: Any) -> Any:
        state = _current()
        state.tick()
        if passes == "context":
            args = (context, *args)
        elif passes == "eval_context":
            args = (context.eval_ctx, *args)
        elif passes == "environment":
            args = (context.environment, *args)
        return state.size(function(*args, **kwargs))

    guarded.__name__ = name
    return guarded


def _loop(value: Iterable[Any]) -> Iterator[Any]:
    """A ``for`` loop's iterable, counted against the render's iterations and time."""
    state = _current()
    for item in value:
        state.iterations += 1
        if state.iterations > state.limits.max_iterations:
            raise TemplateError(
                f"the template looped more than {state.limits.max_iterations} times"
            )
        state.tick()
        yield item


def _concat(parts: list[Any]) -> str:
    """``a ~ b``: the strings joined, if the result fits the output cap."""
    state = _current()
    state.weigh([part for part in parts if isinstance(part, _CONTAINERS)])
    texts = [str(part) for part in parts]
    if sum(map(len, texts)) > state.limits.max_output_chars:
        raise TemplateError("the template joined values beyond the output cap")
    return "".join(texts)


def _built(value: object) -> object:
    """A list, tuple or dict literal, if it weighs within the cap (``_guarded`` checks)."""
    return value


def _join(value: Iterable[Any], separator: str = "") -> str:
    state = _current()
    items = list(value)
    state.weigh(items)
    texts = [str(item) for item in items]
    if sum(map(len, texts)) + len(separator) * len(texts) > state.limits.max_output_chars:
        raise TemplateError("the template joined values beyond the output cap")
    return str(separator).join(texts)


def _replace(value: object, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if count is None else min(count, text.count(old))
    if len(text) + hits * max(0, len(new) - len(old)) > _current().limits.max_output_chars:
        raise TemplateError("the template replaced text beyond the output cap")
    return text.replace(old, new) if count is None else text.replace(old, new, count)


def _range(*args: int) -> range:
    state = _current()
    numbers = range(*args)
    if len(numbers) > state.limits.max_range:
        raise TemplateError(f"range() of {len(numbers)} numbers (at most {state.limits.max_range})")
    return numbers


def _formatter_filter(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _current().formatter.filters()[name](*args, **kwargs)

    return call


def _finalize(value: object) -> str:
    return "" if value is None else escape_mrkdwn(str(value))


def _environment() -> _SlackSandbox:
    env = _SlackSandbox(undefined=StrictUndefined, finalize=_finalize, autoescape=False)
    filters: dict[str, Callable[..., Any]] = {
        name: FILTERS[name] for name in _JINJA_FILTERS if name in FILTERS
    }
    filters |= {"join": _join, "replace": _replace, _CONCAT: _concat, _LOOP: _loop}
    filters |= {_BUILT: _built}
    filters |= {name: _formatter_filter(name) for name in Formatter.for_locale("en").filters()}
    env.filters = {name: _guarded(name, function) for name, function in filters.items()}
    env.globals = {"range": _range, "dict": dict}
    return env


_ENV = _environment()


def _through(guard: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, guard, [], [], None, None, lineno=node.lineno)


class _Guards(NodeTransformer):
    """Refuses the constructs of :data:`_REFUSED`; routes every ``for`` loop, ``~`` and list,
    tuple or dict literal through its guard filter."""

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        for kind, what in _REFUSED.items():
            if isinstance(node, kind):
                raise TemplateError(f"line {node.lineno}: {what} cannot be used in alert templates")
        return super().generic_visit(node, *args, **kwargs)

    def visit_For(self, node: nodes.For) -> nodes.For:
        if node.recursive:
            raise TemplateError(f"line {node.lineno}: recursive loops cannot be used")
        self.generic_visit(node)
        node.iter = _through(_LOOP, cast(nodes.Expr, node.iter))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Concat:
        self.generic_visit(node)
        node.nodes = [_through(_CONCAT, nodes.List(node.nodes, lineno=node.lineno))]
        return node

    def _built(self, node: nodes.Expr) -> nodes.Expr:
        self.generic_visit(node)
        return _through(_BUILT, node)

    def visit_List(self, node: nodes.List) -> nodes.Expr:
        return self._built(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Expr:
        return self._built(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Expr:
        return self._built(node) if node.ctx == "load" else self.generic_visit(node)


def _rewrite(tree: nodes.Template) -> nodes.Template:
    rewritten: nodes.Template = _Guards().visit(tree)
    return rewritten


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """``source`` parsed, checked, rewritten and compiled (cached), or :class:`TemplateError`."""
    try:
        return _ENV.from_string(_rewrite(_ENV.parse(source)))
    except TemplateSyntaxError as error:
        raise TemplateError(f"line {error.lineno}: {error.message}") from None
    except (RecursionError, SyntaxError):  # Python's own limits on nesting
        raise TemplateError("the template nests expressions or blocks too deeply") from None
