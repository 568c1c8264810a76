"""upgrade: renames by aliases and defaults, idempotent, and valid where BACKWARD compatible."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tenantry.metadata import compare, upgrade, validate
from tests.metadata.cases import CASES, Case, obj
from tests.metadata.test_compatibility import schemas

S = {"type": "string"}

OLD = obj(
    {
        "title": S,
        "artist": obj({"n": S, "label": S}, ("n",)),
        "tracks": {"type": "array", "items": obj({"t": S})},
        "isrc": S,
    },
    ("title",),
)
NEW = obj(
    {
        "name": {"type": "string", "aliases": ["title"]},
        "genre": {"type": "string", "default": "unknown"},
        "artist": obj(
            {
                "name": {"type": "string", "aliases": ["n"]},
                "label": S,
                "country": {"type": "string", "default": "DE"},
            },
            ("name", "country"),
        ),
        "tracks": {
            "type": "array",
            "items": obj({"t": S, "explicit": {"type": "boolean", "default": False}}),
        },
        "isrc": S,
    },
    ("name", "genre"),
)


def test_renames_and_defaults_reach_nested_objects_and_array_items() -> None:
    content = {"title": "Blue", "artist": {"n": "Ada"}, "tracks": [{"t": "a"}, {}], "isrc": "X"}
    before = copy.deepcopy(content)
    upgraded = upgrade(content, OLD, NEW)
    assert upgraded == {
        "name": "Blue",
        "genre": "unknown",
        "artist": {"name": "Ada", "country": "DE"},
        "tracks": [{"t": "a", "explicit": False}, {"explicit": False}],
        "isrc": "X",
    }
    assert content == before  # the input is not changed
    validate(upgraded, NEW)
    assert compare(OLD, NEW, "BACKWARD").compatible


def test_present_values_and_undeclared_fields_are_left_alone() -> None:
    content = {"title": "Blue", "genre": "jazz", "artist": {"n": "Ada", "country": "FR"}}
    upgraded = upgrade(content, OLD, NEW)
    assert upgraded["genre"] == "jazz"
    assert upgraded["artist"] == {"name": "Ada", "country": "FR"}
    open_old, open_new = obj({"a": S}, extra=None), obj({"a": S}, extra=None)
    assert upgrade({"a": "x", "extra": [1]}, open_old, open_new) == {"a": "x", "extra": [1]}


def test_a_default_is_not_filled_where_the_old_schema_left_an_optional_field_out() -> None:
    old = obj({"g": S})
    new = obj({"g": {"type": "string", "default": "pop"}})
    assert upgrade({}, old, new) == {}  # absent was a valid value of g before and still is
    assert upgrade({}, old, {**new, "required": ["g"]}) == {"g": "pop"}


def test_a_rename_declared_by_the_older_schema_applies_downwards() -> None:
    assert upgrade({"name": "Blue"}, NEW, OLD) == {"title": "Blue"}


def test_defaults_are_copies() -> None:
    new = obj({"tags": {"type": "array", "default": []}}, ("tags",))
    first, second = upgrade({}, obj({}), new), upgrade({}, obj({}), new)
    first["tags"].append("x")
    assert second["tags"] == []


@pytest.mark.parametrize("case", [c.param() for c in CASES if c.documents])
def test_upgrade_is_idempotent_and_valid_where_backward_compatible(case: Case) -> None:
    for document in case.documents:
        validate(document, case.old)  # the table's documents are the old schema's
        once = upgrade(document, case.old, case.new)
        assert upgrade(once, case.old, case.new) == once
        if case.backward:
            validate(once, case.new)


def test_every_backward_case_has_a_document() -> None:
    missing: list[Any] = [c.id for c in CASES if c.backward and not c.documents]
    assert missing == []


# -- the property over generated schemas ----------------------------------------------------------

_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3))


def documents(schema: Any) -> st.SearchStrategy[Any]:
    """Documents valid against ``schema``, one of those ``tests.metadata.test_compatibility``
    generates (types with ``maxLength``/``minimum``, enums, defaults, objects, arrays, anyOf)."""
    if "anyOf" in schema:
        return st.one_of(*(documents(option) for option in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return _objects(schema)
    if kind == "array":
        return st.lists(documents(schema["items"]), max_size=3)
    low = schema.get("minimum", -10)
    strategies: dict[Any, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=schema.get("maxLength", 5)),
        "integer": st.integers(low, low + 20),
        "number": st.one_of(st.integers(low, low + 20), st.floats(low, low + 20)),
        "boolean": st.booleans(),
        "null": st.none(),
        None: _ANY,
    }
    return strategies[kind]


def _objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    fixed = {name: documents(sub) for name, sub in props.items() if name in required}
    optional = {name: documents(sub) for name, sub in props.items() if name not in required}
    base = st.fixed_dictionaries(fixed, optional=optional)
    if extra is False:
        return base
    values = _ANY if extra is True else documents(extra)
    more = st.dictionaries(st.sampled_from(["x", "y", "zz"]), values, max_size=2)
    return st.builds(lambda declared, others: {**others, **declared}, base, more)


@settings(max_examples=300, deadline=None)
@given(schemas, schemas, st.data())
def test_upgraded_documents_validate_wherever_the_versions_are_compatible(
    old: dict[str, Any], new: dict[str, Any], data: st.DataObject
) -> None:
    """BACKWARD compatible: an old document, upgraded, is valid against the new schema; FORWARD
    compatible: a new document, upgraded downwards, is valid against the old one. Documents are
    objects, as a record's content is (``upgrade`` takes an object)."""
    if compare(old, new, "BACKWARD").compatible:
        event(f"backward compatible, {'equal' if old == new else 'different'} schemas")
        document = data.draw(documents(old), label="old document")
        validate(document, old)
        if isinstance(document, dict):
            upgraded = upgrade(document, old, new)
            validate(upgraded, new)
            assert upgrade(upgraded, old, new) == upgraded
    if compare(old, new, "FORWARD").compatible:
        document = data.draw(documents(new), label="new document")
        validate(document, new)
        if isinstance(document, dict):
            validate(upgrade(document, new, old), old)
