"""When a notification group notifies: group_wait, then changes at group_interval, repeats after
repeat_interval, as Alertmanager's aggregation group and dedup stage decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantry.alerts.grouping import GroupState, flush
from tenantry.alerts.routing import RouteTiming
from tenantry.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMING = RouteTiming(timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=1))


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_first_notification_waits_for_group_wait() -> None:
    state = GroupState(created_at=T0)
    early = flush(state, _at(10), TIMING, firing=frozenset({"a"}))
    assert not early.notify
    assert early.next_at == _at(30)
    assert early.state == state
    first = flush(state, _at(30), TIMING, firing=frozenset({"a", "b"}))
    assert (first.notify, first.reason, first.next_at) == (True, "first", _at(330))
    assert first.state.notified_firing == {"a", "b"}


def test_changes_wait_for_group_interval_and_repeats_for_repeat_interval() -> None:
    state = flush(GroupState(created_at=T0), _at(30), TIMING, firing=frozenset({"a"})).state
    # a new alert at 60 s waits until the next flush, 30 + 300 s
    assert not flush(state, _at(60), TIMING, firing=frozenset({"a", "c"})).notify
    changed = flush(state, _at(330), TIMING, firing=frozenset({"a", "c"}))
    assert (changed.notify, changed.reason) == (True, "new firing alerts")
    state = changed.state
    # nothing changes: quiet at each flush until the last notification is *older* than 1 h
    # (Alertmanager: entry.Timestamp.Before(now - repeat)); at exactly 1 h it is not yet
    for n in range(1, 14):
        step = flush(state, _at(330 + 300 * n), TIMING, firing=frozenset({"a", "c"}))
        assert step.notify is (n == 13), n
        assert step.reason == ("repeat" if n == 13 else "")
        state = step.state
    assert state.notified_at == _at(330 + 3900)


def test_resolved_alerts() -> None:
    state = flush(GroupState(created_at=T0), _at(30), TIMING, firing=frozenset({"a", "b"})).state
    # one resolves: notified with send_resolved, not without
    one = flush(state, _at(330), TIMING, firing=frozenset({"a"}), resolved=frozenset({"b"}))
    assert (one.notify, one.reason) == (True, "newly resolved alerts")
    quiet = flush(
        state, _at(330), TIMING, firing=frozenset({"a"}), resolved=frozenset({"b"}),
        send_resolved=False,
    )  # fmt: skip
    assert not quiet.notify
    # all resolve: notified either way, so the receiver's view is cleared
    every = flush(
        one.state, _at(630), TIMING, firing=frozenset(), resolved=frozenset({"a", "b"}),
        send_resolved=False,
    )  # fmt: skip
    assert (every.notify, every.reason) == (True, "all resolved")
    # fired and resolved between two flushes, never announced: nothing to say
    silent = flush(GroupState(created_at=T0), _at(30), TIMING, firing=frozenset(),
                   resolved=frozenset({"z"}))  # fmt: skip
    assert not silent.notify


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidInput):
        flush(GroupState(created_at=T0), datetime(2026, 1, 1), TIMING, firing=frozenset())


def test_a_group_whose_first_alert_is_old_flushes_at_once() -> None:
    """Alertmanager's rule for a group created after a restart: created_at = the alert's start."""
    state = GroupState(created_at=_at(-600))
    first = flush(state, _at(0), TIMING, firing=frozenset({"a"}))
    assert (first.notify, first.reason) == (True, "first")
