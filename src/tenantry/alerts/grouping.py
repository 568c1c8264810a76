"""When a notification group notifies, as Alertmanager's aggregation groups and its dedup stage
decide, as a pure function of the group's state and the time.

A group is flushed first ``group_wait`` after it was created, then every ``group_interval``.
At a flush it notifies (Alertmanager's ``DedupStage.needsUpdate``):

- the first time, if anything is firing;
- when an alert fires that the last notification did not list as firing;
- when nothing fires any more but the last notification listed firing alerts (all resolved);
- with ``send_resolved``, when an alert resolved that the last notification did not list as
  resolved;
- otherwise, when the last notification is older than ``repeat_interval`` (so a repeat comes at
  the first flush after it: the interval is rounded up to a multiple of ``group_interval``).

Alerts are named by any stable identity (Alertmanager uses label fingerprints). Alertmanager
flushes a new group at once when its first alert started more than ``group_wait`` ago (after a
restart, say): pass that alert's start as ``created_at`` for the same effect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from tenantry.alerts.routing import RouteTiming
from tenantry.errors import InvalidInput

__all__ = ["Flush", "GroupState", "flush"]


@dataclass(frozen=True, slots=True)
class GroupState:
    """A notification group: when it was created, last flushed and last notified, and which
    alerts that notification listed as firing and as resolved."""

    created_at: datetime
    flushed_at: datetime | None = None
    notified_at: datetime | None = None
    notified_firing: frozenset[str] = frozenset()
    notified_resolved: frozenset[str] = frozenset()

    def next_flush(self, timing: RouteTiming) -> datetime:
        if self.flushed_at is None:
            return self.created_at + timing.group_wait
        return self.flushed_at + timing.group_interval


@dataclass(frozen=True, slots=True)
class Flush:
    """What to do at ``now``: ``notify`` or not, why, the group's new state, and the next time
    to ask."""

    notify: bool
    reason: str
    state: GroupState
    next_at: datetime


def _reason(
    state: GroupState,
    now: datetime,
    timing: RouteTiming,
    *,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
) -> str:
    if state.notified_at is None:
        return "first" if firing else ""
    if not firing <= state.notified_firing:
        return "new firing alerts"
    if not firing:
        return "all resolved" if state.notified_firing else ""
    if send_resolved and not resolved <= state.notified_resolved:
        return "newly resolved alerts"
    return "repeat" if state.notified_at < now - timing.repeat_interval else ""


def flush(
    state: GroupState,
    now: datetime,
    timing: RouteTiming,
    *,
    firing: frozenset[str],
    resolved: frozenset[str] = frozenset(),
    send_resolved: bool = True,
) -> Flush:
    """Whether the group notifies at ``now``, given the alerts now ``firing`` and ``resolved``.

    Before the group's next flush time nothing happens (``notify`` false, ``next_at`` that time).
    """
    if now.tzinfo is None:
        raise InvalidInput("the time must be timezone-aware")
    due = state.next_flush(timing)
    if now < due:
        return Flush(False, "", state, due)
    reason = _reason(
        state, now, timing, firing=firing, resolved=resolved, send_resolved=send_resolved
    )
    flushed = replace(state, flushed_at=now)
    if reason:
        flushed = replace(
            flushed, notified_at=now, notified_firing=firing, notified_resolved=resolved
        )
    return Flush(bool(reason), reason, flushed, now + timing.group_interval)
