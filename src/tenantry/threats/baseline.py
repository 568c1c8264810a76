"""The baseline of the threat analysis: per kind, the event counts of the windows before one.

A baseline covers ``windows`` windows of the analysed length that end at an *anchor*: the
window's start floored to a ``step`` of 1/60 of the window (a minute for an hour), so that
analyses a few seconds apart share one baseline instead of each scanning ``windows`` times the
window's events. The baseline lies wholly in the past, so a cached one only goes stale through
events recorded with an old ``occurred_at``; it is recomputed once the anchor moves on.
The cache is per analyzer and process, bounded to ``size`` (tenant, window) pairs (LRU).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tenantry.threats.repository import BaselineCount

__all__ = ["BaselineCache", "History", "anchor"]

#: Per kind, the counts of the windows before the anchor (index 0: the one just before).
History = dict[str, list[int]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def anchor(start: datetime, window: timedelta) -> datetime:
    """``start`` floored to 1/60 of ``window`` (at least one second), from the Unix epoch."""
    step = max(window / 60, timedelta(seconds=1))
    return start - (start - _EPOCH) % step


def history(counts: Sequence[BaselineCount], windows: int) -> History:
    """The per-kind count lists of ``counts`` (windows without events count 0)."""
    out: History = {}
    for c in counts:
        if 0 <= c.index < windows:
            out.setdefault(c.kind, [0] * windows)[c.index] = c.count
    return out


class BaselineCache:
    """The last baseline of each (tenant, window length), with the anchor it was taken at."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, timedelta], tuple[datetime, History]] = OrderedDict()

    def get(self, tenant_id: str, window: timedelta, at: datetime) -> History | None:
        """The baseline anchored at ``at``, if it is the one kept."""
        entry = self._entries.get((tenant_id, window))
        if entry is None or entry[0] != at:
            return None
        self._entries.move_to_end((tenant_id, window))
        return entry[1]

    def put(self, tenant_id: str, window: timedelta, at: datetime, baseline: History) -> None:
        self._entries[(tenant_id, window)] = (at, baseline)
        self._entries.move_to_end((tenant_id, window))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
