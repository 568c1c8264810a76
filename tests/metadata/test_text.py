"""searchable_text: the one description of a record that full-text search and embeddings share."""

from __future__ import annotations

from tenantry.metadata.text import MAX_CHARS, humanise, searchable_text


def test_keys_are_humanised() -> None:
    assert humanise("release_date") == "release date"
    assert humanise("releaseDate") == "release date"
    assert humanise("ISRC") == "isrc"
    assert humanise("royalty-rate__percent") == "royalty rate percent"


def test_a_record_reads_schema_then_key_value_pairs() -> None:
    content = {"title": "Midnight Train", "artist": "Nachtfalter", "release_date": "2021-03-05"}
    assert searchable_text(content, "track") == (
        "track · title: Midnight Train · artist: Nachtfalter · release date: 2021-03-05"
    )
    assert searchable_text(content, None).startswith("title: Midnight Train · ")


def test_nested_values_are_flattened_numbers_kept_nulls_dropped() -> None:
    content = {
        "bpm": 128,
        "gain_db": -1.5,
        "explicit": False,
        "lyrics_language": None,
        "tags": ["techno", "", "warehouse"],
        "fields": [{"name": "artist_share", "type": "decimal"}, {"name": "isrc"}],
        "empty": {},
    }
    assert searchable_text(content, "royalty_schema") == (
        "royalty schema · bpm: 128 · gain db: -1.5 · explicit: no · tags: techno, warehouse"
        " · fields: name: artist share; type: decimal, name: isrc"
    )


def test_prose_is_not_mistaken_for_an_identifier() -> None:
    text = searchable_text({"description": "Uses the  loudness_target\nsetting"}, None)
    assert text == "description: Uses the loudness_target setting"
    assert searchable_text({"name": "loudness_target"}, None) == "name: loudness target"


def test_the_text_is_bounded_at_a_word_boundary() -> None:
    content = {f"field_{i}": "word " * 50 for i in range(100)}
    text = searchable_text(content, "pipeline")
    assert len(text) <= MAX_CHARS
    assert len(text) > MAX_CHARS - 20
    assert text.endswith("word")


def test_deep_nesting_is_cut_off() -> None:
    deep: dict[str, object] = {"leaf": "bottom"}
    for level in range(20):
        deep = {f"level{level}": deep}
    text = searchable_text({"top": "kept", "deep": deep}, None)
    assert text.startswith("top: kept")
    assert "bottom" not in text
