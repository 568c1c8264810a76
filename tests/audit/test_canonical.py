"""Audit entries are canonical JSON as RFC 8785 defines it (issue 12: keys were sorted by code
point, not by UTF-16 code units, so entries with keys beyond the BMP were not JCS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.audit import AuditEntry
from tenantry.audit.schemas import canonical_bytes

#: RFC 8785, section 3.2.3: the sorting example, with its expected order.
SORTING = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\U0001f600": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}
SORTED = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
)


def _entry(detail: dict[str, object]) -> AuditEntry:
    moment = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    return AuditEntry(actor="a", action="x", tenant="t", time=moment, detail=detail)


def test_keys_sort_by_utf16_code_units() -> None:
    data = canonical_bytes(_entry(SORTING)).decode()
    assert '"detail":' + SORTED + "," in data


def test_the_whole_entry_is_jcs() -> None:
    data = canonical_bytes(_entry({"b": [1, True, None], "a": "\u00e9\n"}))
    assert data == (
        b'{"action":"x","actor":"a","detail":{"a":"\xc3\xa9\\n","b":[1,true,null]},'
        b'"frameworks":[],"outcome":"success","request_id":null,"resource":"","tenant":"t",'
        b'"time":"2026-11-21T10:00:00.000000Z","v":1}'
    )


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 1.5])
def test_numbers_without_one_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="canonical"):
        canonical_bytes(_entry({"n": value}))


_KEYS = st.text(max_size=6)  # the whole of Unicode: BMP, beyond it, lone surrogates
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**54), 2**54)
    | st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53)])  # the edges of JCS's integers
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.dictionaries(_KEYS, _JSON, max_size=5))
def test_the_fast_encoder_writes_what_rfc8785_writes(detail: dict[str, object]) -> None:
    """The C encoder's bytes (every key in the BMP) are the rfc8785 package's, and what one
    refuses the other refuses: keys beyond the BMP (their order differs) go to rfc8785."""
    entry = _entry(detail)
    obj = json.loads(canonical_bytes(_entry({})))
    obj["detail"] = detail
    try:
        expected: bytes | None = rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="canonical"):
            canonical_bytes(entry)
    else:
        assert canonical_bytes(entry) == expected
