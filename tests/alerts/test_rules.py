"""Alert rules from YAML, and the inactive -> pending -> firing -> resolved state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.alerts.rules import (
    MAX_RULES,
    AlertRule,
    AlertSeverity,
    AlertState,
    AlertStatus,
    load_rules,
    next_state,
)
from tenantry.errors import InvalidInput

#: The documents' "Alerting" example, verbatim.
DOCUMENTS = """\
alerts:
  - name: high_session_creation_latency
    condition: session_creation_time_p95 > 100ms
    severity: warning

  - name: anomaly_detected
    condition: anomaly_score > 0.9
    severity: critical

  - name: security_threat_detected
    condition: threat_level == "high"
    severity: critical
"""

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_documents_rules() -> None:
    rules = load_rules(DOCUMENTS)
    assert [r.name for r in rules] == [
        "high_session_creation_latency",
        "anomaly_detected",
        "security_threat_detected",
    ]
    assert [r.severity for r in rules] == [
        AlertSeverity.WARNING,
        AlertSeverity.CRITICAL,
        AlertSeverity.CRITICAL,
    ]
    assert rules[0].condition.evaluate({"session_creation_time_p95": 0.2})
    assert rules[2].condition.evaluate({"threat_level": "high"})
    assert rules[0].hold_for == timedelta(0)


def test_for_labels_annotations_and_round_trip() -> None:
    text = """\
- name: slow_search
  condition: 'search_p95{route="/metadata/search"} > 20ms and error_rate < 5%'
  severity: high
  for: 5m
  labels: {team: metadata}
  annotations: {summary: "p95 above 20 ms"}
"""
    (rule,) = load_rules(text)
    assert rule.hold_for == timedelta(minutes=5)
    assert rule.alert_labels() == {
        "alertname": "slow_search",
        "severity": "high",
        "team": "metadata",
    }
    dumped = rule.model_dump(by_alias=True, mode="json")
    assert dumped["for"] == "5m"
    assert dumped["condition"] == 'search_p95{route="/metadata/search"} > 20ms and error_rate < 5%'
    assert AlertRule.model_validate(dumped) == rule


@pytest.mark.parametrize(
    ("text", "loc", "fragment"),
    [
        ("- {name: a, condition: 'x >', severity: info}", ("alerts", 0, "condition"), "position"),
        ("- {name: a, condition: 'x > 1', severity: loud}", ("alerts", 0, "severity"), "info"),
        ("- {name: a, condition: 'x > 1', severity: info, for: 5}", ("alerts", 0, "for"), "5m"),
        ("- {name: a, condition: 'x > 1', severity: info, for: 1x}", ("alerts", 0, "for"), "5m"),
        ("- {name: 1a, condition: 'x > 1', severity: info}", ("alerts", 0, "name"), "rule name"),
        ("- {name: a, condition: 'x > 1'}", ("alerts", 0, "severity"), "required"),
        ("- {name: a, condition: 'x > 1', severity: info, when: now}", ("alerts", 0, "when"), ""),
        (
            "- {name: a, condition: 'x > 1', severity: info, labels: {'b-c': d}}",
            ("alerts", 0, "labels"),
            "invalid name",
        ),
        (
            "- {name: a, condition: 'x > 1', severity: info}\n"
            "- {name: a, condition: 'y > 1', severity: info}",
            ("alerts", 1, "name"),
            "same name",
        ),
    ],
)
def test_each_problem_is_located(text: str, loc: tuple[str | int, ...], fragment: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_rules(text)
    assert [issue.loc for issue in raised.value.issues] == [loc]
    assert fragment in raised.value.detail


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("alerts: [", "not valid YAML at line"),
        ("alerts: {name: a}", "a list"),
        ("just text", "a list"),
        ("- &r {name: a, condition: 'x > 1', severity: info}\n- *r", "alias"),
        ("!!python/object:os.system {}", "not valid YAML"),
    ],
)
def test_malformed_texts(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        load_rules(text)


def test_every_problem_is_listed_at_once() -> None:
    text = "\n".join(f"- {{name: r{i}, condition: 'x >', severity: info}}" for i in range(8))
    with pytest.raises(InvalidInput, match=r"and 3 more") as raised:
        load_rules(text)
    assert len(raised.value.issues) == 8


def test_too_many_rules() -> None:
    text = "- {}\n" * (MAX_RULES + 1)
    with pytest.raises(InvalidInput, match="more than"):
        load_rules(text)


def _run(
    steps: list[tuple[int, bool]], hold_for: timedelta, retention: timedelta = timedelta(minutes=5)
) -> list[AlertStatus]:
    state = AlertState()
    seen = []
    for seconds, holds in steps:
        state = next_state(
            state, holds, T0 + timedelta(seconds=seconds), hold_for=hold_for, retention=retention
        )
        seen.append(state.status)
    return seen


def test_pending_until_it_has_held_for_long_enough() -> None:
    p, f, r, i = AlertStatus.PENDING, AlertStatus.FIRING, AlertStatus.RESOLVED, AlertStatus.INACTIVE
    steps = [(0, True), (30, True), (59, True), (60, True), (90, True), (120, False)]
    assert _run(steps, timedelta(minutes=1)) == [p, p, p, f, f, r]
    # it stops holding while pending: back to inactive, never announced, and the clock restarts
    steps = [(0, True), (30, False), (40, True), (90, True), (100, True)]
    assert _run(steps, timedelta(minutes=1)) == [p, i, p, p, f]
    # no `for`: fires at once
    assert _run([(0, False), (10, True)], timedelta(0)) == [i, f]


def test_resolved_then_inactive_after_the_retention_or_firing_again() -> None:
    f, r, i = AlertStatus.FIRING, AlertStatus.RESOLVED, AlertStatus.INACTIVE
    steps = [(0, True), (10, False), (200, False), (310, False), (320, True)]
    assert _run(steps, timedelta(0)) == [f, r, r, i, f]
    steps = [(0, True), (10, False), (20, True)]
    assert _run(steps, timedelta(seconds=30)) == [AlertStatus.PENDING, i, AlertStatus.PENDING]


def test_times_of_a_firing_alert() -> None:
    state = next_state(AlertState(), True, T0, hold_for=timedelta(seconds=30))
    assert state == AlertState(AlertStatus.PENDING, T0, None, None, T0)
    later = T0 + timedelta(seconds=30)
    state = next_state(state, True, later, hold_for=timedelta(seconds=30))
    assert state == AlertState(AlertStatus.FIRING, T0, later, None, later)
    end = later + timedelta(seconds=5)
    state = next_state(state, False, end, hold_for=timedelta(seconds=30))
    assert state == AlertState(AlertStatus.RESOLVED, None, later, end, end)


def test_clock_errors() -> None:
    with pytest.raises(InvalidInput, match="timezone"):
        next_state(AlertState(), True, datetime(2026, 1, 1))
    state = next_state(AlertState(), True, T0)
    with pytest.raises(InvalidInput, match="before"):
        next_state(state, True, T0 - timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="negative"):
        next_state(state, True, T0, hold_for=timedelta(seconds=-1))


@given(
    st.lists(st.tuples(st.integers(0, 120), st.booleans()), max_size=40),
    st.integers(0, 300),
    st.integers(0, 300),
)
def test_invariants(steps: list[tuple[int, bool]], hold: int, retention: int) -> None:
    """Firing only after holding for `for` without a break; resolved only after firing."""
    state, now, held_since = AlertState(), T0, None
    hold_for, keep = timedelta(seconds=hold), timedelta(seconds=retention)
    was_firing = False
    for gap, holds in steps:
        now += timedelta(seconds=gap)
        state = next_state(state, holds, now, hold_for=hold_for, retention=keep)
        if not holds:
            held_since = None  # the start of the current unbroken run of evaluations that hold
        elif held_since is None:
            held_since = now
        if state.status is AlertStatus.FIRING:
            assert holds
            assert held_since is not None
            assert now - held_since >= hold_for
        if state.status is AlertStatus.PENDING:
            assert holds
            assert held_since is not None
            assert now - held_since < hold_for
        if state.status is AlertStatus.RESOLVED:
            assert was_firing
            assert not holds
            assert state.resolved_at is not None
            assert state.resolved_at == now or now - state.resolved_at < keep
        was_firing = state.status is AlertStatus.FIRING or (
            was_firing and state.status is AlertStatus.RESOLVED
        )
