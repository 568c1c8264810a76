"""upgrade: renames by aliases and defaults, idempotent, and valid where BACKWARD compatible."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tenantry.metadata import compare, upgrade, validate
from tests.metadata.cases import CASES, Case, obj

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
