"""Bottlenecks: saturation rules over the recent window, and anomaly scores.

Each rule names what is saturated and why, in numbers (the evidence):

- ``pool_saturated``: the database pool's use at or above ``pool_in_use`` of its limit for
  ``pool_for`` seconds, or its checkout waits' p95 at or above ``pool_wait_p95`` over the window
  ("database pool saturated: wait p95 40 ms, 100 % in use for 5 min");
- ``loop_blocked``: the event loop's lag p99 at or above ``loop_lag_p99`` ("event loop blocked:
  lag p99 250 ms");
- ``tenant_hogging``: one tenant holding ``tenant_share`` of the pool or more for ``tenant_for``
  seconds ("tenant acme holds 75 % of the pool (3 of 4) for 30 s");
- ``cpu_saturated``: the process's CPU (one core = 100) at or above ``cpu_percent`` on average
  over the window; ``memory_high``: the host's memory use at or above ``memory_percent``;
- ``cache_hit_low``: a tenant's cache hit ratio below ``cache_hit_ratio`` over at least
  ``cache_min_lookups`` lookups (the ``cache_hit_ratio`` series the service samples);
- ``anomaly``: a signal's last value ``anomaly_z`` robust z-scores or more above its own
  baseline (the window's earlier values): a change no fixed threshold names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from tenantry.performance.window import SignalWindow, percentile, robust_z

__all__ = ["ANOMALY_SIGNALS", "Bottleneck", "Thresholds", "anomaly_scores", "detect"]

#: The signals scored against their own baseline.
ANOMALY_SIGNALS: Final = (
    "event_loop_lag_seconds",
    "db_pool_wait_seconds",
    "request_latency_p95_seconds",
    "request_error_ratio",
    "process_cpu_percent",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each rule fires; every duration in seconds."""

    window: float = 300.0
    pool_in_use: float = 0.95
    pool_for: float = 60.0
    pool_wait_p95: float = 0.02
    loop_lag_p99: float = 0.1
    tenant_share: float = 0.7
    tenant_for: float = 30.0
    cpu_percent: float = 90.0
    memory_percent: float = 90.0
    cache_hit_ratio: float = 0.5
    cache_min_lookups: int = 100
    anomaly_z: float = 6.0


@dataclass(frozen=True, slots=True)
class Bottleneck:
    """What is saturated (``kind``, and ``subject``: a tenant, a signal, or ""), how badly
    (``severity``: the measured value over its threshold, 1 = at it) and the evidence."""

    kind: str
    subject: str
    severity: float
    evidence: str


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _span(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def detect(
    window: SignalWindow,
    limits: Thresholds,
    *,
    cache_ratios: Mapping[str, tuple[float, float]] | None = None,
) -> list[Bottleneck]:
    """Every rule's bottleneck now; ``cache_ratios``: tenant -> (hit ratio, lookups)."""
    found = [*_pool(window, limits), *_loop(window, limits), *_tenants(window, limits)]
    found += _host(window, limits)
    for tenant, (ratio, lookups) in sorted((cache_ratios or {}).items()):
        if lookups >= limits.cache_min_lookups and ratio < limits.cache_hit_ratio:
            found.append(
                Bottleneck(
                    "cache_hit_low",
                    tenant,
                    limits.cache_hit_ratio / max(ratio, 0.01),
                    f"cache hit ratio low for tenant {tenant}: {ratio:.0%} over "
                    f"{lookups:.0f} lookups",
                )
            )
    for signal, score in anomaly_scores(window).items():
        if score >= limits.anomaly_z:
            last = window.last(signal) or 0.0
            found.append(
                Bottleneck(
                    "anomaly",
                    signal,
                    score / limits.anomaly_z,
                    f"{signal} anomalous: {last:.4g} is {score:.1f} robust z-scores above its "
                    "baseline",
                )
            )
    return found


def _pool(window: SignalWindow, limits: Thresholds) -> list[Bottleneck]:
    full_for = window.held_for("db_pool_in_use_ratio", lambda v: v >= limits.pool_in_use)
    waits = window.values("db_pool_wait_seconds", limits.window)
    wait_p95 = percentile(waits, 0.95) or 0.0
    use = window.last("db_pool_in_use_ratio") or 0.0
    held = full_for > 0 and full_for >= limits.pool_for
    if not held and wait_p95 < limits.pool_wait_p95:
        return []
    severity = max(wait_p95 / limits.pool_wait_p95, use / limits.pool_in_use)
    return [
        Bottleneck(
            "pool_saturated",
            "",
            severity,
            f"database pool saturated: wait p95 {_ms(wait_p95)}, {use:.0%} in use"
            + (f" for {_span(full_for)}" if full_for > 0 else ""),
        )
    ]


def _loop(window: SignalWindow, limits: Thresholds) -> list[Bottleneck]:
    lags = window.values("event_loop_lag_seconds", limits.window)
    p99 = percentile(lags, 0.99)
    if p99 is None or p99 < limits.loop_lag_p99:
        return []
    return [
        Bottleneck(
            "loop_blocked",
            "",
            p99 / limits.loop_lag_p99,
            f"event loop blocked: lag p99 {_ms(p99)} over {len(lags)} measurements",
        )
    ]


def _tenants(window: SignalWindow, limits: Thresholds) -> list[Bottleneck]:
    found = []
    for name in window.names("db_pool_tenant_share:"):
        tenant = name.partition(":")[2]
        held_for = window.held_for(name, lambda v: v >= limits.tenant_share)
        share = window.last(name) or 0.0
        if held_for > 0 and held_for >= limits.tenant_for:
            found.append(
                Bottleneck(
                    "tenant_hogging",
                    tenant,
                    share / limits.tenant_share,
                    f"one tenant holds {share:.0%} of the pool: {tenant} for {_span(held_for)}",
                )
            )
    return found


def _host(window: SignalWindow, limits: Thresholds) -> list[Bottleneck]:
    found = []
    cpu = window.values("process_cpu_percent", limits.window)
    if cpu and (mean := sum(cpu) / len(cpu)) >= limits.cpu_percent:
        host = window.last("host_cpu_percent") or 0.0
        found.append(
            Bottleneck(
                "cpu_saturated",
                "",
                mean / limits.cpu_percent,
                f"CPU saturated: the process at {mean:.0f} % of a core on average "
                f"({len(cpu)} samples), the host at {host:.0f} %",
            )
        )
    memory = window.last("host_memory_percent")
    if memory is not None and memory >= limits.memory_percent:
        found.append(
            Bottleneck(
                "memory_high",
                "",
                memory / limits.memory_percent,
                f"host memory high: {memory:.0f} % in use",
            )
        )
    return found


def anomaly_scores(window: SignalWindow) -> dict[str, float]:
    """Each signal's last value against the window's earlier ones (robust z; signals with too
    short a history are left out)."""
    scores = {}
    for signal in ANOMALY_SIGNALS:
        values = window.values(signal, window.horizon)
        if len(values) < 9:
            continue
        score = robust_z(values[-1], values[:-1])
        if score is not None:
            scores[signal] = round(score, 3)
    return scores
