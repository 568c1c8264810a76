"""Evolution of content between versions of its schema: renames and defaults. Pure: no I/O.

:func:`upgrade` moves a document written with one version of a schema to another: a property
renamed through an ``aliases`` annotation (``"name": {"aliases": ["title"]}``, declared by either
version) gets its new name, and a property the target version declares with a ``default`` is
filled in where the document lacks it and the writer's version did not declare it (or the target
requires it). Nested objects (``properties``) and the items of arrays (``items``) are upgraded the
same way; nothing else is touched, and the input is not changed.

An upgrade is idempotent, and when the target version is BACKWARD compatible with the source
(:mod:`tenantry.metadata.compatibility`) the result validates against the target.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.errors import InvalidInput
from tenantry.metadata.compatibility import Schema, match_properties, resolve_local
from tenantry.metadata.validation import compile_schema

__all__ = ["upgrade"]

_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class _Roots:
    """The two whole schemas, which local references point into."""

    writer: Schema
    reader: Schema


def upgrade(
    content: dict[str, Any], from_schema: Mapping[str, Any], to_schema: Mapping[str, Any]
) -> dict[str, Any]:
    """``content`` (valid against ``from_schema``) as a document of ``to_schema``: renames
    applied, defaults of the properties ``to_schema`` added filled in, the rest as it was."""
    result = _upgrade(content, from_schema, to_schema, _Roots(from_schema, to_schema), 0)
    return result if isinstance(result, dict) else content


def _options(
    schema: Schema, value: dict[str, Any] | list[Any], root: Schema, depth: int = 0
) -> list[Schema]:
    """For a schema with ``anyOf`` and no structure of its own, its options for the kind of
    ``value`` (an object's, an array's), resolved, nested ``anyOf`` flattened; else none."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return []
    options = schema.get("anyOf")
    if not isinstance(options, list) or "properties" in schema or "items" in schema:
        return []
    kind, part = ("object", "properties") if isinstance(value, dict) else ("array", "items")
    found: list[Schema] = []
    for option in options:
        resolved = resolve_local(option, root)
        if isinstance(resolved, Mapping) and (resolved.get("type") == kind or part in resolved):
            found.append(resolved)
        else:
            found += _options(resolved, value, root, depth + 1)
    return found


def _through_options(
    value: Any, writer: Schema, options: list[Schema], roots: _Roots, depth: int
) -> Any:
    """``value`` upgraded through the first option it then satisfies (the branch it belongs
    to, as the compatibility check assumes), or through the first option."""
    results = [_upgrade(value, writer, option, roots, depth + 1) for option in options]
    for option, result in zip(options, results, strict=True):
        if _satisfies(result, option, roots.reader):
            return result
    return results[0]


def _satisfies(value: Any, option: Schema, root: Schema) -> bool:
    """Whether ``value`` is valid against ``option``, a part of ``root`` (whose definitions its
    local references may name)."""
    if not isinstance(option, Mapping):
        return bool(option)
    whole = dict(option)
    if isinstance(root, Mapping):
        for key in ("$defs", "definitions"):
            if key in root and key not in whole:
                whole[key] = root[key]
    try:
        return compile_schema(whole).is_valid(value)
    except InvalidInput:  # a part that does not compile alone: take the branch's word for it
        return True


def _upgrade(value: Any, writer: Schema, reader: Schema, roots: _Roots, depth: int) -> Any:
    writer, reader = resolve_local(writer, roots.writer), resolve_local(reader, roots.reader)
    if depth > _MAX_DEPTH or not isinstance(reader, Mapping) or not isinstance(value, dict | list):
        return value
    if options := _options(reader, value, roots.reader):
        return _through_options(value, writer, options, roots, depth)
    w_map: Mapping[str, Any] = writer if isinstance(writer, Mapping) else {}
    if isinstance(value, list):
        r_items, w_items = reader.get("items"), w_map.get("items", True)
        if not isinstance(r_items, Mapping):
            return value
        return [_upgrade(v, w_items, r_items, roots, depth + 1) for v in value]
    return _upgrade_object(value, w_map, reader, roots, depth)


def _upgrade_object(
    value: dict[str, Any],
    w_map: Mapping[str, Any],
    reader: Mapping[str, Any],
    roots: _Roots,
    depth: int,
) -> dict[str, Any]:
    r_props: Mapping[str, Any] = reader.get("properties", {})
    w_props: Mapping[str, Any] = w_map.get("properties", {})
    if not r_props:
        return value
    required = set(reader.get("required", ()))
    result = dict(value)
    matched = match_properties(r_props, w_props)
    for name, w_name in matched.items():
        if name != w_name and w_name in result and name not in result:
            result[name] = result.pop(w_name)
    for name, r_schema in r_props.items():
        target = resolve_local(r_schema, roots.reader)
        if name in result:
            w_name = matched.get(name, name)
            w_schema = w_props.get(w_name, w_map.get("additionalProperties", True))
            result[name] = _upgrade(result[name], w_schema, r_schema, roots, depth + 1)
        elif (
            isinstance(target, Mapping)
            and "default" in target
            and (name not in w_props or name in required)
        ):
            result[name] = copy.deepcopy(target["default"])
    return result
