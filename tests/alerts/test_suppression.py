"""Silences and inhibition as Alertmanager applies them; inhibition against amlint's simulation
of Alertmanager's inhibitor on generated rules and alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from amlint.routing import Inhibitor
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.alerts.matchers import parse_matcher
from tenantry.alerts.suppression import (
    Silence,
    active_silences,
    inhibited_by,
    is_inhibited,
    is_silenced,
    parse_inhibit_rules,
)
from tenantry.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)

#: The example of Alertmanager's documentation: a critical alert mutes the warning of the same
#: alertname in the same cluster.
DOCUMENTED = yaml.safe_load("""\
- source_matchers: [severity="critical"]
  target_matchers: [severity="warning"]
  equal: [alertname, cluster]
""")


def _silence(*matchers: str, minutes: int = 60) -> Silence:
    return Silence(
        tuple(parse_matcher(m) for m in matchers), T0, T0 + timedelta(minutes=minutes), "s1"
    )


def test_a_silence_mutes_from_its_start_until_its_end() -> None:
    silence = _silence('tenant="a"', 'alertname=~"Slow.*"')
    labels = {"tenant": "a", "alertname": "SlowSearch"}
    assert not is_silenced(labels, [silence], T0 - timedelta(seconds=1))
    assert is_silenced(labels, [silence], T0)
    assert is_silenced(labels, [silence], T0 + timedelta(minutes=59))
    assert not is_silenced(labels, [silence], T0 + timedelta(minutes=60))  # ends_at excluded
    assert not is_silenced({"tenant": "b", "alertname": "SlowSearch"}, [silence], T0)
    assert active_silences(labels, [silence, _silence('tenant="b"')], T0) == [silence]


@pytest.mark.parametrize(
    ("matchers", "fragment"),
    [((), "at least one"), (('a=""',), "must not match"), (('a=~".*"', 'b!="x"'), "must not")],
)
def test_a_silence_cannot_mute_everything(matchers: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        _silence(*matchers)


def test_silence_times() -> None:
    with pytest.raises(InvalidInput, match="before it starts"):
        Silence((parse_matcher('a="b"'),), T0, T0 - timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="timezone"):
        Silence((parse_matcher('a="b"'),), datetime(2026, 1, 1), T0)


def test_the_documented_inhibition() -> None:
    rules = parse_inhibit_rules(DOCUMENTED)
    critical = {"alertname": "Down", "cluster": "eu", "severity": "critical"}
    warning = {"alertname": "Down", "cluster": "eu", "severity": "warning"}
    assert is_inhibited(warning, [critical], rules)
    assert inhibited_by(warning, [critical], rules) == (rules[0], critical)
    assert not is_inhibited({**warning, "cluster": "us"}, [critical], rules)
    assert not is_inhibited(critical, [warning], rules)
    assert not is_inhibited(warning, [], rules)
    # a label missing on both sides is equal
    assert is_inhibited({"severity": "warning"}, [{"severity": "critical"}], rules)


def test_both_sides_do_not_inhibit_each_other() -> None:
    rules = parse_inhibit_rules([{"source_match_re": {"a": ".*"}, "target_match": {"b": "x"}}])
    alert = {"b": "x"}  # matches the source (a="" matches .*) and the target
    assert not is_inhibited(alert, [alert], rules)
    assert is_inhibited(alert, [{"b": "y"}], rules)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"source_matchers": ['a="b"']}, "a list"),
        ([{"source_matchers": ['a="b"'], "equals": ["x"]}], "unknown keys"),
        ([{"equal": "x"}], "list of label names"),
        (["x"], "a mapping"),
        ([{"target_matchers": ["oops"]}], "invalid matcher"),
    ],
)
def test_invalid_inhibit_rules(config: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_inhibit_rules(config)


_M = st.sampled_from(
    ['a="1"', 'a!="1"', 'a=~"1|2"', 'b="x"', 'b!~"x|y"', 'c=""', 'c=~".+"', 'a=~".*"']
)
RULES = st.lists(
    st.fixed_dictionaries(
        {
            "source_matchers": st.lists(_M, max_size=2),
            "target_matchers": st.lists(_M, max_size=2),
        },
        optional={"equal": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True)},
    ),
    max_size=3,
)
ALERT = st.fixed_dictionaries(
    {},
    optional={
        "a": st.sampled_from(["1", "2", "3"]),
        "b": st.sampled_from(["x", "y", "z"]),
        "c": st.sampled_from(["", "q"]),
    },
)


@settings(max_examples=300, deadline=None)
@given(RULES, ALERT, st.lists(ALERT, max_size=4))
def test_agrees_with_amlint(
    config: list[dict[str, Any]], alert: dict[str, str], firing: list[dict[str, str]]
) -> None:
    ours = inhibited_by(alert, firing, parse_inhibit_rules(config))
    theirs = Inhibitor(config).inhibited_by(alert, firing)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert dict(ours[1]) == theirs.source
