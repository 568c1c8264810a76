"""The knobs an optimization may turn: live setters of the cache and the connections, each
bounded.

- ``cache_l1_bytes``: the L1 cache's capacity (``TenantL1.set_capacity``), within a quarter and
  four times what it was made with;
- ``cache_prefetch``: the cache's prefetching of related keys, 1 on, 0 off;
- ``db_pool_max_size``: the ceiling of the primary database's pool gate
  (``PoolGate.set_max_size``), from its floor to the database's own pool limit (the gate cannot
  hand out connections the driver pool does not have);
- ``db_bulkhead_cap``: each tenant's cap of the primary's calls in flight
  (``Bulkhead.set_cap``), from 1 to the gate's ceiling;
- ``breaker_failure_rate``: the primary's breaker failure-rate threshold, 0.2 to 0.9 (no rule
  turns it on its own: loosening a breaker while its backend fails is no optimization; it is
  here for an operator's explicit change);
- the batch sizes: ``ai_batch_window`` (seconds the AI manager's micro-batcher holds
  concurrent predictions to stack them, ``MicroBatcher.set_window``) and ``ai_batch_max_rows``
  (the rows that flush a batch at once, ``MicroBatcher.set_max_rows``), and
  ``audit_max_batch`` (audit entries per shared transaction of the audit log's group commit,
  ``AppendCombiner.set_max_batch``): each within a quarter and four times what it was made
  with (and the setter's own limits).

Not knobs: the metadata encoder's texts per engine call (``metadata/encoder.py`` ``BATCH``, a
module constant bounding one call's activations, shared by every encoder of the process) and
the monitoring flush (one transaction per tenant and flush, not a batch size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenantry.ai.batching import MAX_ROWS_LIMIT, MAX_WINDOW, MicroBatcher
from tenantry.audit.batch import MAX_BATCH_LIMIT, AppendCombiner
from tenantry.cache.manager import CacheManager
from tenantry.connections.manager import ConnectionManager
from tenantry.errors import InvalidInput

__all__ = ["Knob", "knobs_of"]


@dataclass(frozen=True, slots=True)
class Knob:
    """A setting that can be read and changed now, within ``[low, high]``."""

    name: str
    low: float
    high: float
    integer: bool
    read: Callable[[], float]
    write: Callable[[float], None]

    def clamp(self, value: float) -> float:
        value = min(self.high, max(self.low, value))
        return float(round(value)) if self.integer else value

    def set(self, value: float) -> float:
        """Set ``value`` (refused outside the bounds); the value set."""
        if not self.low <= value <= self.high:
            raise InvalidInput(
                f"{self.name} must be within [{self.low:g}, {self.high:g}], not {value:g}"
            )
        value = float(round(value)) if self.integer else value
        self.write(value)
        return value


def knobs_of(
    cache: CacheManager | None,
    connections: ConnectionManager | None,
    *,
    batcher: MicroBatcher | None = None,
    audit_batch: AppendCombiner[Any] | None = None,
) -> dict[str, Knob]:
    """The knobs of what the manager was given (none of a component it was not given)."""
    knobs: list[Knob] = [*_batch_knobs(batcher, audit_batch)]
    if cache is not None:
        l1 = cache.l1
        made = l1.capacity_bytes
        knobs.append(
            Knob(
                "cache_l1_bytes",
                max(1, made // 4),
                made * 4,
                True,
                lambda: float(l1.capacity_bytes),
                lambda v: l1.set_capacity(int(v)),
            )
        )

        def prefetch(value: float) -> None:
            cache.prefetch = bool(value)

        knobs.append(Knob("cache_prefetch", 0, 1, True, lambda: float(cache.prefetch), prefetch))
    member = connections.primary_member if connections is not None else None
    if member is not None:
        gate, bulkhead, breaker = member.pool.gate, member.pool.bulkhead, member.breaker
        ceiling = max(gate.sizer.limits.max_size, member.database.pool.limit)
        knobs.append(
            Knob(
                "db_pool_max_size",
                gate.sizer.limits.min_size,
                ceiling,
                True,
                lambda: float(gate.sizer.limits.max_size),
                lambda v: gate.set_max_size(int(v)),
            )
        )
        knobs.append(
            Knob(
                "db_bulkhead_cap",
                1,
                ceiling,
                True,
                lambda: float(bulkhead.max_per_tenant),
                lambda v: bulkhead.set_cap(int(v)),
            )
        )

        def failure_rate(value: float) -> None:
            breaker.failure_rate_threshold = value

        knobs.append(
            Knob(
                "breaker_failure_rate",
                0.2,
                0.9,
                False,
                lambda: float(breaker.failure_rate_threshold),
                failure_rate,
            )
        )
    return {knob.name: knob for knob in knobs}


def _batch_knobs(
    batcher: MicroBatcher | None, audit_batch: AppendCombiner[Any] | None
) -> list[Knob]:
    """The batch sizes' knobs: a quarter to four times what each was made with."""
    knobs: list[Knob] = []
    if batcher is not None:
        window, rows = batcher.window, batcher.max_rows
        knobs.append(
            Knob(
                "ai_batch_window",
                window / 4,
                min(MAX_WINDOW, max(window * 4, 0.001)),
                False,
                lambda: batcher.window,
                batcher.set_window,
            )
        )
        knobs.append(
            Knob(
                "ai_batch_max_rows",
                max(1, rows // 4),
                min(MAX_ROWS_LIMIT, rows * 4),
                True,
                lambda: float(batcher.max_rows),
                lambda v: batcher.set_max_rows(int(v)),
            )
        )
    if audit_batch is not None:
        most = audit_batch.max_batch
        knobs.append(
            Knob(
                "audit_max_batch",
                max(1, most // 4),
                min(MAX_BATCH_LIMIT, most * 4),
                True,
                lambda: float(audit_batch.max_batch),
                lambda v: audit_batch.set_max_batch(int(v)),
            )
        )
    return knobs
