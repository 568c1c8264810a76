"""Pairs of schema versions (old, new) with their expected compatibility, and documents valid
against the old one: the table test_compatibility checks and test_evolution upgrades."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["CASES", "Case", "obj"]

Schema = dict[str, Any]


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), extra: Any = False) -> Schema:
    """An object schema; ``extra``: its ``additionalProperties`` (None: not stated, so open)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if extra is not None:
        schema["additionalProperties"] = extra
    return schema


STR, INT, NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}


@dataclass(frozen=True)
class Case:
    id: str
    old: Schema
    new: Schema
    backward: bool
    forward: bool
    #: A substring of a reason, when the case is incompatible in some direction.
    reason: str = ""
    #: Documents valid against ``old``.
    documents: tuple[Any, ...] = field(default=())

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


TITLE = obj({"title": STR}, ("title",))
CASES = [
    Case("identical", TITLE, TITLE, True, True, documents=({"title": "Intro"},)),
    Case(
        "optional property added, closed",
        TITLE,
        obj({"title": STR, "genre": STR}, ("title",)),
        True,
        False,
        "properties.genre: a property of the new schema is not allowed by the old schema's "
        "closed content model; breaks FORWARD",
        ({"title": "Intro"},),
    ),
    Case(
        "optional property added, open",
        obj({"title": STR}, extra=None),
        obj({"title": STR, "genre": STR}, extra=None),
        False,
        True,
        "properties.genre: a property the old schema does not declare, where its open content "
        "model allows any value, is constrained by the new schema; breaks BACKWARD",
    ),
    Case(
        "unconstrained property added, open",
        obj({"title": STR}, extra=None),
        obj({"title": STR, "notes": {"description": "anything"}}, extra=None),
        True,
        True,
        documents=({"title": "x", "notes": [1, 2]},),
    ),
    Case(
        "optional property added, partially open with a matching schema",
        obj({"title": STR}, extra=STR),
        obj({"title": STR, "genre": STR}, extra=STR),
        True,
        True,
        documents=({"title": "x", "genre": "pop", "mood": "calm"},),
    ),
    Case(
        "optional property added, partially open with another type",
        obj({"title": STR}, extra=STR),
        obj({"title": STR, "bpm": INT}, extra=STR),
        False,
        False,
        "properties.bpm: type string of the old schema is not accepted by the new schema",
    ),
    Case(
        "optional property removed, closed",
        obj({"title": STR, "genre": STR}),
        TITLE,
        False,
        True,
        "properties.genre: a property of the old schema is not allowed by the new schema's "
        "closed content model; breaks BACKWARD",
    ),
    Case(
        "optional property removed, open",
        obj({"title": STR, "genre": STR}, extra=None),
        obj({"title": STR}, extra=None),
        True,
        False,
        documents=({"title": "x", "genre": "pop"},),
    ),
    Case(
        "required property added without a default",
        TITLE,
        obj({"title": STR, "genre": STR}, ("title", "genre")),
        False,
        False,
        "properties.genre: required by the new schema, not by the old, and without a default; "
        "breaks BACKWARD",
    ),
    Case(
        "required property added with a default",
        TITLE,
        obj({"title": STR, "genre": {"type": "string", "default": "unknown"}}, ("title", "genre")),
        True,
        False,
        documents=({"title": "Intro"},),
    ),
    Case(
        "existing property made required",
        obj({"title": STR, "genre": STR}),
        obj({"title": STR, "genre": STR}, ("genre",)),
        False,
        True,
        "properties.genre: required by the new schema",
    ),
    Case(
        "required property made optional",
        obj({"title": STR}, ("title",)),
        obj({"title": STR}),
        True,
        False,
        "properties.title: required by the old schema, not by the new, and without a default; "
        "breaks FORWARD",
        ({"title": "x"},),
    ),
    Case(
        "integer widened to number",
        obj({"n": INT}),
        obj({"n": NUM}),
        True,
        False,
        "properties.n: type number of the new schema is not accepted by the old schema",
        ({"n": 3},),
    ),
    Case("number narrowed", obj({"n": NUM}), obj({"n": INT}), False, True, "type number"),
    Case("string to integer", obj({"n": STR}), obj({"n": INT}), False, False, "type string"),
    Case(
        "enum widened",
        obj({"g": {"enum": ["pop", "rock"]}}),
        obj({"g": {"enum": ["pop", "rock", "jazz"]}}),
        True,
        False,
        "the enum was narrowed: 'jazz' of the new schema",
        ({"g": "rock"},),
    ),
    Case(
        "enum narrowed",
        obj({"g": {"enum": ["pop", "rock"]}}),
        obj({"g": {"enum": ["pop"]}}),
        False,
        True,
        "properties.g: the enum was narrowed: 'rock' of the old schema is not allowed by the new",
    ),
    Case(
        "maxLength raised",
        obj({"t": {"type": "string", "maxLength": 10}}),
        obj({"t": {"type": "string", "maxLength": 20}}),
        True,
        False,
        "'maxLength' narrowed from 20 (new) to 10 (old); breaks FORWARD",
        ({"t": "short"},),
    ),
    Case(
        "minLength raised",
        obj({"t": {"type": "string", "minLength": 1}}),
        obj({"t": {"type": "string", "minLength": 3}}),
        False,
        True,
        "'minLength' narrowed from 1 (old) to 3 (new)",
    ),
    Case(
        "maximum lowered",
        obj({"n": {"type": "integer", "maximum": 100}}),
        obj({"n": {"type": "integer", "maximum": 10}}),
        False,
        True,
        "properties.n: 'maximum' narrowed from 100 (old) to 10 (new); breaks BACKWARD",
    ),
    Case(
        "minimum added",
        obj({"n": INT}),
        obj({"n": {"type": "integer", "minimum": 0}}),
        False,
        True,
        "'minimum' narrowed from none (old) to 0 (new)",
    ),
    Case(
        "array items widened",
        obj({"xs": {"type": "array", "items": INT}}),
        obj({"xs": {"type": "array", "items": NUM}}),
        True,
        False,
        "properties.xs.items: type number",
        ({"xs": [1, 2]},),
    ),
    Case(
        "array items narrowed",
        obj({"xs": {"type": "array", "items": STR}}),
        obj({"xs": {"type": "array", "items": {"type": "string", "maxLength": 3}}}),
        False,
        True,
        "properties.xs.items: 'maxLength' narrowed",
    ),
    Case(
        "nested required property added without a default",
        obj({"artist": obj({"name": STR}, ("name",))}),
        obj({"artist": obj({"name": STR, "country": STR}, ("name", "country"))}),
        False,
        False,
        "properties.artist.properties.country: required by the new schema",
    ),
    Case(
        "nested property added with a default",
        obj({"artist": obj({"name": STR}, ("name",))}, ("artist",)),
        obj(
            {
                "artist": obj(
                    {"name": STR, "country": {"type": "string", "default": "DE"}},
                    ("name", "country"),
                )
            },
            ("artist",),
        ),
        True,
        False,
        documents=({"artist": {"name": "Ada"}},),
    ),
    Case(
        "rename declared by aliases",
        TITLE,
        obj({"name": {"type": "string", "aliases": ["title"]}}, ("name",)),
        True,
        True,
        documents=({"title": "Intro"},),
    ),
    Case(
        "rename without aliases",
        TITLE,
        obj({"name": STR}, ("name",)),
        False,
        False,
        "properties.name: required by the new schema",
    ),
    Case(
        "content model closed",
        obj({"title": STR}, extra=None),
        obj({"title": STR}),
        False,
        True,
        "additionalProperties: the new schema closes the content model the old schema leaves open",
    ),
    Case(
        "content model opened",
        obj({"title": STR}),
        obj({"title": STR}, extra=None),
        True,
        False,
        "additionalProperties: the old schema closes the content model",
        ({"title": "x"},),
    ),
    Case(
        "local reference to the same type",
        {**obj({"t": {"$ref": "#/$defs/title"}}), "$defs": {"title": STR}},
        obj({"t": STR}),
        True,
        True,
        documents=({"t": "x"},),
    ),
    Case(
        "null allowed through anyOf",
        obj({"t": STR}),
        obj({"t": {"anyOf": [STR, {"type": "null"}]}}),
        True,
        False,
        "properties.t.anyOf.1: no alternative of the old schema reads",
        ({"t": "x"},),
    ),
    Case(
        "anyOf with a type beside it",
        obj({"t": INT}),
        obj({"t": {"type": "string", "anyOf": [{"maxLength": 3}, {"minLength": 5}]}}),
        False,
        False,
        "properties.t: no alternative of the new schema reads what the old schema accepts here",
    ),
    Case(
        "oneOf changed",
        obj({"t": {"oneOf": [STR]}}),
        obj({"t": {"oneOf": [STR, {"type": "null"}]}}),
        False,
        False,
        "properties.t: 'oneOf' differs and cannot be compared; breaks BACKWARD",
    ),
    Case(
        "oneOf unchanged",
        obj({"t": {"oneOf": [STR, INT]}}),
        obj({"t": {"oneOf": [STR, INT]}}),
        True,
        True,
        documents=({"t": 3},),
    ),
    Case(
        "a default added",
        obj({"g": STR}),
        obj({"g": {"type": "string", "default": "pop"}}),
        True,
        True,
        documents=({},),
    ),
]
