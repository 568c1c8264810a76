"""Checking submitted schemas and validating content against them (JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.errors import ContentTooLarge, InvalidInput, SchemaViolation
from tenantry.metadata import check_schema, compile_schema, validate
from tenantry.metadata.validation import MAX_ISSUES, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH

ALBUM: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "year": {"type": "integer", "minimum": 1900},
        "artist": {"$ref": "#/$defs/artist"},
        "tracks": {"type": "array", "items": {"$ref": "#/$defs/track"}},
    },
    "required": ["title", "artist"],
    "additionalProperties": False,
    "$defs": {
        "artist": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
        "track": {
            "type": "object",
            "properties": {"isrc": {"type": "string", "pattern": "^[A-Z]{2}[A-Z0-9]{10}$"}},
        },
    },
}


def violations(content: Any, schema: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(SchemaViolation) as caught:
        validate(content, schema)
    return sorted((issue.loc, issue.type) for issue in caught.value.issues)


def test_valid_content_passes() -> None:
    check_schema(ALBUM)
    album = {"title": "Blue", "artist": {"name": "Ada"}, "tracks": [{"isrc": "DEA123456789"}]}
    validate(album, ALBUM)


def test_every_violation_is_listed_with_its_path_and_keyword() -> None:
    content = {
        "title": "",
        "year": 1850,
        "artist": {},
        "tracks": [{"isrc": "DEA123456789"}, {"isrc": "bad"}, "x"],
        "label": "Aurora",
    }
    assert violations(content, ALBUM) == [
        (("artist", "name"), "required"),
        (("label",), "additionalProperties"),
        (("title",), "minLength"),
        (("tracks", 1, "isrc"), "pattern"),
        (("tracks", 2), "type"),
        (("year",), "minimum"),
    ]


def test_the_listing_is_bounded() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    with pytest.raises(SchemaViolation) as caught:
        validate(list(range(MAX_ISSUES * 3)), schema)
    assert len(caught.value.issues) == MAX_ISSUES
    assert f"{MAX_ISSUES}+ violations" in caught.value.detail


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        pytest.param({"$ref": "https://evil.example/s.json"}, "ref", id="remote $ref"),
        pytest.param({"properties": {"a": {"$ref": "other.json#/x"}}}, "ref", id="relative $ref"),
        pytest.param({"$dynamicRef": "http://x/y"}, "ref", id="remote $dynamicRef"),
        pytest.param(
            {"$schema": "http://json-schema.org/draft-07/schema#"}, "$schema", id="other draft"
        ),
        pytest.param({"type": "strin"}, "anyOf", id="unknown type"),
        pytest.param({"minimum": "1"}, "type", id="minimum not a number"),
    ],
)
def test_a_schema_that_is_not_allowed_lists_its_issues(schema: dict[str, Any], kind: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_schema(schema)
    assert [issue.type for issue in caught.value.issues] == [kind]


def test_a_ref_inside_data_is_not_a_reference() -> None:
    check_schema({"const": {"$ref": "https://example.com/not-a-ref"}})


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"pattern": "("}, id="bad regular expression"),
        pytest.param({"$ref": "#/$defs/missing"}, id="reference to nothing"),
    ],
)
def test_a_schema_that_does_not_compile_is_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="does not compile"):
        check_schema(schema)


def test_size_and_depth_are_bounded() -> None:
    with pytest.raises(ContentTooLarge, match=str(MAX_SCHEMA_BYTES)):
        check_schema({"description": "x" * MAX_SCHEMA_BYTES})
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "array", "items": deep}
    with pytest.raises(InvalidInput, match="nests"):
        check_schema(deep)
    with pytest.raises(InvalidInput, match="a JSON object"):
        check_schema([{"type": "string"}])
    with pytest.raises(InvalidInput, match="not JSON"):
        check_schema({"maximum": float("nan")})


def test_compiled_schemas_are_cached_by_value() -> None:
    a = {"type": "object", "properties": {"x": {"type": "integer"}}}
    b = {"properties": {"x": {"type": "integer"}}, "type": "object"}
    assert compile_schema(a) is compile_schema(b)
    assert compile_schema(a).is_valid({"x": 1})
    assert not compile_schema(a).is_valid({"x": "1"})
