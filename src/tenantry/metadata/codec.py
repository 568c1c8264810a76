"""A record's content as stored: checked, split into its public and sensitive parts, encoded.

Content is a JSON object. It is stored as canonical JSON (sorted keys, UTF-8), compressed with
zstd from :data:`COMPRESS_THRESHOLD` bytes when that shrinks it; its sensitive fields (or all
of it, for a sensitive record) are kept apart, compressed the same way and sealed with the
tenant's data key by the manager. The version row's ``encoding`` says which parts are
compressed: bit 0 the public payload, bit 1 the sealed part. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import zstandard

from tenantry.errors import ContentTooLarge, InvalidInput

__all__ = [
    "COMPRESS_THRESHOLD",
    "MAX_CONTENT_BYTES",
    "MAX_DEPTH",
    "compress",
    "decompress",
    "dump",
    "load",
    "projection",
    "split",
]

#: The largest content a record holds: bytes of its canonical JSON.
MAX_CONTENT_BYTES: Final = 256 * 1024
#: The deepest nesting of objects and arrays in a record's content.
MAX_DEPTH: Final = 32
#: Content of this many bytes or more is compressed (when zstd makes it smaller).
COMPRESS_THRESHOLD: Final = 1024
#: The longest string value copied into the filterable projection.
MAX_FIELD_CHARS: Final = 200

PUBLIC_COMPRESSED: Final = 1
SEALED_COMPRESSED: Final = 2

_compressor = zstandard.ZstdCompressor(level=3)
_decompressor = zstandard.ZstdDecompressor()


def dump(content: object) -> bytes:
    """Canonical JSON of ``content``, a JSON object within the limits; else InvalidInput."""
    if not isinstance(content, Mapping):
        raise InvalidInput("content must be a JSON object")
    _check_depth(content, 1)
    try:
        text = json.dumps(
            content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"content is not JSON: {exc}") from None
    data = text.encode()
    if len(data) > MAX_CONTENT_BYTES:
        raise ContentTooLarge(
            f"content is {len(data)} bytes of JSON; a record holds at most {MAX_CONTENT_BYTES}"
        )
    return data


def _check_depth(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"content is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"content keys must be strings, not {type(key).__name__}")
            _check_depth(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_depth(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("content numbers must be finite")


def load(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):  # only dump() wrote it
        raise InvalidInput("stored content is not a JSON object")
    return value


def compress(data: bytes) -> tuple[bytes, bool]:
    """``data`` compressed when it is large enough and zstd makes it smaller, and whether it is."""
    if len(data) >= COMPRESS_THRESHOLD:
        packed = _compressor.compress(data)
        if len(packed) < len(data):
            return packed, True
    return data, False


def decompress(data: bytes, compressed: bool) -> bytes:
    if not compressed:
        return data
    # Bounded: a stored frame never holds more than a record may (zstd writes the size).
    return _decompressor.decompress(data, max_output_size=MAX_CONTENT_BYTES)


def split(
    content: Mapping[str, Any], sensitive: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The public and the sensitive top-level fields of ``content``."""
    hidden = set(sensitive)
    public = {k: v for k, v in content.items() if k not in hidden}
    secret = {k: v for k, v in content.items() if k in hidden}
    return public, secret


def projection(public: Mapping[str, Any]) -> dict[str, Any]:
    """The filterable fields: the public top-level scalars (strings up to MAX_FIELD_CHARS)."""
    return {key: value for key, value in public.items() if _filterable(value)}


def _filterable(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_FIELD_CHARS
    return value is None or isinstance(value, bool | int | float)
