"""Reliability, for real: a worker process SIGKILLed in the middle of its steps while another
runs, and PostgreSQL restarted under a running worker. Every saga ends completed or compensated,
and no step's effect happens twice (the effects are counted in rows of their own). The
scenarios are in ``tests/workflows/scenarios.py`` (``benchmarks/bench_workflows.py`` reports
their counts and recovery times)."""

from __future__ import annotations

import signal
from pathlib import Path

from tenantry.config import Settings
from tenantry.db.engine import Database
from tests.conftest import NewTenant
from tests.workflows.scenarios import check_effects, kill_scenario, restart_scenario

SAGAS = 40


async def test_a_worker_killed_mid_step_loses_nothing_and_repeats_nothing(
    settings: Settings, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("crash", tier="enterprise")).id
    outcome = await kill_scenario(settings, db, tenant, SAGAS)
    assert outcome.killed_code == -signal.SIGKILL
    failing = len(outcome.failing)
    assert outcome.statuses == {"completed": SAGAS - failing, "compensated": failing}
    check_effects(outcome.keys, outcome.ids, outcome.failing)
    assert outcome.duplicates == 0


async def test_workers_finish_their_sagas_across_a_postgres_restart(tmp_path: Path) -> None:
    outcome = await restart_scenario(tmp_path, SAGAS)
    failing = len(outcome.failing)
    assert outcome.statuses == {"completed": SAGAS - failing, "compensated": failing}
    check_effects(outcome.keys, outcome.ids, outcome.failing)
    assert outcome.duplicates == 0
    assert outcome.worker_survived  # the same worker, never restarted
