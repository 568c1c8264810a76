"""Cache counters per tenant, and the Prometheus collector that exposes them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CacheCollector", "CacheStats", "Counters"]


@dataclass(slots=True)
class Counters:
    """What the manager counts for one tenant (the L1 counts its own evictions and bytes)."""

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    loads: int = 0
    load_errors: int = 0
    load_seconds: float = 0.0
    stale_served: int = 0
    early_refreshes: int = 0
    prefetches: int = 0
    prefetch_hits: int = 0


@dataclass(frozen=True, slots=True)
class CacheStats:
    tenant: str
    hits: int
    l1_hits: int
    l2_hits: int
    misses: int
    hit_ratio: float
    loads: int
    load_errors: int
    load_seconds: float
    stale_served: int
    early_refreshes: int
    prefetches: int
    prefetch_hits: int
    evictions: int
    entries: int
    bytes: int
    invalidation_delay_p50_ms: float | None
    invalidation_delay_p99_ms: float | None

    @classmethod
    def combine(cls, tenant: str, counters: Counters, l1: Any, delays: list[float]) -> CacheStats:
        hits = counters.l1_hits + counters.l2_hits
        total = hits + counters.misses

        def pct(q: float) -> float | None:
            return (
                round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000, 3)
                if delays
                else None
            )

        return cls(
            tenant=tenant,
            hits=hits,
            l1_hits=counters.l1_hits,
            l2_hits=counters.l2_hits,
            misses=counters.misses,
            hit_ratio=hits / total if total else 0.0,
            loads=counters.loads,
            load_errors=counters.load_errors,
            load_seconds=counters.load_seconds,
            stale_served=counters.stale_served,
            early_refreshes=counters.early_refreshes,
            prefetches=counters.prefetches,
            prefetch_hits=counters.prefetch_hits,
            evictions=int(l1.evictions),
            entries=int(l1.entries),
            bytes=int(l1.bytes),
            invalidation_delay_p50_ms=pct(0.5),
            invalidation_delay_p99_ms=pct(0.99),
        )


_COUNTED = (
    "hits",
    "l1_hits",
    "l2_hits",
    "misses",
    "loads",
    "load_errors",
    "evictions",
    "stale_served",
    "early_refreshes",
    "prefetches",
    "prefetch_hits",
)


class CacheCollector(Collector):
    """``tenantry_cache_*{tenant=...}`` from the manager's stats, read at scrape time."""

    def __init__(
        self, tenants: Callable[[], Iterable[str]], stats: Callable[[str], CacheStats]
    ) -> None:
        self._tenants = tenants
        self._stats = stats

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        counters = {
            name: CounterMetricFamily(
                f"tenantry_cache_{name}", f"Cache {name.replace('_', ' ')}", labels=["tenant"]
            )
            for name in _COUNTED
        }
        load_time = CounterMetricFamily(
            "tenantry_cache_load_seconds", "Time spent in loaders", labels=["tenant"]
        )
        size = GaugeMetricFamily("tenantry_cache_bytes", "L1 bytes held", labels=["tenant"])
        entries = GaugeMetricFamily("tenantry_cache_entries", "L1 entries held", labels=["tenant"])
        for tenant in self._tenants():
            s = self._stats(tenant)
            for name, family in counters.items():
                family.add_metric([tenant], float(getattr(s, name)))
            load_time.add_metric([tenant], s.load_seconds)
            size.add_metric([tenant], float(s.bytes))
            entries.add_metric([tenant], float(s.entries))
        yield from counters.values()
        yield from (load_time, size, entries)
