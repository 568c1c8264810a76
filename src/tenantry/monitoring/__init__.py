"""Monitoring: metrics recorded cheaply in process, flushed to a tenant-scoped time series,
queried per tenant and exposed to Prometheus."""

__all__: list[str] = []
