"""In-process aggregation of recorded values: per series and time slot, drained in batches.

Recording appends a value to its series' list for the current slot (``resolution`` seconds): no
I/O, no lock (one event loop), a dictionary lookup and an append. :meth:`Aggregator.drain` turns
the closed slots into :class:`Bucket` rows (count, sum, min, max and a quantile
:class:`~tenantry.monitoring.sketch.Sketch`), which the collector writes to the tenant's table.

Bounds, so that no tenant can exhaust the process:

- a tenant has at most ``max_series`` series alive (seen within the last hour), or what
  ``series_limit(tenant_id)`` says when it is given and knows the tenant (the service gives its
  tier's ``metric_series``, docs/lifecycle.md); a value of a new series past that is dropped and
  counted (:attr:`Aggregator.dropped`), never stored;
- a series' list is folded into a partial bucket every ``fold_every`` values, so a slot's memory
  does not grow with the rate;
- names and labels are checked when a series is first seen (``[A-Za-z_][A-Za-z0-9_.:]*``, at
  most 16 labels of 256 characters).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from tenantry.errors import InvalidInput
from tenantry.monitoring.sketch import Sketch

__all__ = ["Aggregator", "Bucket", "Labels", "SeriesKey", "check_name", "labels_key", "labels_of"]

#: A series' labels as recorded: a frozenset of (name, value) pairs.
Labels = frozenset[tuple[str, str]]
#: (tenant, metric name, labels).
SeriesKey = tuple[str, str, Labels]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:]{0,127}")
_MAX_LABELS: Final = 16
_MAX_LABEL_VALUE: Final = 256
_ALIVE_SLOTS: Final = 3600  # seconds a series stays counted against the cap, in slots below


def check_name(name: object, what: str = "metric name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"{what} must match [A-Za-z_][A-Za-z0-9_.:]* (at most 128 characters)")
    return name


def labels_key(labels: Labels) -> str:
    """The canonical text of ``labels``: ``name=value`` pairs sorted, comma-separated (values
    with ``\\``, ``,`` or ``=`` escaped), the key a series is stored under."""
    return ",".join(f"{k}={_escape(v)}" for k, v in sorted(labels))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _check_labels(labels: Labels) -> None:
    if len(labels) > _MAX_LABELS:
        raise InvalidInput(f"a metric has at most {_MAX_LABELS} labels")
    names = [k for k, _ in labels]
    if len(set(names)) != len(names):
        raise InvalidInput("a label is given twice")
    for key, value in labels:
        check_name(key, "label name")
        if not isinstance(value, str) or len(value) > _MAX_LABEL_VALUE:
            raise InvalidInput(f"label {key!r}: a value is a string of at most 256 characters")


@dataclass(frozen=True, slots=True)
class Bucket:
    """One series' values of one slot, aggregated."""

    tenant_id: str
    name: str
    labels: Labels
    start: float  # the slot's start, seconds since the epoch
    count: int
    total: float
    minimum: float
    maximum: float
    sketch: Sketch

    def merged(self, other: Bucket) -> Bucket:
        sketch = Sketch(dict(self.sketch.positive), dict(self.sketch.negative), self.sketch.zeros)
        sketch.merge(other.sketch)
        return Bucket(
            self.tenant_id,
            self.name,
            self.labels,
            self.start,
            self.count + other.count,
            self.total + other.total,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            sketch,
        )


def _bucket(key: SeriesKey, start: float, values: list[float]) -> Bucket:
    return Bucket(
        key[0], key[1], key[2], start, len(values), math.fsum(values), min(values), max(values),
        Sketch.of(values),
    )  # fmt: skip


class Aggregator:
    """Values per series and slot; see the module docstring."""

    def __init__(
        self,
        *,
        resolution: int = 10,
        max_series: int = 1000,
        fold_every: int = 65_536,
        clock: Callable[[], float] = time.time,
        series_limit: Callable[[str], int | None] | None = None,
    ) -> None:
        if resolution < 1 or max_series < 1 or fold_every < 1:
            raise ValueError("resolution, max_series and fold_every must be >= 1")
        self.resolution, self.max_series, self.fold_every = resolution, max_series, fold_every
        self._clock = clock
        #: A tenant's cap on its series (None: ``max_series``); asked only for a new series, so
        #: it is synchronous and cheap (no I/O).
        self.series_limit = series_limit
        self._slot = int(clock() // resolution)
        self._values: dict[SeriesKey, list[float]] = {}
        self._partial: dict[SeriesKey, Bucket] = {}
        #: Closed slots not drained yet: slot -> (values, partial buckets).
        self._closed: dict[int, tuple[dict[SeriesKey, list[float]], dict[SeriesKey, Bucket]]] = {}
        #: Series alive per tenant: series -> the last slot it was recorded in.
        self._alive: dict[str, dict[tuple[str, Labels], int]] = {}
        #: Values dropped per tenant because of the series cap (since the process started).
        self.dropped: dict[str, int] = {}

    def record(self, tenant_id: str, name: str, value: float, labels: Labels) -> bool:
        """Add ``value`` to its series; False if it was dropped (the tenant's series cap)."""
        slot = int(self._clock() // self.resolution)
        if slot != self._slot:
            self._close(slot)
        key = (tenant_id, name, labels)
        values = self._values.get(key)
        if values is None:
            if not self._admit(key, slot):
                self.dropped[tenant_id] = self.dropped.get(tenant_id, 0) + 1
                return False
            values = self._values[key] = []
        values.append(value)
        if len(values) >= self.fold_every:
            self._fold(key, values)
        return True

    def _admit(self, key: SeriesKey, slot: int) -> bool:
        alive = self._alive.setdefault(key[0], {})
        series = (key[1], key[2])
        if series not in alive:
            limit = None if self.series_limit is None else self.series_limit(key[0])
            if len(alive) >= (self.max_series if limit is None else limit):
                return False
            check_name(key[1])
            _check_labels(key[2])
        alive[series] = slot
        return True

    def _fold(self, key: SeriesKey, values: list[float]) -> None:
        bucket = _bucket(key, self._slot * self.resolution, values)
        earlier = self._partial.get(key)
        self._partial[key] = bucket if earlier is None else earlier.merged(bucket)
        values.clear()

    def _close(self, slot: int) -> None:
        if self._values or self._partial:
            self._closed[self._slot] = (self._values, self._partial)
        self._values, self._partial, self._slot = {}, {}, slot

    def drain(self, *, everything: bool = False) -> list[Bucket]:
        """The buckets of every closed slot (and of the open one with ``everything``, at close),
        taken out of the aggregator."""
        now = int(self._clock() // self.resolution)
        if now != self._slot or everything:
            self._close(now if now != self._slot else now + 1)
        closed, self._closed = self._closed, {}
        buckets: list[Bucket] = []
        for slot, (values, partial) in sorted(closed.items()):
            start = slot * self.resolution
            for key in values.keys() | partial.keys():
                found = [_bucket(key, start, v)] if (v := values.get(key)) else []
                if (p := partial.get(key)) is not None:
                    found = [p.merged(found[0]) if found else p]
                buckets += found
        self._expire(now)
        return buckets

    def _expire(self, now: int) -> None:
        oldest = now - _ALIVE_SLOTS // self.resolution
        for tenant_id in list(self._alive):
            alive = self._alive[tenant_id]
            for series in [s for s, last in alive.items() if last < oldest]:
                del alive[series]
            if not alive:
                del self._alive[tenant_id]

    def series(self, tenant_id: str) -> int:
        """How many series of ``tenant_id`` are alive (counted against its cap)."""
        return len(self._alive.get(tenant_id, {}))


def labels_of(tags: Mapping[str, str] | None) -> Labels:
    """``tags`` as :data:`Labels`; a value that is not a string is refused."""
    if not tags:
        return frozenset()
    try:
        return frozenset(tags.items())
    except (AttributeError, TypeError):
        raise InvalidInput("tags must map label names to strings") from None
