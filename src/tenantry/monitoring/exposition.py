"""The tenants' series in the Prometheus exposition (``/metrics``), added at each flush.

The collector hands every bucket it wrote to :meth:`TenantExposition.add`, which adds the
bucket's count and sum to prometheus-client metrics labelled ``tenant`` and ``metric``:

- ``tenantry_tenant_metric_count_total`` (a counter): values recorded;
- ``tenantry_tenant_metric_sum`` (a gauge, multiprocess mode ``sum``): their sum. A gauge, not
  a counter, because a recorded value may be negative and a counter may not go down; added
  across worker processes, dead ones included, like a counter.

Recording is untouched: the work is done once per bucket (a series and 10 seconds), by the
flush. A series of the exposition is a tenant's metric *name*: its tags are not labels here (they
are values a tenant chooses, so as labels they would be unbounded); ``GET /monitoring/metrics``
reads them per tag. The cardinality is bounded twice:

- at most ``max_tenants`` tenants are named; the values of any other are counted in
  ``tenantry_tenant_series_overflow_total{tenant="_other"}``;
- at most ``max_series`` metric names of a tenant are named; the values of any other are counted
  in ``tenantry_tenant_series_overflow_total{tenant=<the tenant>}``.

Overflow is counted, never given a series of its own. The first tenants and names seen keep their
place for the life of the process (a counter that moved between series would read as a reset).
Label values are escaped by prometheus-client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from tenantry.monitoring.aggregate import Bucket

__all__ = ["OTHER_TENANTS", "TenantExposition"]

#: The ``tenant`` label of the tenants past the cap (not a valid tenant id: it names none).
OTHER_TENANTS: Final = "_other"


class TenantExposition:
    """The tenants' series as Prometheus metrics in ``registry``; see the module docstring."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_tenants: int = 100,
        max_series: int = 100,
    ) -> None:
        if max_tenants < 0 or max_series < 0:
            raise ValueError("max_tenants and max_series must be >= 0")
        self.max_tenants, self.max_series = max_tenants, max_series
        self.count = Counter(
            "tenantry_tenant_metric_count",
            "Values recorded in a tenant's metric series",
            ["tenant", "metric"],
            registry=registry,
        )
        self.sum = Gauge(
            "tenantry_tenant_metric_sum",
            "Sum of the values recorded in a tenant's metric series",
            ["tenant", "metric"],
            registry=registry,
            multiprocess_mode="sum",
        )
        self.overflow = Counter(
            "tenantry_tenant_series_overflow",
            "Values of tenant series past the exposition's caps (counted, not named)",
            ["tenant"],
            registry=registry,
        )
        self._named: dict[str, set[str]] = {}

    def add(self, buckets: Iterable[Bucket]) -> None:
        """Add the buckets' counts and sums (the collector calls it with what it wrote)."""
        for bucket in buckets:
            tenant, name = bucket.tenant_id, bucket.name
            names = self._named.get(tenant)
            if names is None:
                if len(self._named) >= self.max_tenants:
                    self.overflow.labels(OTHER_TENANTS).inc(bucket.count)
                    continue
                names = self._named[tenant] = set()
            if name not in names:
                if len(names) >= self.max_series:
                    self.overflow.labels(tenant).inc(bucket.count)
                    continue
                names.add(name)
            self.count.labels(tenant, name).inc(bucket.count)
            self.sum.labels(tenant, name).inc(bucket.total)

    def named(self, tenant_id: str) -> frozenset[str]:
        """The metric names of ``tenant_id`` the exposition names."""
        return frozenset(self._named.get(tenant_id, ()))
