"""The labelled catalogue: its files are what its generator writes, and its shape is as promised."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from types import ModuleType

from tests.metadata.catalogue import DIRECTORY, load_queries, load_records


def generator() -> ModuleType:
    # Loaded from its path: ``tests.metadata.catalogue`` is the loader module, not this folder.
    spec = importlib.util.spec_from_file_location("catalogue_generate", DIRECTORY / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_files_are_what_the_generator_writes() -> None:
    drafts, queries = generator().build()
    records = load_records()
    assert [r.key for r in records] == [d.key for d in drafts]
    assert [dict(r.content) for r in records] == [d.content for d in drafts]
    assert [r.language for r in records] == [d.language for d in drafts]
    assert [(q.text, q.language, q.relevant) for q in load_queries()] == [
        (q["text"], q["language"], frozenset(q["relevant"])) for q in queries
    ]


def test_the_catalogue_has_the_promised_shape() -> None:
    records, queries = load_records(), load_queries()
    keys = {r.key for r in records}
    assert len(records) >= 300
    assert len(keys) == len(records)
    assert {r.metadata_type for r in records} == {"SCHEMA", "BUSINESS", "TECHNICAL"}
    assert {r.language for r in records} == {"en", "de", "fr", "es"}
    assert Counter(r.language for r in records).most_common(1)[0][0] == "en"
    languages = Counter(q.language for q in queries)
    assert languages["en"] >= 25
    assert languages["de"] >= 25
    assert languages["fr"] >= 3
    assert languages["es"] >= 3
    for query in queries:
        assert 1 <= len(query.relevant) <= 10, query.text
        assert query.relevant <= keys, query.text
    assert len({q.text for q in queries}) == len(queries)
