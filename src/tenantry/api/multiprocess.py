"""``/metrics`` with several worker processes: prometheus-client's multiprocess mode.

With ``tenantry serve --workers N`` (N > 1), or ``PROMETHEUS_MULTIPROC_DIR`` set, the command
points ``PROMETHEUS_MULTIPROC_DIR`` at a directory (``<data dir>/prometheus-multiproc`` unless
given) and empties it of the last run's files before the workers start: each worker, importing
prometheus-client with the variable set, writes its counters, histograms and gauges to files of
its own there, and whichever worker answers a scrape adds every worker's files up
(:class:`~prometheus_client.multiprocess.MultiProcessCollector` over a fresh registry). A worker
that stops is marked dead (:func:`~prometheus_client.multiprocess.mark_process_dead`): the
gauges of the ``live*`` modes drop it; counters and ``sum`` gauges keep what it counted.

The custom collectors (the database pools, the cache's counters per tenant) read the memory of
the process that answers the scrape, which is one worker chosen by the kernel, a different one
from scrape to scrape: exposed unchanged they would jump between workers' values, and with a
``pid`` label every scrape would show one worker's series and hide the others'. In multiprocess
mode they are left out; the cache hit ratio per tenant, the breaker states, the sessions created
and the audit backlog reach ``/metrics`` through the tenants' series instead (the sampler records
them, the flush adds them to ``tenantry_tenant_metric_*``, added up across workers).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values

from tenantry.config import Settings
from tenantry.errors import BackendUnavailable

__all__ = ["MULTIPROC_ENV", "mark_dead", "multiprocess_dir", "prepare", "render"]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
#: Reads of the workers' files before a scrape gives up (a file is empty only for an instant).
_READS: Final = 3


def multiprocess_dir() -> str | None:
    """The directory of every worker's metrics when this process imported prometheus-client in
    its multiprocess mode (the variable was set before), else None."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and values.ValueClass is not values.MutexValue else None


def prepare(settings: Settings, workers: int) -> Path | None:
    """In the command, before any worker starts: the multiprocess directory, made and emptied
    of an earlier run's files, set in the environment the workers inherit; None for one worker
    (and no directory given)."""
    given = os.environ.get(MULTIPROC_ENV)
    if workers <= 1 and not given:
        return None
    path = Path(given) if given else Path(settings.data_dir).resolve() / "prometheus-multiproc"
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # only prometheus-client's files, in a directory given
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def render(registry: CollectorRegistry) -> bytes:
    """The exposition: ``registry`` in one process; every worker's files added up in
    multiprocess mode (see the module docstring)."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(registry)
    for _ in range(_READS):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
        try:
            return generate_latest(merged)
        except struct.error:  # a worker's file in the instant between its creation and sizing
            continue
    raise BackendUnavailable("the workers' metric files could not be read; try again")


def mark_dead() -> None:
    """At the end of a worker's lifespan, in multiprocess mode: its ``live*`` gauges drop."""
    path = multiprocess_dir()
    if path is not None:
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
