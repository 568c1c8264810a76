"""The signals of this process, sampled into the monitoring series and the recent window.

Every :meth:`PerformanceSampler.sample` records, under the platform tenant (they are the
process's and the host's, not a tenant's):

- ``process_cpu_percent``, ``process_rss_bytes``, ``host_cpu_percent``,
  ``host_memory_percent`` (psutil);
- the primary database pool's ``db_pool_in_use_ratio`` (in use over the gate's limit),
  ``db_pool_waiting`` (callers queued) and ``db_pool_wait_seconds`` (the p95 of the interval's
  checkout waits, the ones that did not wait counted as 0), read from the connections' pool gate
  (``connections/pools.py``), or from the database's own pool (``db/pool.py``) when the manager
  was given no connection manager;
- ``requests_per_second``, ``request_error_ratio`` (5xx over all) and
  ``request_latency_p95_seconds``: every request of the process in the interval (the service's
  middleware tells the :class:`RequestTally`; per tenant and route, the middleware's own
  ``http_request_seconds`` series already holds them).

and under each tenant holding connections of the pool now, ``db_pool_in_use`` (its bulkhead
lane's calls in flight). :meth:`sample_lag` records ``event_loop_lag_seconds``, measured by
:class:`~tenantry.performance.lag.LoopLag`. The cache hit ratio and the breaker states are
sampled by the service's ``ServiceSampler`` (``cache_hit_ratio``, ``breaker_open``): read from
there, not sampled twice.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Final

import psutil

from tenantry.connections.manager import ConnectionManager
from tenantry.context import PLATFORM_TENANT
from tenantry.db.engine import Database
from tenantry.errors import TenantryError
from tenantry.logging import get_logger
from tenantry.monitoring.manager import MonitoringManager
from tenantry.performance.window import SignalWindow, percentile

__all__ = ["PerformanceSampler", "RequestTally", "tenant_share_signal"]

#: The shortest interval a CPU share is measured over, and the most a process can use.
_MIN_CPU_INTERVAL: Final = 0.1
_MAX_CPU_PERCENT: Final = 100.0 * (psutil.cpu_count() or 1)
_log = get_logger("tenantry.performance")
_LATENCIES: Final = 8192


def tenant_share_signal(tenant: str) -> str:
    """The window's name of ``tenant``'s share of the pool."""
    return f"db_pool_tenant_share:{tenant}"


class RequestTally:
    """Requests of the process since the last take: count, server errors, recent latencies."""

    def __init__(self) -> None:
        self.count = self.errors = 0
        self.latencies: deque[float] = deque(maxlen=_LATENCIES)

    def observe(self, seconds: float, status: int) -> None:
        """One request ended (the middleware calls this): cheap, no I/O."""
        self.count += 1
        if status >= 500:
            self.errors += 1
        self.latencies.append(seconds)

    def take(self) -> tuple[int, int, list[float]]:
        taken = self.count, self.errors, list(self.latencies)
        self.count = self.errors = 0
        self.latencies.clear()
        return taken


class PerformanceSampler:
    """Samples the signals of the module docstring; see there."""

    def __init__(
        self,
        monitoring: MonitoringManager,
        window: SignalWindow,
        *,
        database: Database | None = None,
        connections: ConnectionManager | None = None,
        requests: RequestTally | None = None,
    ) -> None:
        self.monitoring, self.window = monitoring, window
        self.database, self.connections = database, connections
        self.requests = requests or RequestTally()
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement
        psutil.cpu_percent(None)
        self._cpu_since = time.monotonic()
        self._checkouts = self._waited = 0
        self._last_request_sample: float | None = None

    def _record(self, name: str, value: float, tenant: str = PLATFORM_TENANT) -> None:
        try:
            self.monitoring.record(name, value, None, tenant)
        except TenantryError as exc:  # a series cap: the window still has it
            _log.debug("performance sample refused", name=name, error=exc.detail)

    def _signal(self, name: str, value: float) -> None:
        self.window.add(name, value)
        self._record(name, value)

    def sample(self) -> None:
        """Process, host, pool and requests (see the module docstring)."""
        now = time.monotonic()
        # CPU over less than a tenth of a second is noise (psutil divides by that interval): a
        # sample that soon after the last one leaves the CPU signals out
        timed, self._cpu_since = now - self._cpu_since >= _MIN_CPU_INTERVAL, now
        with self._process.oneshot():
            process_cpu = self._process.cpu_percent(None)
            if timed:
                self._signal("process_cpu_percent", min(process_cpu, _MAX_CPU_PERCENT))
            self._signal("process_rss_bytes", float(self._process.memory_info().rss))
        host_cpu = psutil.cpu_percent(None)
        if timed:
            self._signal("host_cpu_percent", host_cpu)
        self._signal("host_memory_percent", psutil.virtual_memory().percent)
        self.sample_pool()
        self._sample_requests()

    def sample_pool(self) -> None:
        """The pool's use, queue and checkout waits, and each tenant's part of it."""
        member = self.connections.primary_member if self.connections is not None else None
        if member is not None:
            gate = member.pool.gate
            limit, in_use, waiting = gate.limit, gate.in_use, gate.waiting
            checkouts, waited = gate.checkouts - self._checkouts, gate.waited - self._waited
            self._checkouts, self._waited = gate.checkouts, gate.waited
            recent = list(gate.waits)
            waits = recent[len(recent) - min(waited, len(recent)) :] if waited > 0 else []
            waits += [0.0] * max(0, checkouts - waited)
            lanes = member.pool.bulkhead.lanes()
        elif self.database is not None:
            stats = self.database.pool.stats()
            limit = self.database.pool.limit
            in_use, waiting = stats["checked_out"], stats["waiting"]
            waits, lanes = [], {}
        else:
            return
        self._signal("db_pool_in_use_ratio", in_use / max(1, limit))
        self._signal("db_pool_waiting", float(waiting))
        if waits:
            self._signal("db_pool_wait_seconds", percentile(waits, 0.95) or 0.0)
        for tenant in self.window.names("db_pool_tenant_share:"):
            if tenant.partition(":")[2] not in lanes:
                self.window.add(tenant, 0.0)  # a tenant that let go: followed down to 0
        for tenant, held in lanes.items():
            self.window.add(tenant_share_signal(tenant), held / max(1, limit))
            self._record("db_pool_in_use", float(held), tenant)

    def sample_lag(self, lag: float) -> None:
        self._signal("event_loop_lag_seconds", lag)

    def _sample_requests(self) -> None:
        now = self.window.now()
        since, self._last_request_sample = self._last_request_sample, now
        count, errors, latencies = self.requests.take()
        if since is None or now <= since:
            return
        self._signal("requests_per_second", count / (now - since))
        if count:
            self._signal("request_error_ratio", errors / count)
            self._signal("request_latency_p95_seconds", percentile(latencies, 0.95) or 0.0)
