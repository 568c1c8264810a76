"""Compatibility of two schemas: the table of cases in every mode, transitivity, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.metadata import CompatibilityMode, check_compatibility, compare
from tests.metadata.cases import CASES, Case, obj

MODES = list(CompatibilityMode)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_each_case_in_each_mode(case: Case) -> None:
    expected = {
        CompatibilityMode.BACKWARD: case.backward,
        CompatibilityMode.FORWARD: case.forward,
        CompatibilityMode.FULL: case.backward and case.forward,
        CompatibilityMode.NONE: True,
    }
    for mode, compatible in expected.items():
        report = compare(case.old, case.new, mode)
        assert report.compatible is compatible, (mode, report.reasons)
        assert report.mode is mode
        assert bool(report.reasons) is not compatible
    if not (case.backward and case.forward):
        reasons = compare(case.old, case.new, CompatibilityMode.FULL).reasons
        assert any(case.reason in r for r in reasons), reasons


def test_transitive_modes_compare_with_every_earlier_version() -> None:
    v1 = obj({"n": {"type": "integer", "maximum": 100}})
    v2 = obj({"n": {"type": "integer", "maximum": 10}})
    v3 = obj({"n": {"type": "integer", "maximum": 50}})
    assert check_compatibility(v3, [v1, v2], "BACKWARD").compatible
    report = check_compatibility(v3, [v1, v2], "BACKWARD_TRANSITIVE")
    assert report.reasons == (
        "version 1: properties.n: 'maximum' narrowed from 100 (old) to 50 (new); breaks BACKWARD",
    )
    forward = check_compatibility(v3, [v1, v2], "FORWARD_TRANSITIVE")
    assert [r[:10] for r in forward.reasons] == ["version 2:"]
    assert len(check_compatibility(v3, [v1, v2], "FULL_TRANSITIVE").reasons) == 2
    assert check_compatibility(v3, [], "FULL_TRANSITIVE").compatible  # a first version


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="SIDEWAYS"):
        compare({}, {}, "SIDEWAYS")


def test_recursive_schemas_terminate() -> None:
    tree = {
        "$defs": {"node": obj({"v": {"type": "integer"}, "kids": {"type": "array", "items": {}}})},
        "$ref": "#/$defs/node",
    }
    tree["$defs"]["node"]["properties"]["kids"]["items"] = {"$ref": "#/$defs/node"}
    assert compare(tree, tree, "FULL").compatible


# Schemas made of the keywords the rules compare: a schema is always compatible with itself.
_leaf = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
        optional={"maxLength": st.integers(0, 9), "minimum": st.integers(-5, 5)},
    ),
    st.builds(lambda vs: {"enum": vs}, st.lists(st.integers(0, 5), min_size=1, unique=True)),
    st.fixed_dictionaries({"default": st.integers()}),
)


def _object(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda props, extra, required: obj(props, tuple(sorted(props))[:required], extra),
        st.dictionaries(st.sampled_from("abcdef"), children, max_size=4),
        st.sampled_from([None, False, True, {"type": "string"}]),
        st.integers(0, 4),
    )


schemas = st.recursive(
    _leaf,
    lambda children: st.one_of(
        _object(children),
        st.builds(lambda items: {"type": "array", "items": items}, children),
        st.builds(lambda a, b: {"anyOf": [a, b]}, children, children),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(schemas, st.sampled_from(MODES))
def test_a_schema_is_compatible_with_itself_in_every_mode(
    schema: dict[str, Any], mode: CompatibilityMode
) -> None:
    report = compare(schema, schema, mode)
    assert report.compatible, report.reasons
    # a copy is the same schema too: the comparison is by value, not identity
    assert check_compatibility(schema, [dict(schema), schema], mode).compatible


@settings(max_examples=150, deadline=None)
@given(schemas, schemas)
def test_full_is_backward_and_forward(old: dict[str, Any], new: dict[str, Any]) -> None:
    full = compare(old, new, "FULL")
    backward, forward = compare(old, new, "BACKWARD"), compare(old, new, "FORWARD")
    assert full.compatible is (backward.compatible and forward.compatible)
    assert full.reasons == backward.reasons + forward.reasons
    assert compare(new, old, "BACKWARD").compatible is forward.compatible
