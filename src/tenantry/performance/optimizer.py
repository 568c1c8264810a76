"""Optimization rounds: which knobs a strategy turns for the bottlenecks found, and by how much.

Each bottleneck kind maps to the knobs that relieve it, in order, and the direction; a round
turns the first of them that is there and can still move (a knob at its bound, or already off,
passes the bottleneck to the next one):

==================  ====================  =====================================================
bottleneck          knob                  why
==================  ====================  =====================================================
pool_saturated      db_pool_max_size  +   callers queue for connections the driver pool has
                    audit_max_batch   +   then: fewer audit transactions, each taking more
                                          entries, check out the pool less often
tenant_hogging      db_bulkhead_cap   -   one tenant's lane holds what the others wait for
cache_hit_low       cache_l1_bytes    +   misses go to the database (not while memory is high)
memory_high         cache_l1_bytes    -   the L1 is the process's largest memory we control
loop_blocked        cache_prefetch    off background refreshes take loop time from requests
                    ai_batch_max_rows -   then: each stacked prediction runs on the loop; fewer
                                          rows make a shorter block
cpu_saturated       cache_prefetch    off background refreshes cost CPU
                    ai_batch_window   +   then: a longer window stacks more rows per predict
                                          call, whose fixed cost dominates
==================  ====================  =====================================================

A strategy bounds the round: ``conservative`` turns one knob by a tenth of its value (at least
one unit), ``balanced`` two knobs by a quarter, ``aggressive`` every knob found by half; and
``adaptive`` sizes each step by the bottleneck's severity (a tenth, a quarter, a half as the
measured value passes 1.3 and 2 times its threshold), turns at most two knobs, and leaves alone
a knob whose last change was rolled back within the hour. A change never leaves the knob's
bounds (``knobs.py``); a knob at its bound is not turned.

How a change is judged: :class:`Measurement` over the live signals before and after; the round
is kept when the score (lower is better) did not grow by more than ``tolerance``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from tenantry.performance.detection import Bottleneck, Thresholds
from tenantry.performance.knobs import Knob
from tenantry.performance.window import SignalWindow, percentile

__all__ = [
    "RULES",
    "Measurement",
    "OptimizationStrategy",
    "PlannedChange",
    "measure_window",
    "plan",
]

#: bottleneck kind -> (knob, direction) in the order tried; direction 0: turned off.
RULES: Final[dict[str, tuple[tuple[str, int], ...]]] = {
    "pool_saturated": (("db_pool_max_size", 1), ("audit_max_batch", 1)),
    "tenant_hogging": (("db_bulkhead_cap", -1),),
    "cache_hit_low": (("cache_l1_bytes", 1),),
    "memory_high": (("cache_l1_bytes", -1),),
    "loop_blocked": (("cache_prefetch", 0), ("ai_batch_max_rows", -1)),
    "cpu_saturated": (("cache_prefetch", 0), ("ai_batch_window", 1)),
}


class OptimizationStrategy(StrEnum):
    CONSERVATIVE = "conservative"
    BALANCED = "balanced"
    AGGRESSIVE = "aggressive"
    ADAPTIVE = "adaptive"


_STEP: Final = {
    OptimizationStrategy.CONSERVATIVE: (0.1, 1),
    OptimizationStrategy.BALANCED: (0.25, 2),
    OptimizationStrategy.AGGRESSIVE: (0.5, 100),
}


@dataclass(frozen=True, slots=True)
class PlannedChange:
    knob: str
    old: float
    new: float
    reason: str


@dataclass(frozen=True, slots=True)
class Measurement:
    """The live signals over a window, and their score: each one over its threshold, summed
    (0 when all is quiet; lower is better)."""

    values: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


def _step(strategy: OptimizationStrategy, severity: float) -> float:
    if strategy is not OptimizationStrategy.ADAPTIVE:
        return _STEP[strategy][0]
    return 0.5 if severity >= 2 else 0.25 if severity >= 1.3 else 0.1


def plan(
    strategy: OptimizationStrategy,
    bottlenecks: list[Bottleneck],
    knobs: dict[str, Knob],
    *,
    rolled_back: dict[str, datetime] | None = None,
) -> list[PlannedChange]:
    """The changes ``strategy`` makes for ``bottlenecks`` (see the module docstring);
    ``rolled_back``: knob -> when its last change was rolled back, for ``adaptive``."""
    most = 2 if strategy is OptimizationStrategy.ADAPTIVE else _STEP[strategy][1]
    memory_high = any(b.kind == "memory_high" for b in bottlenecks)
    changes: dict[str, PlannedChange] = {}
    for found in sorted(bottlenecks, key=lambda b: -b.severity):
        if found.kind == "cache_hit_low" and memory_high:
            continue
        for name, direction in RULES.get(found.kind, ()):
            if name in changes or name not in knobs:
                continue
            if strategy is OptimizationStrategy.ADAPTIVE and name in (rolled_back or {}):
                continue
            new = _turned(knobs[name], direction, _step(strategy, found.severity))
            if new is not None:
                changes[name] = PlannedChange(name, knobs[name].read(), new, found.evidence)
                break
        if len(changes) >= most:
            break
    return list(changes.values())


def _turned(knob: Knob, direction: int, step: float) -> float | None:
    """The knob's value after a step of ``step`` (a share of its value, at least one unit)
    in ``direction`` (0: off), within its bounds; None when it would not move."""
    old = knob.read()
    if direction == 0:
        new = 0.0
    else:
        unit = 1.0 if knob.integer else 0.0
        delta = max(unit, abs(old) * step)
        new = knob.clamp(old + direction * delta)
        if knob.integer:
            new = knob.clamp(float(math.floor(new) if direction > 0 else math.ceil(new)))
    return None if new == old else new


#: What a measurement reads, and the threshold each is divided by.
MEASURED: Final = {
    "event_loop_lag_seconds": ("p99", "loop_lag_p99"),
    "db_pool_wait_seconds": ("p95", "pool_wait_p95"),
    "request_latency_p95_seconds": ("p95", None),
    "request_error_ratio": ("mean", None),
}


def measure_window(window: SignalWindow, seconds: float, limits: Thresholds) -> Measurement:
    """The signals of the last ``seconds`` seconds: the loop lag's p99, the pool wait's p95 (over
    their thresholds), the request latency's p95 (over 100 ms) and the error ratio (over 1 %)."""
    values: dict[str, float] = {}
    score = 0.0
    for signal, (how, limit_name) in MEASURED.items():
        found = window.values(signal, seconds)
        if not found:
            continue
        if how == "mean":
            value = sum(found) / len(found)
        else:
            value = percentile(found, 0.99 if how == "p99" else 0.95) or 0.0
        values[signal] = value
        if limit_name is not None:
            scale = float(getattr(limits, limit_name))
        else:
            scale = 0.1 if signal == "request_latency_p95_seconds" else 0.01
        score += value / scale
    return Measurement(values, round(score, 6))
