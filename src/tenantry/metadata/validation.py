"""JSON Schema draft 2020-12: checking a submitted schema, compiling it, validating content.

The validator is ``jsonschema_rs`` (Rust), chosen by measurement against ``jsonschema`` and
``fastjsonschema`` (``benchmarks/bench_schema_validation.py``, ``docs/decisions.md``): it is the
fastest on valid content and, unlike ``fastjsonschema``, lists every violation of invalid content.

What a tenant submits is bounded and kept local:

- a schema is a JSON object of at most :data:`MAX_SCHEMA_BYTES` bytes of canonical JSON, nested at
  most :data:`MAX_SCHEMA_DEPTH` deep;
- every ``$ref`` and ``$dynamicRef`` is local (starts with ``#``), and the compiled validator has a
  retriever that refuses every URI: a schema never makes the server fetch anything;
- it must be valid against the 2020-12 metaschema; every problem is listed.

:func:`validate` raises :class:`~tenantry.errors.SchemaViolation` with every violation as an
:class:`~tenantry.errors.Issue`: ``loc`` the path into the content (for a missing required
property, the property's own path), ``msg``, and ``type`` the keyword that failed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import jsonschema_rs

from tenantry.errors import ContentTooLarge, InvalidInput, Issue, SchemaViolation

__all__ = [
    "DRAFT_2020_12",
    "MAX_ISSUES",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "CompiledSchema",
    "canonical_json",
    "check_schema",
    "compile_schema",
    "validate",
]

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
#: The largest schema a tenant may register: bytes of its canonical JSON.
MAX_SCHEMA_BYTES = 64 * 1024
#: The deepest nesting of objects and arrays in a schema.
MAX_SCHEMA_DEPTH = 32
#: The most issues one error lists (a huge invalid document must not make a huge answer).
MAX_ISSUES = 100
#: How many compiled schemas :func:`compile_schema` keeps (least recently used first out).
CACHE_SIZE = 512

#: Keywords whose values are data, not schemas: a ``$ref`` inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
_REF_KEYWORDS = ("$ref", "$dynamicRef")


def _refuse_retrieval(uri: str) -> Any:
    raise InvalidInput(f"remote references are not retrieved: {InvalidInput.excerpt(uri)}")


_META = jsonschema_rs.Draft202012Validator({"$ref": DRAFT_2020_12}, retriever=_refuse_retrieval)


def canonical_json(value: Any) -> str:
    """The canonical JSON of ``value``: sorted keys, no whitespace, no NaN (ValueError)."""
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
    )


def _keyword(error: jsonschema_rs.ValidationError) -> str:
    """The keyword that failed: the last name in the schema path (``properties.x.maximum``),
    else the error's kind (``false`` schemas have no keyword)."""
    path = error.schema_path
    if path and isinstance(path[-1], str) and (path[-1] in _KEYWORDS or len(path) == 1):
        return path[-1]
    name = type(error.kind).__name__
    return name[:1].lower() + name[1:]


_KEYWORDS = frozenset(
    {
        "$ref",
        "$dynamicRef",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "contains",
        "dependentRequired",
        "dependentSchemas",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "if",
        "items",
        "maxContains",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minContains",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "oneOf",
        "pattern",
        "patternProperties",
        "prefixItems",
        "propertyNames",
        "required",
        "type",
        "unevaluatedItems",
        "unevaluatedProperties",
        "uniqueItems",
    }
)


def _issue(error: jsonschema_rs.ValidationError, prefix: tuple[str | int, ...]) -> Issue:
    loc = (*prefix, *error.instance_path)
    missing = getattr(error.kind, "property", None)
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required) and isinstance(
        missing, str
    ):
        loc = (*loc, missing)
    return Issue(loc=loc, msg=error.message, type=_keyword(error))


def _issues_of(error: jsonschema_rs.ValidationError, prefix: tuple[str | int, ...]) -> list[Issue]:
    """One issue per unexpected property of an ``additionalProperties`` error (each at its own
    path), else the error's one."""
    unexpected = getattr(error.kind, "unexpected", None)
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) and (
        isinstance(unexpected, list) and unexpected
    ):
        at = (*prefix, *error.instance_path)
        return [
            Issue((*at, str(name)), f"property {name!r} is not allowed", "additionalProperties")
            for name in unexpected
        ]
    return [_issue(error, prefix)]


def _listed(errors: Any, prefix: tuple[str | int, ...]) -> list[Issue]:
    issues: list[Issue] = []
    for error in errors:
        issues.extend(_issues_of(error, prefix))
        if len(issues) >= MAX_ISSUES:
            return issues[:MAX_ISSUES]
    return issues


def _depth_and_refs(schema: Any) -> tuple[int, list[Issue]]:
    """How deep ``schema`` nests, and an issue for each reference that is not local."""
    deepest, issues = 0, []
    pending: list[tuple[Any, int, tuple[str | int, ...], bool]] = [(schema, 1, (), True)]
    while pending:
        node, depth, loc, is_schema = pending.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            continue  # the depth is reported; its insides need no look
        if isinstance(node, dict):
            for key, value in node.items():
                remote = isinstance(value, str) and not value.startswith("#")
                if is_schema and key in _REF_KEYWORDS and remote:
                    issues.append(
                        Issue(
                            (*loc, key),
                            f"only local references (starting with '#') are allowed, not "
                            f"{InvalidInput.excerpt(value)}",
                            "ref",
                        )
                    )
                data = is_schema and key in _DATA_KEYWORDS
                pending.append((value, depth + 1, (*loc, key), is_schema and not data))
        elif isinstance(node, list):
            pending.extend((item, depth + 1, (*loc, i), is_schema) for i, item in enumerate(node))
    return deepest, issues


def check_schema(schema: object) -> dict[str, Any]:
    """``schema`` if a tenant may register it: a JSON object within the bounds, with local
    references only, valid against the draft 2020-12 metaschema, that compiles. Else
    :class:`InvalidInput` listing every problem (:class:`ContentTooLarge` for the size)."""
    if not isinstance(schema, dict):
        raise InvalidInput("a schema is a JSON object")
    try:
        size = len(canonical_json(schema).encode())
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput(
            "the schema is not JSON (or nested too deep; NaN and Infinity are not JSON)"
        ) from None
    if size > MAX_SCHEMA_BYTES:
        raise ContentTooLarge(
            f"the schema is {size} bytes of JSON; a schema holds at most {MAX_SCHEMA_BYTES}"
        )
    depth, issues = _depth_and_refs(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidInput(
            f"the schema nests more than {MAX_SCHEMA_DEPTH} levels deep (objects and arrays)"
        )
    declared = schema.get("$schema", DRAFT_2020_12)
    if declared != DRAFT_2020_12:
        issues.append(
            Issue(("$schema",), f"only JSON Schema draft 2020-12 ({DRAFT_2020_12})", "$schema")
        )
    if issues:
        raise InvalidInput("the schema is not allowed", issues=issues)
    issues = _listed(_META.iter_errors(schema), ())
    if issues:
        raise InvalidInput("the schema is not a valid JSON Schema (draft 2020-12)", issues=issues)
    compile_schema(schema)
    return schema


class CompiledSchema:
    """A compiled schema: :meth:`validate` lists every violation, :meth:`is_valid` is the quick
    yes or no. Thread-safe; share one per schema version (versions never change)."""

    __slots__ = ("_validator",)

    def __init__(self, schema: dict[str, Any]) -> None:
        try:
            self._validator = jsonschema_rs.Draft202012Validator(
                schema, retriever=_refuse_retrieval, validate_formats=False
            )
        except jsonschema_rs.ValidationError as exc:
            raise InvalidInput(
                f"the schema does not compile: {InvalidInput.excerpt(exc.message, 200)}"
            ) from None
        except ValueError as exc:  # a bad regular expression, a reference to nothing
            raise InvalidInput(
                f"the schema does not compile: {InvalidInput.excerpt(str(exc), 200)}"
            ) from None

    def is_valid(self, content: Any) -> bool:
        return self._validator.is_valid(content)

    def issues(self, content: Any, prefix: tuple[str | int, ...] = ()) -> list[Issue]:
        """Every violation of ``content`` (at most :data:`MAX_ISSUES`), ``loc`` after ``prefix``."""
        return _listed(self._validator.iter_errors(content), prefix)

    def validate(self, content: Any, prefix: tuple[str | int, ...] = ()) -> None:
        """Nothing if ``content`` is valid; else :class:`SchemaViolation` with every violation."""
        if self._validator.is_valid(content):
            return
        issues = self.issues(content, prefix)
        count = len(issues)
        more = "+" if count == MAX_ISSUES else ""
        raise SchemaViolation(
            f"the content does not match its schema ({count}{more} "
            f"violation{'s' if count != 1 else ''})",
            issues=issues,
        )


class _Compiled:
    """A bounded least-recently-used cache of compiled schemas, by canonical JSON."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, CompiledSchema] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, schema: dict[str, Any]) -> CompiledSchema:
        key = canonical_json(schema)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        compiled = CompiledSchema(schema)
        with self._lock:
            self._items[key] = compiled
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return compiled


_cache = _Compiled(CACHE_SIZE)


def compile_schema(schema: dict[str, Any]) -> CompiledSchema:
    """The compiled ``schema`` (cached; at most ``CACHE_SIZE`` schemas are kept)."""
    return _cache.get(schema)


def validate(content: Any, schema: dict[str, Any]) -> None:
    """Nothing if ``content`` matches ``schema``; else :class:`SchemaViolation` listing every
    violation (``loc``: the path into the content; ``type``: the failing keyword)."""
    compile_schema(schema).validate(content)
