"""Checks of what callers pass to the MetadataManager, and its page cursors."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tenantry.errors import InvalidInput
from tenantry.metadata.codec import MAX_FIELD_CHARS
from tenantry.metadata.schemas import MetadataRecord, MetadataSearch

__all__ = [
    "MAX_LIMIT",
    "MAX_QUERY",
    "check_fields",
    "check_search",
    "decode_cursor",
    "encode_cursor",
    "version_number",
]

#: The longest search query, in characters.
MAX_QUERY = 1000
#: The most records a page or a search returns.
MAX_LIMIT = 100
#: The most fields a filter compares.
MAX_FILTER_FIELDS = 20


def version_number(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**31 - 1:
        raise InvalidInput(f"{name} must be a positive version number")
    return value


def check_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    if not fields:
        return {}
    if len(fields) > MAX_FILTER_FIELDS:
        raise InvalidInput(f"filter on at most {MAX_FILTER_FIELDS} fields")
    for key, value in fields.items():
        if not isinstance(key, str) or not 0 < len(key) <= 100:
            raise InvalidInput("field names must be 1-100 characters")
        if not _comparable(value):
            shown = InvalidInput.excerpt(key, 100)
            raise InvalidInput(
                f"field {shown}: compare with a string (<= {MAX_FIELD_CHARS} chars), a finite "
                "number or a bool"
            )
    return dict(fields)


def _comparable(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_FIELD_CHARS
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int | bool)


def check_search(search: MetadataSearch) -> None:
    if not isinstance(search, MetadataSearch):
        raise InvalidInput("search must be a MetadataSearch")
    if not isinstance(search.query, str) or not 0 < len(search.query.strip()) <= MAX_QUERY:
        raise InvalidInput(f"query must be 1-{MAX_QUERY} characters")
    if not isinstance(search.limit, int) or not 1 <= search.limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    threshold = search.similarity_threshold
    if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise InvalidInput("similarity_threshold must be between 0 and 1")
    if not search.semantic_search and not search.text_search:
        raise InvalidInput("search by text, by meaning, or both")


def encode_cursor(record: MetadataRecord) -> str:
    raw = json.dumps([record.created_at.isoformat(), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        if not isinstance(cursor, str) or len(cursor) > 400:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, record_id = json.loads(raw)
        return datetime.fromisoformat(stamp), str(record_id)
    except (ValueError, TypeError):
        raise InvalidInput("invalid cursor: pass next_cursor from the previous page") from None
