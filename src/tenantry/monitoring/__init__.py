"""Monitoring: metrics recorded cheaply in process, flushed to a tenant-scoped time series,
queried per tenant, and counted in the Prometheus exposition."""

from tenantry.monitoring.aggregate import Aggregator
from tenantry.monitoring.exposition import TenantExposition
from tenantry.monitoring.load import hourly_load
from tenantry.monitoring.manager import MetricsCollector, MonitoringManager
from tenantry.monitoring.schemas import Aggregation, MetricPoint, MetricSeries

__all__ = [
    "Aggregation",
    "Aggregator",
    "MetricPoint",
    "MetricSeries",
    "MetricsCollector",
    "MonitoringManager",
    "TenantExposition",
    "hourly_load",
]
