"""Validating metadata content against its JSON Schema: the validator the registry chose
(``jsonschema_rs``, Rust) against ``jsonschema`` (pure Python, Draft202012Validator) and
``fastjsonschema`` (generated Python code), in the same run, no database.

The schema is a music catalogue's album (``ALBUM``: an artist, 12 tracks each with an ISRC
pattern, a duration, genres from an enum, credits and royalty splits, release dates, nested
``$defs`` reached by local ``$ref``). Rows:

- valid: a valid album, the yes-or-no of each validator (``is_valid``; ``fastjsonschema``'s
  compiled function, which raises on the first error), and tenantry's ``CompiledSchema.validate``;
- invalid: an album with 6 violations, listing them: ``jsonschema``'s ``iter_errors`` (the
  baseline), ``jsonschema_rs``'s, and tenantry's ``validate`` (``SchemaViolation`` with every
  issue); ``fastjsonschema`` stops at the first error, so its row finds one, not six;
- compile: making a validator from the schema (each library's), and the registry's whole check
  of a submitted schema (bounds, local refs, the 2020-12 metaschema, compiling).

``fastjsonschema`` does not implement draft 2020-12 (``prefixItems``, ``$dynamicRef``,
``unevaluated*`` are ignored: ``verify`` shows one), so the album uses only keywords it knows.
Calls are timed in batches of ``BATCH`` and reported per call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema
import jsonschema_rs

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.errors import SchemaViolation
from tenantry.metadata.validation import CompiledSchema, check_schema

__all__ = ["ALBUM", "BENCHMARK"]

BATCH = 10

VALID_RS = "schema valid: jsonschema_rs is_valid"
VALID_PY = "schema valid: jsonschema is_valid"
VALID_FAST = "schema valid: fastjsonschema"
VALID_OURS = "schema valid: tenantry validate"
INVALID_PY = "schema invalid, list all: jsonschema iter_errors"
INVALID_RS = "schema invalid, list all: jsonschema_rs iter_errors"
INVALID_OURS = "schema invalid, list all: tenantry validate (SchemaViolation)"
INVALID_FAST = "schema invalid, first only: fastjsonschema"
COMPILE_PY = "schema compile: jsonschema"
COMPILE_RS = "schema compile: jsonschema_rs"
COMPILE_FAST = "schema compile: fastjsonschema"
CHECK_OURS = "schema check on register: tenantry check_schema + compile"

_GENRES = ["pop", "rock", "jazz", "classical", "electronic", "hip-hop", "folk", "schlager"]
ALBUM: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "upc": {"type": "string", "pattern": "^[0-9]{12,13}$"},
        "title": {"type": "string", "minLength": 1, "maxLength": 300},
        "artist": {"$ref": "#/$defs/party"},
        "label": {"type": "string", "maxLength": 200},
        "release_date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "territories": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "uniqueItems": True,
        },
        "tracks": {"type": "array", "items": {"$ref": "#/$defs/track"}, "minItems": 1},
        "explicit": {"type": "boolean"},
    },
    "required": ["upc", "title", "artist", "tracks"],
    "additionalProperties": False,
    "$defs": {
        "party": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "ipi": {"type": "string", "pattern": "^[0-9]{9,11}$"},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            },
            "required": ["name"],
        },
        "track": {
            "type": "object",
            "properties": {
                "isrc": {"type": "string", "pattern": "^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"},
                "title": {"type": "string", "minLength": 1},
                "duration_s": {"type": "integer", "minimum": 1, "maximum": 7200},
                "genres": {"type": "array", "items": {"enum": _GENRES}, "maxItems": 3},
                "credits": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "party": {"$ref": "#/$defs/party"},
                            "role": {"enum": ["composer", "lyricist", "producer", "performer"]},
                        },
                        "required": ["party", "role"],
                    },
                },
                "royalty_split": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "party": {"type": "string"},
                            "share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        },
                        "required": ["party", "share"],
                    },
                },
            },
            "required": ["isrc", "title", "duration_s"],
            "additionalProperties": False,
        },
    },
}


def album(tracks: int = 12) -> dict[str, Any]:
    """A valid album of ``tracks`` tracks."""
    composer = {"name": "Ada Brandt", "ipi": "00123456789", "country": "DE"}
    return {
        "upc": "4006381333931",
        "title": "Nachtfahrt",
        "artist": {"name": "Die Nachtfahrer", "country": "DE"},
        "label": "Aurora Records",
        "release_date": "2026-03-13",
        "territories": ["DE", "AT", "CH", "FR"],
        "explicit": False,
        "tracks": [
            {
                "isrc": f"DEA12{2600000 + n:07d}",
                "title": f"Track {n}",
                "duration_s": 180 + n,
                "genres": ["electronic", "pop"],
                "credits": [
                    {"party": composer, "role": "composer"},
                    {"party": {"name": "Jo Lenz"}, "role": "producer"},
                ],
                "royalty_split": [
                    {"party": "Ada Brandt", "share": 0.6},
                    {"party": "Jo Lenz", "share": 0.4},
                ],
            }
            for n in range(1, tracks + 1)
        ],
    }


def broken_album() -> dict[str, Any]:
    """An album with six violations, in different places."""
    doc = album()
    doc["upc"] = "not-a-upc"  # pattern
    del doc["artist"]  # required
    doc["tracks"][2]["duration_s"] = 0  # minimum
    doc["tracks"][5]["genres"] = ["polka"]  # enum
    doc["tracks"][7]["royalty_split"][0]["share"] = 1.5  # maximum
    doc["tracks"][9]["bpm"] = 120  # additionalProperties
    return doc


VIOLATIONS = 6


def verify() -> None:
    """Before timing: every validator agrees on the valid album, each lists what it should of
    the broken one, and fastjsonschema ignores a 2020-12 keyword."""
    py = jsonschema.Draft202012Validator(ALBUM)
    rs = jsonschema_rs.Draft202012Validator(ALBUM)
    fast = fastjsonschema.compile(ALBUM)
    good, bad = album(), broken_album()
    assert py.is_valid(good)
    assert rs.is_valid(good)
    assert fast(good) == good
    assert len(list(py.iter_errors(bad))) == VIOLATIONS
    assert len(list(rs.iter_errors(bad))) == VIOLATIONS
    assert len(CompiledSchema(ALBUM).issues(bad)) == VIOLATIONS
    pairs = {"type": "array", "prefixItems": [{"type": "integer"}]}
    assert fastjsonschema.compile(pairs)(["x"]) == ["x"]  # prefixItems ignored: not 2020-12
    assert not jsonschema_rs.Draft202012Validator(pairs).is_valid(["x"])


def batched(name: str, op: Callable[[], object], peer: str | None = None) -> Case:
    async def run() -> None:
        for _ in range(BATCH):
            op()

    return Case(name, run, peer=peer, batch=BATCH)


def valid_cases() -> list[Case]:
    good = album()
    py = jsonschema.Draft202012Validator(ALBUM)
    rs = jsonschema_rs.Draft202012Validator(ALBUM)
    fast = fastjsonschema.compile(ALBUM)
    ours = CompiledSchema(ALBUM)
    return [
        batched(VALID_PY, lambda: py.is_valid(good)),
        batched(VALID_RS, lambda: rs.is_valid(good), peer=VALID_PY),
        batched(VALID_FAST, lambda: fast(good), peer=VALID_PY),
        batched(VALID_OURS, lambda: ours.validate(good), peer=VALID_RS),
    ]


def invalid_cases() -> list[Case]:
    bad = broken_album()
    py = jsonschema.Draft202012Validator(ALBUM)
    rs = jsonschema_rs.Draft202012Validator(ALBUM)
    fast = fastjsonschema.compile(ALBUM)
    ours = CompiledSchema(ALBUM)

    def first_only() -> None:
        try:  # noqa: SIM105 - try/except is cheaper than suppress(); both rows use it
            fast(bad)
        except fastjsonschema.JsonSchemaValueException:
            pass

    def violation() -> None:
        try:  # noqa: SIM105 - as above
            ours.validate(bad)
        except SchemaViolation:
            pass

    return [
        batched(INVALID_PY, lambda: list(py.iter_errors(bad))),
        batched(INVALID_RS, lambda: list(rs.iter_errors(bad)), peer=INVALID_PY),
        batched(INVALID_OURS, violation, peer=INVALID_PY),
        batched(INVALID_FAST, first_only, peer=INVALID_PY),
    ]


def compile_cases() -> list[Case]:
    def fresh() -> dict[str, Any]:
        return copy.deepcopy(ALBUM)  # a new object each time: nothing cached by identity

    return [
        batched(COMPILE_PY, lambda: jsonschema.Draft202012Validator(fresh())),
        batched(COMPILE_RS, lambda: jsonschema_rs.Draft202012Validator(fresh()), peer=COMPILE_PY),
        batched(COMPILE_FAST, lambda: fastjsonschema.compile(fresh()), peer=COMPILE_PY),
        batched(CHECK_OURS, lambda: (check_schema(fresh()), CompiledSchema(fresh())), COMPILE_RS),
    ]


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env  # no database
    verify()
    cases = [*valid_cases(), *invalid_cases(), *compile_cases()]
    return await run_cases(cases, plan, module="schema_validation")


BENCHMARK = Benchmark(
    name="schema_validation",
    operations=(
        VALID_PY,
        VALID_RS,
        VALID_FAST,
        VALID_OURS,
        INVALID_PY,
        INVALID_RS,
        INVALID_OURS,
        INVALID_FAST,
        COMPILE_PY,
        COMPILE_RS,
        COMPILE_FAST,
        CHECK_OURS,
    ),
    run=run,
)
