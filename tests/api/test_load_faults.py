"""Load with a fault, for real (issue 18): mixed traffic of several tenants against a running
``tenantry serve`` while its Redis is stopped and started again. No write answered 2xx is lost,
no answer carries another tenant's data, no answer is a 500, and every route class answers again
without the service being restarted. (``benchmarks/bench_load_faults.py`` runs every fault.)"""

from __future__ import annotations

import pytest

from benchmarks.bench_load_faults import FAULTS, Sizes, run_faults
from benchmarks.fault_stack import redis_binary

pytestmark = pytest.mark.skipif(redis_binary() is None, reason="needs redis-server")

SIZES = Sizes(tenants=3, concurrency=3, baseline=1.0, before=0.5, during=1.5, after=1.0)


async def test_redis_stopped_under_load_loses_nothing_and_recovers_without_restart() -> None:
    redis = next(f for f in FAULTS if f.name == "Redis stopped")
    outcome = await run_faults(SIZES, (redis,), workers=0, replica=False)
    (fault,) = outcome.faults
    assert outcome.writes > 10  # the traffic did write, and each write was read back
    assert not outcome.lost, outcome.lost
    assert not outcome.leaks, outcome.leaks
    assert not outcome.service_restarted
    # during the fault: refusals at most, as problem+json; never a 500 or a dropped connection
    assert set(fault.errors) <= {"503 problem+json", "429"}, fault.errors
    assert fault.calls > 0
    recovered = [s for s in fault.recovery.values() if s is not None]
    assert len(recovered) == len(fault.recovery), fault.recovery  # every class answered again
    assert max(recovered) < 30
