"""Cache counters per tenant, and the Prometheus collector that exposes them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["OTHER_TENANTS", "CacheCollector", "CacheStats", "Counters"]


@dataclass(slots=True)
class Counters:
    """What the manager counts for one tenant (the L1 counts its own hits, evictions and bytes:
    an L1 hit is counted once, by the L1, so the manager's hot path counts nothing)."""

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
        """``l1`` is the tenant's :class:`~tenantry.cache.l1.TenantStats` (hits, evictions, ...)."""
        l1_hits = int(l1.hits)
        hits = l1_hits + counters.l2_hits
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
            l1_hits=l1_hits,
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


#: The label of the tenants a scrape does not name one by one: their counters summed. Not a
#: valid tenant id (ids start with a letter or digit), so it never collides with one.
OTHER_TENANTS = "_other"


def _activity(stats: CacheStats) -> int:
    return stats.hits + stats.misses


class CacheCollector(Collector):
    """``tenantry_cache_*{tenant=...}`` from the manager's stats, read at scrape time.

    At most ``max_tenants`` tenants are named, the most active ones (lookups: hits and misses);
    the rest are summed under ``tenant="_other"``, so the number of series stays bounded however
    many tenants the process serves. A tenant moving in or out of the named set moves its counts
    between its own series and ``_other`` (Prometheus' ``rate`` reads a decrease as a reset).
    """

    def __init__(
        self,
        tenants: Callable[[], Iterable[str]],
        stats: Callable[[str], CacheStats],
        *,
        max_tenants: int = 100,
    ) -> None:
        self._tenants = tenants
        self._stats = stats
        self.max_tenants = max_tenants

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
        for tenant, values in self._rows():
            for name, family in counters.items():
                family.add_metric([tenant], values[name])
            load_time.add_metric([tenant], values["load_seconds"])
            size.add_metric([tenant], values["bytes"])
            entries.add_metric([tenant], values["entries"])
        yield from counters.values()
        yield from (load_time, size, entries)

    def _rows(self) -> list[tuple[str, dict[str, float]]]:
        """(label, values) per named tenant, most active first, then ``_other`` if any."""
        every = sorted(
            (self._stats(tenant) for tenant in self._tenants()),
            key=lambda s: (-_activity(s), s.tenant),
        )
        rows = [(s.tenant, _values(s)) for s in every[: self.max_tenants]]
        rest = [_values(s) for s in every[self.max_tenants :]]
        if rest:
            rows.append((OTHER_TENANTS, {k: sum(v[k] for v in rest) for k in rest[0]}))
        return rows


def _values(stats: CacheStats) -> dict[str, float]:
    names = (*_COUNTED, "load_seconds", "bytes", "entries")
    return {name: float(getattr(stats, name)) for name in names}
