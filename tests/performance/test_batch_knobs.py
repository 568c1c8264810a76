"""The batch sizes as knobs: the AI micro-batcher's window and rows, the audit group commit's
entries per transaction; bounded, live, and turned by an optimization round like the others."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from tenantry.ai import AIManager, MicroBatcher
from tenantry.audit.batch import AppendCombiner, Outcome
from tenantry.audit.manager import AuditLog
from tenantry.cache import CacheManager
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.monitoring import MonitoringManager
from tenantry.performance import OptimizationStrategy, PerformanceManager, Thresholds
from tests.performance.test_manager import audited_rounds, scripted


def manager(db: Database, settings: Settings, **given: object) -> PerformanceManager:
    return PerformanceManager(db, settings=settings, **given)  # type: ignore[arg-type]


async def test_the_batch_knobs_exist_bounded_by_what_they_were_made_with(
    db: Database, settings: Settings
) -> None:
    ai = AIManager(db, settings=settings, batcher=MicroBatcher(window=0.01, max_rows=512))
    audit_log = AuditLog(db)
    performance = manager(db, settings, ai=ai, audit_log=audit_log)
    knobs = performance.knobs
    assert {"ai_batch_window", "ai_batch_max_rows", "audit_max_batch"} <= set(knobs)
    bounds = {name: (knobs[name].low, knobs[name].high) for name in knobs}
    assert bounds["ai_batch_window"] == (0.0025, 0.04)
    assert bounds["ai_batch_max_rows"] == (128, 2048)
    assert bounds["audit_max_batch"] == (125, 2000)
    assert knobs["audit_max_batch"].read() == 500.0
    with pytest.raises(InvalidInput, match=r"ai_batch_max_rows must be within \[128, 2048\]"):
        knobs["ai_batch_max_rows"].set(4096)
    with pytest.raises(InvalidInput, match=r"ai_batch_window must be within"):
        knobs["ai_batch_window"].set(0.5)
    with pytest.raises(InvalidInput, match=r"audit_max_batch must be within \[125, 2000\]"):
        knobs["audit_max_batch"].set(10)
    assert (ai.batcher.window, ai.batcher.max_rows, audit_log.combiner.max_batch) == (
        0.01,
        512,
        500,
    )
    # the setters refuse what no knob would give either
    with pytest.raises(InvalidInput, match="batch window"):
        ai.batcher.set_window(-1)
    with pytest.raises(InvalidInput, match="max_rows"):
        ai.batcher.set_max_rows(0)
    with pytest.raises(InvalidInput, match="audit batch"):
        audit_log.combiner.set_max_batch(True)
    # without the components, no knobs of theirs
    assert not {"ai_batch_window", "audit_max_batch"} & set(manager(db, settings).knobs)


def counting() -> tuple[list[int], Callable[[np.ndarray], list[float]]]:
    """A predict that counts its calls' rows."""
    calls: list[int] = []

    def run(rows: np.ndarray) -> list[float]:
        calls.append(len(rows))
        return [float(r.sum()) for r in rows]

    return calls, run


async def test_a_micro_batcher_knob_changes_the_live_batcher(
    db: Database, settings: Settings
) -> None:
    batcher = MicroBatcher(window=0.01, max_rows=512)
    performance = manager(db, settings, ai=AIManager(db, settings=settings, batcher=batcher))
    knobs = performance.knobs
    # max_rows: 200 rows flush at once after the knob went down to 128 (not at 512)
    knobs["ai_batch_max_rows"].set(128)
    calls, run = counting()
    waiting = asyncio.create_task(batcher.submit("m", np.ones((200, 3)), run))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # a turn of the loop, no window's timer
    assert waiting.done()
    assert calls == [200]
    assert len(waiting.result()) == 200
    # the window: a request 15 ms after another joins its batch once the window is 40 ms
    knobs["ai_batch_window"].set(0.04)

    async def late() -> list[float]:
        await asyncio.sleep(0.015)
        return await batcher.submit("m", np.ones((1, 3)), run)

    calls.clear()
    await asyncio.gather(batcher.submit("m", np.ones((1, 3)), run), late())
    assert calls == [2]
    knobs["ai_batch_window"].set(0.0025)
    calls.clear()
    await asyncio.gather(batcher.submit("m", np.ones((1, 3)), run), late())
    assert calls == [1, 1]


async def test_the_audit_batch_knob_changes_the_live_group_commit(
    db: Database, settings: Settings
) -> None:
    """The combiner's writer is the audit log's interface (``write(tenant, take)``); here one
    that records what each transaction took."""
    taken: list[int] = []

    async def write(tenant_id: str, take: Callable[[], list[list[int]]]) -> list[Outcome]:
        await asyncio.sleep(0.01)  # the others queue meanwhile
        submissions = take()
        taken.append(sum(len(s) for s in submissions))
        return [list(s) for s in submissions]

    combiner: AppendCombiner[int] = AppendCombiner(write)
    audit_log = AuditLog(db)
    audit_log.combiner = combiner  # type: ignore[assignment]
    knob = manager(db, settings, audit_log=audit_log).knobs["audit_max_batch"]
    knob.set(125)
    await asyncio.gather(*(combiner.submit("t", [n] * 50) for n in range(6)))
    assert taken == [100, 100, 100]  # whole submissions, at most 125 entries a transaction
    taken.clear()
    knob.set(2000)
    await asyncio.gather(*(combiner.submit("t", [n] * 50) for n in range(6)))
    assert taken == [300]


@pytest.mark.parametrize(("after", "outcome"), [(0.5, "kept"), (3.0, "rolled_back")])
async def test_a_blocked_loop_turns_the_ai_batch_down_measured_and_kept_or_rolled_back(
    db: Database, settings: Settings, after: float, outcome: str
) -> None:
    """Prefetching already off (the first knob of a blocked loop): the round turns the AI
    micro-batcher's rows down, and keeps or rolls back the change by the measurement."""
    batcher = MicroBatcher(max_rows=512)
    asked, measure = scripted(1.0, after)
    performance = PerformanceManager(
        db,
        monitoring=MonitoringManager(db),
        cache=CacheManager(l1_bytes=1_000_000, prefetch=False),
        ai=AIManager(db, settings=settings, batcher=batcher),
        settings=settings,
        thresholds=Thresholds(loop_lag_p99=0.1),
        measure=measure,  # type: ignore[arg-type]
    )
    await performance.start_monitoring()
    try:
        await asyncio.sleep(0.6)
        time.sleep(1.2)  # noqa: ASYNC251 - the point: the loop is blocked
        await asyncio.sleep(0.6)  # the lag task wakes late, and measures it
        result = await performance.optimize_performance(OptimizationStrategy.CONSERVATIVE)
    finally:
        await performance.close()
    assert asked == ["before", "after"]
    assert "loop_blocked" in {b.kind for b in result.bottlenecks}
    assert [(c.knob, c.old_value, c.new_value) for c in result.changes] == [
        ("ai_batch_max_rows", 512.0, 461.0)  # conservative: a tenth
    ]
    assert result.outcome == outcome
    assert batcher.max_rows == (461 if outcome == "kept" else 512)
    stored = [c for c in await performance.changes() if str(c["round_id"]) == result.round_id]
    assert [(c["knob"], c["outcome"]) for c in stored] == [("ai_batch_max_rows", outcome)]
    assert ("knob:ai_batch_max_rows", result.round_id, outcome) in await audited_rounds(db)
