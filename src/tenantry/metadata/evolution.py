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

from tenantry.metadata.compatibility import Schema, match_properties, resolve_local

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


def _upgrade(value: Any, writer: Schema, reader: Schema, roots: _Roots, depth: int) -> Any:
    writer, reader = resolve_local(writer, roots.writer), resolve_local(reader, roots.reader)
    if depth > _MAX_DEPTH or not isinstance(reader, Mapping):
        return value
    w_map: Mapping[str, Any] = writer if isinstance(writer, Mapping) else {}
    if isinstance(value, list):
        r_items, w_items = reader.get("items"), w_map.get("items", True)
        if not isinstance(r_items, Mapping):
            return value
        return [_upgrade(v, w_items, r_items, roots, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
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
