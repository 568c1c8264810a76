"""Per-tenant bulkheads: the cap, the wait, the refusal, and no state left behind."""

from __future__ import annotations

import asyncio

import pytest

from tenantry.connections import Bulkhead
from tenantry.errors import BackendUnavailable, BulkheadFull


async def test_a_tenant_over_its_cap_waits_then_is_refused() -> None:
    bulkhead = Bulkhead("db", max_per_tenant=2, timeout=0.05)
    await bulkhead.acquire("noisy")
    await bulkhead.acquire("noisy")
    with pytest.raises(BulkheadFull, match="'noisy' has 2 calls in flight on db") as refused:
        await bulkhead.acquire("noisy")
    assert refused.value.retry_after == 0.05  # an HTTP answer's Retry-After (at least 1 s)
    await bulkhead.acquire("quiet")  # another tenant is not affected
    assert (bulkhead.in_use("noisy"), bulkhead.in_use("quiet")) == (2, 1)
    assert bulkhead.snapshot()["rejected"] == 1
    assert issubclass(BulkheadFull, BackendUnavailable)
    for tenant in ("noisy", "noisy", "quiet"):
        bulkhead.release(tenant)
    assert bulkhead.snapshot()["tenants_active"] == 0


async def test_the_slot_passes_to_the_next_in_line_in_order() -> None:
    bulkhead = Bulkhead("db", max_per_tenant=1, timeout=5)
    order: list[int] = []
    await bulkhead.acquire("t1")

    async def queued(n: int) -> None:
        async with bulkhead.slot("t1"):
            order.append(n)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(queued(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert bulkhead.snapshot()["waiting"] == 5
    bulkhead.release("t1")
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert bulkhead.snapshot() == {
        "max_per_tenant": 1,
        "tenants_active": 0,
        "in_use": 0,
        "waiting": 0,
        "rejected": 0,
        "admitted": 6,  # the first acquire, then the five handed the slot in turn
        "busiest": {},
    }


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    bulkhead = Bulkhead("db", max_per_tenant=1, timeout=5)
    await bulkhead.acquire("t1")
    waiter = asyncio.create_task(bulkhead.acquire("t1"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    bulkhead.release("t1")
    assert bulkhead.snapshot()["tenants_active"] == 0


async def test_calls_without_a_tenant_and_overrides() -> None:
    bulkhead = Bulkhead("db", max_per_tenant=1, timeout=0, overrides={"big-label": 3})
    for _ in range(10):
        await bulkhead.acquire(None)  # system calls are not capped
    for _ in range(3):
        await bulkhead.acquire("big-label")
    with pytest.raises(BulkheadFull):
        await bulkhead.acquire("big-label")
