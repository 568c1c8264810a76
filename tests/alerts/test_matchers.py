"""Matchers refuse the regexes Python's backtracking engine could spend seconds or years on,
and no text, however odd, raises anything but InvalidInput."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.alerts.matchers import (
    MAX_REGEX_LENGTH,
    Matcher,
    matches_all,
    parse_matcher,
    parse_matchers_text,
)
from tenantry.errors import InvalidInput


@pytest.mark.parametrize(
    "pattern",
    [".*", "api|web", ".*-gw", "[a-z]+-[0-9]+", "(a|b)*", "a{1,10}b{2,}", "(?i)prod", "eu-.*"],
)
def test_allowed(pattern: str) -> None:
    assert Matcher("x", "=~", pattern).value == pattern


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(a+)+", "repeats a repetition"),
        ("(a*)*b", "repeats a repetition"),
        ("(x{2,3}){2,3}", "repeats a repetition"),
        ("(ab|a)*", "repeats an alternation"),
        (".*a.*a.*a.*x", "unbounded repetitions"),
        (".*.*.*", "unbounded repetitions"),
        ("(a)\\1", "backreference"),
        ("a(?=b)", "lookaround"),
        ("a(?<!b)", "lookaround"),
        ("(", "invalid regex"),
        ("a" * (MAX_REGEX_LENGTH + 1), "longer than"),
    ],
)
def test_refused(pattern: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        Matcher("x", "=~", pattern)


def test_unknown_operator() -> None:
    with pytest.raises(InvalidInput, match="operator"):
        Matcher("x", "~", "y")  # type: ignore[arg-type]


def test_matches_all() -> None:
    matchers = [parse_matcher('a="1"'), parse_matcher('b!~"x|y"')]
    assert matches_all(matchers, {"a": "1", "b": "z"})
    assert not matches_all(matchers, {"a": "1", "b": "x"})
    assert matches_all([], {})


def test_several_matchers_in_one_entry() -> None:
    expected = (Matcher("a", "=", "b,c"), Matcher("d", "=~", "e|f"))
    assert parse_matchers_text('{a="b,c", d=~"e|f"}') == expected
    assert parse_matchers_text('a="b,c",d=~"e|f",') == expected
    assert parse_matchers_text("x=y") == (Matcher("x", "=", "y"),)
    for text in ["{", '{a="b"', "", "{}", ",", 'a="b",,c="d"']:
        with pytest.raises(InvalidInput):
            parse_matchers_text(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from('ab.*+?|(){}[]^$\\1,=~!"x -'), max_size=24))
def test_random_matchers_raise_only_invalid_input(text: str) -> None:
    try:
        matchers = parse_matchers_text(text)
    except InvalidInput:
        return
    assert isinstance(matches_all(matchers, {"x": "a" * 64, "a": "ab"}), bool)
