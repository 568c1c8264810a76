"""Compatibility of two JSON Schemas, after Confluent Schema Registry's JSON Schema rules.

The question is always one of a *reader* and a *writer*: can every document the writer's schema
accepts be read with the reader's, once :func:`tenantry.metadata.evolution.upgrade` has applied
the renames and defaults the schemas declare? BACKWARD asks it with the new schema as the reader
and the old as the writer; FORWARD the other way round; FULL both. Pure: no I/O.

Rules, at each path (recursively into ``properties``, ``items``, ``prefixItems``,
``additionalProperties``, local ``$ref`` and ``anyOf``/``oneOf``):

- types: the writer's types must be among the reader's (``integer`` is read as ``number``, not the
  other way); a reader with a ``type`` cannot read a writer without one;
- ``enum``/``const``: the writer's values must be among the reader's;
- bounds: the reader's ``maxLength``/``maxItems``/``maxProperties``/``maximum`` may not be lower
  than the writer's, its ``min...`` not higher; a reader's ``pattern``, ``multipleOf``,
  ``uniqueItems`` or ``format`` the writer does not have is a narrowing;
- objects, with Confluent's content models: a property the reader declares and the writer does
  not could have been written under an *open* writer (``additionalProperties`` true or absent) with
  any value, so it breaks compatibility unless the reader accepts anything there (a *closed*
  writer never wrote it; a *partially open* one wrote what its ``additionalProperties`` schema
  says); a property the writer declares and the reader does not must be allowed by the reader's
  ``additionalProperties``; a property the reader requires must be required by the writer or have
  a ``default`` in the reader (which the upgrade fills in);
- renames: a property whose ``aliases`` annotation names the other schema's property is that
  property, renamed (the upgrade renames it), not a removal and an addition;
- what cannot be compared (``allOf``, ``not``, ``if``, ...) must be equal in both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantry.metadata.schemas import CompatibilityMode, CompatibilityReport

__all__ = [
    "Schema",
    "aliases_of",
    "check_compatibility",
    "compare",
    "match_properties",
    "readable",
    "resolve_local",
]

Schema = Mapping[str, Any] | bool
_NUMERIC = ("integer", "number")
#: Keywords compared only for equality (their meaning cannot be compared here).
_OPAQUE = (
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "patternProperties",
    "propertyNames",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "$dynamicRef",
)
_MAX_DEPTH = 64


def aliases_of(schema: Schema) -> tuple[str, ...]:
    """The earlier names a property's schema declares (``"aliases": ["old_name"]``)."""
    if not isinstance(schema, Mapping):
        return ()
    found = schema.get("aliases", ())
    return tuple(a for a in found if isinstance(a, str)) if isinstance(found, list) else ()


@dataclass
class _Comparison:
    reader_root: Schema
    writer_root: Schema
    reader_name: str
    writer_name: str
    reasons: list[str] = field(default_factory=list)
    seen: set[tuple[int, int]] = field(default_factory=set)

    def fail(self, path: str, rule: str) -> None:
        self.reasons.append(f"{path or '(root)'}: {rule}")

    def resolve(self, schema: Schema, root: Schema) -> Schema:
        return resolve_local(schema, root)

    def read(self, reader: Schema, writer: Schema, path: str, depth: int = 0) -> None:
        """Record why ``reader`` cannot read what ``writer`` accepts, at ``path``."""
        reader = self.resolve(reader, self.reader_root)
        writer = self.resolve(writer, self.writer_root)
        key = (id(reader), id(writer))
        if key in self.seen or depth > _MAX_DEPTH:
            return  # a recursive schema: the pair is being compared already
        self.seen.add(key)
        if reader is True or reader == {} or writer is False:
            return
        if reader is False:
            self.fail(path, f"the {self.reader_name} schema accepts nothing here")
            return
        if writer is True:
            writer = {}
        if not isinstance(reader, Mapping) or not isinstance(writer, Mapping):
            return  # not a schema: the metaschema check refused it before
        if self._branches(reader, writer, path, depth):
            return
        for keyword in _OPAQUE:
            if reader.get(keyword) != writer.get(keyword) and keyword in reader:
                self.fail(path, f"'{keyword}' differs and cannot be compared")
        self._types(reader, writer, path)
        self._values(reader, writer, path)
        self._bounds(reader, writer, path)
        self._objects(reader, writer, path, depth)
        self._arrays(reader, writer, path, depth)

    def _branches(
        self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str, depth: int
    ) -> bool:
        """``anyOf``/``oneOf``: every alternative of the writer is read by one of the reader's
        (each alternative with the keywords beside it). A reader's ``oneOf`` (exactly one) is
        compared only for equality; a writer's is read like ``anyOf``, which accepts more."""
        if "oneOf" in reader:
            if reader["oneOf"] != writer.get("oneOf"):
                self.fail(path, "'oneOf' differs and cannot be compared")
                return True
            reader = {k: v for k, v in reader.items() if k != "oneOf"}
            writer = {k: v for k, v in writer.items() if k != "oneOf"}
        r_branches, w_branches = _alternatives(reader, "anyOf"), _alternatives(writer, "anyOf")
        if w_branches is None:
            w_branches = _alternatives(writer, "oneOf")
        if r_branches is None and w_branches is None:
            return False
        w_options = w_branches or [writer]
        r_options = r_branches or [reader]
        for index, branch in enumerate(w_options):
            if not any(self._quietly(r, branch, depth) for r in r_options):
                self.fail(
                    f"{path}.anyOf.{index}" if len(w_options) > 1 else path,
                    f"no alternative of the {self.reader_name} schema reads what the "
                    f"{self.writer_name} schema accepts here",
                )
        return True

    def _quietly(self, reader: Schema, writer: Schema, depth: int) -> bool:
        trial = _Comparison(
            self.reader_root, self.writer_root, self.reader_name, self.writer_name, seen=set()
        )
        trial.read(reader, writer, "", depth + 1)
        return not trial.reasons

    def _types(self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> None:
        if "type" not in reader:
            return
        r_types, w_types = _types(reader), _types(writer)
        if w_types is None:
            self.fail(
                path,
                f"the {self.reader_name} schema requires type {_listing(r_types or set())}, "
                f"the {self.writer_name} schema allows any type",
            )
            return
        readable = set(r_types or ())
        if "number" in readable:
            readable.add("integer")  # every integer is a number; not every number an integer
        if missing := w_types - readable:
            self.fail(
                path,
                f"type {_listing(missing)} of the {self.writer_name} schema is not accepted by "
                f"the {self.reader_name} schema ({_listing(r_types or set())})",
            )

    def _values(self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> None:
        r_values, w_values = _allowed_values(reader), _allowed_values(writer)
        if r_values is None:
            return
        if w_values is None:
            self.fail(
                path,
                f"the {self.reader_name} schema allows only the values {_shown(r_values)}, the "
                f"{self.writer_name} schema any",
            )
            return
        if missing := [v for v in w_values if v not in r_values]:
            self.fail(
                path,
                f"the enum was narrowed: {_shown(missing)} of the {self.writer_name} schema "
                f"{'is' if len(missing) == 1 else 'are'} not allowed by the {self.reader_name}",
            )

    def _bounds(self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str) -> None:
        for keyword, tighter in _UPPER + _LOWER:
            if keyword not in reader:
                continue
            limit, written = reader[keyword], writer.get(keyword)
            if written is None or tighter(limit, written):
                shown = "none" if written is None else written
                self.fail(
                    path,
                    f"'{keyword}' narrowed from {shown} ({self.writer_name}) to {limit} "
                    f"({self.reader_name})",
                )
        for keyword in ("pattern", "format", "multipleOf"):
            if keyword in reader and reader[keyword] != writer.get(keyword):
                if keyword == "multipleOf" and _multiple(writer.get(keyword), reader[keyword]):
                    continue
                self.fail(
                    path,
                    f"'{keyword}' {reader[keyword]!r} of the {self.reader_name} schema is not "
                    f"guaranteed by the {self.writer_name} schema",
                )
        if reader.get("uniqueItems") is True and writer.get("uniqueItems") is not True:
            self.fail(path, f"'uniqueItems' is required by the {self.reader_name} schema only")

    def _objects(
        self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str, depth: int
    ) -> None:
        r_props: Mapping[str, Any] = reader.get("properties", {})
        w_props: Mapping[str, Any] = writer.get("properties", {})
        matched = match_properties(r_props, w_props)
        prefix = f"{path}.properties." if path else "properties."
        for name, r_schema in r_props.items():
            self._declared(r_schema, writer, matched.get(name), prefix + name, depth)
        by_writer = {w: r for r, w in matched.items()}
        r_extra = reader.get("additionalProperties", True)
        for name, w_schema in w_props.items():
            if name not in by_writer:
                self._undeclared(r_extra, w_schema, prefix + name, depth)
        w_extra = writer.get("additionalProperties", True)
        if r_extra is not True and r_extra != {} and w_extra is not False:
            at = f"{path}.additionalProperties" if path else "additionalProperties"
            if r_extra is False:
                self.fail(
                    at,
                    f"the {self.reader_name} schema closes the content model the "
                    f"{self.writer_name} schema leaves open",
                )
            else:
                self.read(r_extra, w_extra, at, depth + 1)
        w_required = set(writer.get("required", ()))
        for name in reader.get("required", ()):
            if matched.get(name, name) in w_required:
                continue
            r_schema = self.resolve(r_props.get(name, {}), self.reader_root)
            if not (isinstance(r_schema, Mapping) and "default" in r_schema):
                self.fail(
                    prefix + name,
                    f"required by the {self.reader_name} schema, not by the {self.writer_name}, "
                    "and without a default",
                )

    def _declared(
        self,
        r_schema: Schema,
        writer: Mapping[str, Any],
        w_name: str | None,
        at: str,
        depth: int,
    ) -> None:
        """A property the reader declares: read the writer's (or what it may write there)."""
        w_extra = writer.get("additionalProperties", True)
        if w_name is not None:
            self.read(r_schema, writer["properties"][w_name], at, depth + 1)
        elif w_extra is False:
            return  # a closed writer never wrote it
        elif w_extra is True or w_extra == {}:
            if not _accepts_anything(self.resolve(r_schema, self.reader_root)):
                self.fail(
                    at,
                    f"a property the {self.writer_name} schema does not declare, where its "
                    "open content model allows any value, is constrained by the "
                    f"{self.reader_name} schema",
                )
        else:
            self.read(r_schema, w_extra, at, depth + 1)

    def _undeclared(self, r_extra: Schema, w_schema: Schema, at: str, depth: int) -> None:
        """A property the writer declares and the reader does not."""
        if r_extra is False:
            self.fail(
                at,
                f"a property of the {self.writer_name} schema is not allowed by the "
                f"{self.reader_name} schema's closed content model",
            )
        elif r_extra is not True:
            self.read(r_extra, w_schema, at, depth + 1)

    def _arrays(
        self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str, depth: int
    ) -> None:
        prefix = f"{path}." if path else ""
        r_prefix, w_prefix = reader.get("prefixItems", []), writer.get("prefixItems", [])
        r_items, w_items = reader.get("items", True), writer.get("items", True)
        for index in range(max(len(r_prefix), len(w_prefix))):
            r_item = r_prefix[index] if index < len(r_prefix) else r_items
            w_item = w_prefix[index] if index < len(w_prefix) else w_items
            self.read(r_item, w_item, f"{prefix}prefixItems.{index}", depth + 1)
        if "items" in reader or "items" in writer:
            self.read(r_items, w_items, f"{prefix}items", depth + 1)


def _alternatives(schema: Mapping[str, Any], keyword: str) -> list[Schema] | None:
    """The alternatives of ``schema``'s ``keyword``, each with the keywords beside it."""
    options = schema.get(keyword)
    if not isinstance(options, list):
        return None
    siblings = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    if not siblings:
        return list(options)
    return [{**siblings, **o} if isinstance(o, Mapping) else o for o in options]


def _limit_above(limit: Any, written: Any) -> bool:
    return bool(limit < written)


def _limit_below(limit: Any, written: Any) -> bool:
    return bool(limit > written)


_UPPER: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = tuple(
    (k, _limit_above)
    for k in ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
)
_LOWER: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = tuple(
    (k, _limit_below)
    for k in ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
)


def _multiple(written: Any, required: Any) -> bool:
    """Whether every multiple of ``written`` is a multiple of ``required``."""
    if not isinstance(written, int | float) or not isinstance(required, int | float):
        return False
    ratio = written / required
    return math.isclose(ratio, round(ratio)) and round(ratio) >= 1


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        values = _allowed_values(schema)
        return None if values is None else {_type_of(v) for v in values}
    return {declared} if isinstance(declared, str) else set(declared)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _allowed_values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _accepts_anything(schema: Schema) -> bool:
    if schema is True:
        return True
    if not isinstance(schema, Mapping):
        return False
    annotations = {"title", "description", "default", "examples", "aliases", "$comment"}
    return not (set(schema) - annotations)


def match_properties(r_props: Mapping[str, Any], w_props: Mapping[str, Any]) -> dict[str, str]:
    """Reader property -> writer property: the same name, else a rename declared by either
    side's ``aliases`` (a name the other side no longer has)."""
    matched = {name: name for name in r_props if name in w_props}
    taken = set(matched.values())
    for name, schema in r_props.items():
        if name in matched:
            continue
        for alias in aliases_of(schema):
            if alias in w_props and alias not in taken and alias not in r_props:
                matched[name] = alias
                taken.add(alias)
                break
    for w_name, w_schema in w_props.items():
        if w_name in taken or w_name in r_props:
            continue
        for alias in aliases_of(w_schema):
            if alias in r_props and alias not in matched:
                matched[alias] = w_name
                taken.add(w_name)
                break
    return matched


def resolve_local(schema: Schema, root: Schema) -> Schema:
    """``schema`` with its local ``$ref`` (into ``root``) followed, a few hops at most; the
    keywords beside a ``$ref`` are kept over the target's."""
    for _ in range(16):
        if not isinstance(schema, Mapping) or not isinstance(schema.get("$ref"), str):
            return schema
        target = _pointer(root, schema["$ref"])
        if target is None:
            return schema
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings} if isinstance(target, Mapping) and siblings else target
    return schema


def _pointer(root: Schema, ref: str) -> Schema | None:
    """The part of ``root`` a local JSON pointer (``#/$defs/x``) names; None if nothing."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node if isinstance(node, Mapping | bool) else None


def _listing(types: set[str]) -> str:
    return "/".join(sorted(types)) or "none"


def _shown(values: Sequence[Any]) -> str:
    return ", ".join(repr(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")


def readable(reader: Schema, writer: Schema, *, reader_name: str, writer_name: str) -> list[str]:
    """Why ``reader`` cannot read (after the upgrade) what ``writer`` accepts; empty if it can."""
    comparison = _Comparison(reader, writer, reader_name, writer_name)
    comparison.read(reader, writer, "")
    return comparison.reasons


def compare(old: Schema, new: Schema, mode: CompatibilityMode | str) -> CompatibilityReport:
    """The compatibility of ``new`` with ``old`` in ``mode`` (a transitive mode compares the two
    like its plain form)."""
    return check_compatibility(new, [old], mode)


def check_compatibility(
    new: Schema, earlier: Sequence[Schema], mode: CompatibilityMode | str
) -> CompatibilityReport:
    """The compatibility of ``new`` with ``earlier`` (every earlier version of the subject,
    version 1 first) in ``mode``: plain modes compare with the latest, transitive ones with each.
    Each reason names the version, the property path and the rule it breaks."""
    mode = CompatibilityMode(mode)
    if mode is CompatibilityMode.NONE or not earlier:
        return CompatibilityReport(True, mode)
    numbered = list(enumerate(earlier, start=1))
    compared = numbered if mode.transitive else numbered[-1:]
    reasons: list[str] = []
    for version, old in compared:
        tag = f"version {version}: " if len(earlier) > 1 else ""
        if mode.backward:
            found = readable(new, old, reader_name="new", writer_name="old")
            reasons += [f"{tag}{reason}; breaks BACKWARD" for reason in found]
        if mode.forward:
            found = readable(old, new, reader_name="old", writer_name="new")
            reasons += [f"{tag}{reason}; breaks FORWARD" for reason in found]
    return CompatibilityReport(not reasons, mode, tuple(reasons))
