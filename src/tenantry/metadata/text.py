"""A metadata record's searchable text: what full-text search indexes and the encoder embeds.

Both sides of the hybrid search read the same text, so that a record found by its words and a
record found by its meaning are the same record described the same way. The text is the schema's
name, then each top-level key of the content with its value, ``key: value``, joined by `` · ``:

    album · title: Afterglow · artist: Nachtfalter · release date: 2013-01-01 · tracklist: ...

Keys are humanised (``release_date`` and ``releaseDate`` become ``release date``), and so are
string values that are snake_case identifiers (a schema's field names: ``artist_share`` becomes
``artist share``), because neither a text-search dictionary nor a sentence encoder reads an
identifier as its words. Nested values are flattened in order: a list's items are joined by
``, ``, a mapping's entries by ``; `` (``fields: name: isrc; type: string, name: ...``). Numbers
are kept as written in JSON; booleans read ``yes`` / ``no``; ``null`` and empty values are left
out. The text is at most :data:`MAX_CHARS` characters, cut at a word boundary, and nesting is
followed :data:`MAX_DEPTH` levels deep: a record is described by its first few hundred words,
which is what a 512-token encoder reads anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["MAX_CHARS", "MAX_DEPTH", "humanise", "searchable_text"]

#: The longest searchable text, in characters (about 500 tokens of English).
MAX_CHARS = 2000
#: How deep nested values are followed; anything deeper is left out.
MAX_DEPTH = 6

SEPARATOR = " · "
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")
_SPACES = re.compile(r"\s+")


def humanise(key: str) -> str:
    """``release_date``, ``releaseDate`` and ``release-date`` all read ``release date``."""
    words = _CAMEL.sub(" ", key).replace("_", " ").replace("-", " ")
    return _SPACES.sub(" ", words).strip().lower()


def _scalar(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = _SPACES.sub(" ", value).strip()
        if _IDENTIFIER.fullmatch(text):
            return humanise(text)
        return text or None
    return None


def _flatten(value: object, depth: int) -> str | None:
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return None
        entries = []
        for key, item in value.items():
            text = _flatten(item, depth + 1)
            if text:
                entries.append(f"{humanise(str(key))}: {text}")
        return "; ".join(entries) or None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        if depth >= MAX_DEPTH:
            return None
        items = [text for item in value if (text := _flatten(item, depth + 1))]
        return ", ".join(items) or None
    return _scalar(value)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ·,;:")


def searchable_text(content: Mapping[str, object], schema_name: str | None) -> str:
    """The text that describes a record for search (see the module's documentation)."""
    parts: list[str] = []
    length = 0
    if schema_name:
        parts.append(humanise(schema_name))
        length = len(parts[0])
    for key, value in content.items():
        if length > MAX_CHARS:
            break  # the rest would be cut anyway: do not flatten a huge content for nothing
        text = _flatten(value, 1)
        if text:
            parts.append(f"{humanise(str(key))}: {text}")
            length += len(parts[-1]) + len(SEPARATOR)
    return _cut(SEPARATOR.join(parts), MAX_CHARS)
