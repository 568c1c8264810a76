"""The labelled metadata catalogue of a music label: records, queries and their relevant records.

The data is in ``catalogue/records.json`` and ``catalogue/queries.json``, written by
``python tests/metadata/catalogue/generate.py`` (deterministic; it documents how each query's
relevant set is decided). 306 records (tracks, albums, artists, contracts, royalty schemas,
user-data schemas, technical pipelines; mostly English, some German, French and Spanish) and 102
queries: 36 English, 39 German, 5 French, 4 Spanish, and six intents asked again in Swedish, Czech
and Greek (languages some encoders were not trained on); most are paraphrases of, or in another
language than, the records they must find, and 12 are known items (an artist's name, a track's
title, a contract number).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["DIRECTORY", "Query", "Record", "load_queries", "load_records"]

DIRECTORY = Path(__file__).resolve().parent / "catalogue"


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    metadata_type: str  # SCHEMA, BUSINESS or TECHNICAL
    schema_name: str
    language: str  # BCP-47: the language of the content's text
    content: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    language: str
    relevant: frozenset[str]  # the keys of the records that match the query's intent


@cache
def load_records() -> tuple[Record, ...]:
    data = json.loads((DIRECTORY / "records.json").read_text(encoding="utf-8"))
    return tuple(
        Record(
            key=item["key"],
            metadata_type=item["metadata_type"],
            schema_name=item["schema_name"],
            language=item["language"],
            content=item["content"],
        )
        for item in data
    )


@cache
def load_queries() -> tuple[Query, ...]:
    data = json.loads((DIRECTORY / "queries.json").read_text(encoding="utf-8"))
    return tuple(
        Query(text=item["text"], language=item["language"], relevant=frozenset(item["relevant"]))
        for item in data
    )
