"""The alert condition parser: the documents' conditions, units, logic with missing series, the
bounds, and random input that never raises anything but InvalidInput."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.alerts.expressions import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_LENGTH,
    MAX_CONDITION_TERMS,
    And,
    Compare,
    Not,
    Number,
    Or,
    SeriesRef,
    Text,
    parse_condition,
)
from tenantry.errors import InvalidInput


def test_the_documents_conditions() -> None:
    latency = parse_condition("session_creation_time_p95 > 100ms")
    assert latency.root == Compare(
        ">", SeriesRef("session_creation_time_p95"), Number(0.1, "ms"), 26
    )
    assert latency.evaluate({"session_creation_time_p95": 0.15})
    assert not latency.evaluate({"session_creation_time_p95": 0.1})

    anomaly = parse_condition("anomaly_score > 0.9")
    assert anomaly.evaluate({"anomaly_score": 0.95})
    assert not anomaly.evaluate({"anomaly_score": 0.5})

    threat = parse_condition('threat_level == "high"')
    assert threat.root == Compare("==", SeriesRef("threat_level"), Text("high"), 13)
    assert threat.evaluate({"threat_level": "high"})
    assert not threat.evaluate({"threat_level": "low"})


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("250ns", 250e-9),
        ("3us", 3e-6),
        ("100ms", 0.1),
        ("2s", 2.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("5%", 0.05),
        ("7%", 0.07),
        ("80%", 0.8),
        ("100B", 100.0),
        ("2KB", 2000.0),
        ("3MB", 3e6),
        ("1GB", 1e9),
        ("1KiB", 1024.0),
        ("512MiB", 512 * 1024.0**2),
        ("2GiB", 2 * 1024.0**3),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-2.5e-1", -0.25),
    ],
)
def test_units_normalise(literal: str, expected: float) -> None:
    root = parse_condition(f"x >= {literal}").root
    assert isinstance(root, Compare)
    assert isinstance(root.right, Number)
    assert root.right.value == expected


def test_precedence_and_parentheses() -> None:
    root = parse_condition("a > 1 or b > 1 and not c > 1").root
    assert isinstance(root, Or)
    assert isinstance(root.operands[1], And)
    assert isinstance(root.operands[1].operands[1], Not)
    grouped = parse_condition("(a > 1 or b > 1) and c > 1").root
    assert isinstance(grouped, And)
    assert isinstance(grouped.operands[0], Or)
    values = {"a": 2.0, "b": 0.0, "c": 0.0}
    assert parse_condition("a > 1 or b > 1 and c > 1").evaluate(values)
    assert not parse_condition("(a > 1 or b > 1) and c > 1").evaluate(values)


def test_label_selectors_and_series() -> None:
    condition = parse_condition(
        'error_rate{tenant="a", route="/x"} >= 5% and latency.p95{route="/x",} > 1s'
        ' and error_rate{route="/x",tenant="a"} < 50%'
    )
    first = SeriesRef("error_rate", (("route", "/x"), ("tenant", "a")))
    assert condition.series() == (first, SeriesRef("latency.p95", (("route", "/x"),)))
    assert first.key == 'error_rate{route="/x",tenant="a"}'
    values = {first.key: 0.06, 'latency.p95{route="/x"}': 2.0, "error_rate": 0.0}
    assert condition.evaluate(values)
    assert condition.evaluate(lambda ref: values.get(ref.key))
    assert not condition.evaluate({**values, first.key: 0.04})


def test_a_missing_series_never_meets_the_condition() -> None:
    assert not parse_condition("x > 5").evaluate({})
    assert not parse_condition("not x > 5").evaluate({})
    assert parse_condition("not x > 5").evaluate3({}) is None
    assert parse_condition("a > 1 or x > 5").evaluate({"a": 2.0})
    assert not parse_condition("a > 1 and x > 5").evaluate({"a": 2.0})
    assert parse_condition("a > 1 and x > 5").evaluate3({"a": 0.0}) is False
    assert not parse_condition("not (a > 1 and x > 5)").evaluate({"a": 2.0})
    assert parse_condition("not (a > 1 and x > 5)").evaluate({"a": 0.0})


def test_wrong_kinds_and_nan_are_unknown() -> None:
    assert parse_condition('level == "high"').evaluate3({"level": 3.0}) is None
    assert parse_condition("level > 3").evaluate3({"level": "high"}) is None
    assert parse_condition("level != 3").evaluate3({"level": math.nan}) is None
    assert parse_condition("a < b").evaluate({"a": 1.0, "b": 2.0})
    assert parse_condition("-1 < b").evaluate({"b": 0.0})


def test_rendering_parses_back_to_the_same_tree() -> None:
    text = '(a > 1ms or not b{x="q\\"\\n"} == "s\\\\t") and c.d <= -3%'
    condition = parse_condition(text)
    again = parse_condition(str(condition))
    assert str(again) == str(condition)
    assert again.series() == condition.series()


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("x >", 3, "expected a series name"),
        ("x > 5 5", 6, "unexpected '5'"),
        ("x 5", 2, "expected a comparison"),
        ("x > 5parsecs", 5, "unknown unit"),
        ("x > 5ms2", 7, "runs into a name"),
        ("x > 1.", 5, "runs into a name"),
        ('x == "open', 5, "unterminated"),
        ('x == "a\\q"', 7, "unknown escape"),
        ('x > "a"', 2, "only with == or !="),
        ('1 == "a"', 2, "number with a string"),
        ("1 < 2", 2, "two constants"),
        ("(x > 1", 6, "expected ')'"),
        ("x{a=1} > 1", 4, "quoted label value"),
        ('x{a="1", a="2"} > 1', 9, "selected twice"),
        ('x{a="1" b="2"} > 1', 8, "',' or '}'"),
        ("x > 1 & y > 2", 6, "unexpected character '&'"),
        ("x > 1e999", 4, "out of range"),
        ("and > 1", 0, "expected a series name"),
        ("x > - y", 6, "number after '-'"),
        ("x \uff1e 1", 2, "unexpected character"),
    ],
)
def test_errors_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_condition(text)
    assert fragment in raised.value.detail
    assert f"at position {position}" in raised.value.detail
    assert raised.value.issues[0].loc == ("condition", position)


def test_bounds() -> None:
    with pytest.raises(InvalidInput, match="longer than"):
        parse_condition("x > 1 or " * (MAX_CONDITION_LENGTH // 9) + "x > 1")
    nested = "(" * MAX_CONDITION_DEPTH + "x > 1" + ")" * MAX_CONDITION_DEPTH
    assert parse_condition(nested).evaluate({"x": 2.0})
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_condition("(" + nested + ")")
    with pytest.raises(InvalidInput, match="nested deeper"):
        parse_condition("not " * (MAX_CONDITION_DEPTH + 1) + "x > 1")
    many = " or ".join(f"x{i} > 1" for i in range(MAX_CONDITION_TERMS))
    assert len(parse_condition(many).series()) == MAX_CONDITION_TERMS
    with pytest.raises(InvalidInput, match="more than"):
        parse_condition(many + " or y > 1")


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_condition(5)  # type: ignore[arg-type]


_PIECES = st.sampled_from(
    [
        "x", "a.b", "_q", "and", "or", "not", "(", ")", "{", "}", ",", "=", "-", ">", ">=", "<",
        "<=", "==", "!=", "5", "0.5", "1e3", "100ms", "5%", "512MiB", "3parsecs", '"s"', '"\\"',
        '"', " ", "\\", "{a=\"1\"}", "1.", ".", "e", "%", "&",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map(" ".join) | st.text(max_size=80))
def test_random_input_raises_only_invalid_input(text: str) -> None:
    message = ""
    try:
        condition = parse_condition(text)
    except InvalidInput as error:
        message = error.detail
    if message:
        assert "at position" in message
        return
    values = {ref.key: 1.0 for ref in condition.series()}
    assert condition.evaluate3(values) in (True, False, None)
    assert str(parse_condition(str(condition))) == str(condition)


_NAMES = st.from_regex(r"s_[a-z0-9_]{0,6}", fullmatch=True)  # never a keyword of either


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.tuples(
            _NAMES, st.sampled_from([">", ">=", "<", "<=", "==", "!="]), st.integers(-9, 9)
        ).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        lambda inner: st.one_of(
            inner.map(lambda s: f"not ({s})"),
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"({t[0]}) {t[1]} ({t[2]})"
            ),
        ),
        max_leaves=10,
    ),
    st.dictionaries(_NAMES, st.integers(-9, 9), max_size=6),
)
def test_evaluation_agrees_with_python_where_every_series_is_present(
    text: str, values: dict[str, int]
) -> None:
    condition = parse_condition(text)
    complete = {ref.key: float(values.get(ref.key, 0)) for ref in condition.series()}
    # the generated text is Python too: Python's own evaluation is the oracle (test data only)
    expected = bool(eval(text, {"__builtins__": {}}, complete))  # noqa: S307 - test oracle
    assert condition.evaluate(complete) is expected
