"""Threat analysis (:mod:`tenantry.threats.manager`) on a window of 10,000 security events.

One tenant, ``bench-threats``, with ``WINDOW_EVENTS`` events in the analysed hour (mixed kinds,
``USERS`` users, ``IPS`` addresses, a few users and one IP bursting) and ``BASELINE_PER_HOUR``
events in each of the 24 hours before (the baseline of the anomaly score).

- ``analyze_threats()``: the analyzer as shipped: one aggregating statement (per subject, kind
  and 5-minute bin) and the rules in Python; the baseline (per kind and previous window) is
  counted once per minute of an hour's window (``tenantry.threats.baseline``), so it is cached here.
- the same with the baseline recounted on every call (a second statement on a second
  connection, at the same time), as the first analysis of a minute pays it.
- the naive peer: ``SecurityEvents.since`` fetches the window's 10,000 rows, Python builds the
  same per-subject aggregates and applies the same rules (it skips the baseline, which would
  mean fetching 24 times as many rows, so it does less work than the analyzer).

Each sample analyses the whole window, so the plan is capped at ``MAX_ITERATIONS`` per case.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.context import tenant_scope
from tenantry.tenants import TenantRegistry
from tenantry.threats.events import SecurityEvent, SecurityEvents
from tenantry.threats.manager import ThreatAnalyzer, ThreatReport
from tenantry.threats.models import security_events
from tenantry.threats.repository import SubjectAggregate

__all__ = ["BENCHMARK"]

TENANT = "bench-threats"
SEED = 20261122
WINDOW = timedelta(hours=1)
WINDOW_EVENTS = 10_000
BASELINE_PER_HOUR = 400
USERS = 200
IPS = 400
MAX_ITERATIONS = 200
#: Kind and weight (per 1,000 events): mostly the noise of a busy tenant, a few serious kinds.
KINDS = (
    ("session_limit", 380),
    ("new_device", 250),
    ("failed_validation", 250),
    ("step_up_failed", 100),
    ("anomaly", 10),
    ("foreign_tenant_probe", 4),
    ("revoked_token_use", 3),
    ("device_mismatch", 2),
    ("passkey_counter_regression", 1),
)

ANALYZE = "threats analyze_threats(), window of 10,000 events (SQL aggregates)"
COLD = "threats analyze_threats(), baseline recounted (24 x 400 events)"
NAIVE = "threats naive: fetch 10,000 rows with since(), score in Python"
OPERATIONS = (ANALYZE, COLD, NAIVE)
_SEVERITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _events(
    rng: random.Random, start: datetime, span: timedelta, n: int, tenant: str = TENANT
) -> list[dict[str, object]]:
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    rows: list[dict[str, object]] = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        rows.append(
            {
                "tenant_id": tenant,
                "occurred_at": start + span * rng.random(),
                "kind": kind,
                "principal_id": f"user-{rng.randrange(USERS):03d}",
                "ip": f"10.{rng.randrange(IPS) // 250}.{rng.randrange(IPS) % 250}.1",
                "detail": {"score": round(rng.random(), 3)} if kind == "anomaly" else {},
            }
        )
    return rows


def _bursts(start: datetime, tenant: str = TENANT) -> list[dict[str, object]]:
    """Five users with 40 failed validations in two minutes; one IP probing 30 times."""
    rows: list[dict[str, object]] = []
    for user in range(5):
        at = start + timedelta(minutes=10 * user + 3)
        rows += [
            {
                "tenant_id": tenant,
                "occurred_at": at + timedelta(seconds=3 * i),
                "kind": "failed_validation",
                "principal_id": f"user-{user:03d}",
                "ip": "192.0.2.66",
                "detail": {},
            }
            for i in range(40)
        ]
    probe = start + timedelta(minutes=30)
    rows += [
        {
            "tenant_id": tenant,
            "occurred_at": probe + timedelta(seconds=i),
            "kind": "foreign_tenant_probe",
            "principal_id": None,
            "ip": "198.51.100.7",
            "detail": {},
        }
        for i in range(30)
    ]
    return rows


async def fill(env: Environment, now: datetime, tenant: str = TENANT) -> None:
    """Register the tenant and insert the window's events and the baseline's."""
    await TenantRegistry(env.db).create(tenant, "Threats bench")
    rng = random.Random(SEED)
    start = now - WINDOW
    burst_rows = _bursts(start, tenant)
    rows = _events(rng, start, WINDOW, WINDOW_EVENTS - len(burst_rows), tenant) + burst_rows
    for hour in range(1, 25):
        rows += _events(rng, start - WINDOW * hour, WINDOW, BASELINE_PER_HOUR, tenant)
    with tenant_scope(tenant):
        async with env.db.tenant_transaction() as conn:
            for offset in range(0, len(rows), 5000):
                await conn.execute(insert(security_events), rows[offset : offset + 5000])
    engine = env.admin_engine()  # the steady state: autovacuum has analyzed the table
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"ANALYZE {security_events.fullname}"))
    finally:
        await engine.dispose()


def naive_aggregates(
    events: list[SecurityEvent], start: datetime, bucket: timedelta
) -> list[SubjectAggregate]:
    """The repository's aggregates, computed in Python from the rows."""
    bins: Counter[tuple[str, str, str, int]] = Counter()
    severity: dict[tuple[str, str, str], int] = defaultdict(int)
    score: dict[tuple[str, str, str], float] = {}
    for e in events:
        subjects = [("all", "")]
        subjects += [("user", e.principal_id)] if e.principal_id is not None else []
        subjects += [("ip", e.ip)] if e.ip is not None else []
        if e.principal_id is None and e.ip is None:
            subjects.append(("tenant", ""))
        slot = int((e.occurred_at - start) / bucket)
        value = e.detail.get("score")
        for stype, subject in subjects:
            key = (stype, subject, e.kind)
            bins[(*key, slot)] += 1
            severity[key] = max(severity[key], _SEVERITY[e.severity.value])
            if isinstance(value, int | float):
                score[key] = max(score.get(key, float(value)), float(value))
    totals: Counter[tuple[str, str, str]] = Counter()
    peaks: dict[tuple[str, str, str], int] = defaultdict(int)
    for (stype, subject, kind, _), n in bins.items():
        totals[(stype, subject, kind)] += n
        peaks[(stype, subject, kind)] = max(peaks[(stype, subject, kind)], n)
    return [
        SubjectAggregate(
            *key, total=n, peak=peaks[key], severity=severity[key], score=score.get(key)
        )
        for key, n in totals.items()
    ]


async def run(env: Environment, plan: Plan) -> list[Row]:
    now = datetime.now(UTC).replace(microsecond=0)
    await fill(env, now)
    analyzer = ThreatAnalyzer(env.db)
    events = SecurityEvents(env.db)

    async def analyze() -> ThreatReport:
        return await analyzer.analyze_threats(TENANT, WINDOW, now=now)

    async def cold() -> ThreatReport:
        analyzer.baselines.clear()
        return await analyzer.analyze_threats(TENANT, WINDOW, now=now)

    async def naive() -> ThreatReport:
        rows = await events.since(TENANT, now - WINDOW)
        aggregates = naive_aggregates(rows, now - WINDOW, analyzer.burst_bucket)
        return analyzer.score(TENANT, now - WINDOW, now, aggregates, {})

    fast, slow = await analyze(), await naive()
    print(
        f"[threats] level {fast.level}, {len(fast.subjects)} subjects, {fast.total_events} events"
    )
    if fast.total_events != WINDOW_EVENTS or slow.users != fast.users or slow.ips != fast.ips:
        raise AssertionError("the naive peer and the analyzer disagree")
    capped = plan.capped(
        iterations=MAX_ITERATIONS if plan.iterations >= 1000 else 50, warmup=10, memory_iterations=5
    )
    cases = [Case(ANALYZE, analyze, peer=NAIVE), Case(COLD, cold, peer=NAIVE), Case(NAIVE, naive)]
    return await run_cases(cases, capped, module="threats")


BENCHMARK = Benchmark(name="threats", operations=OPERATIONS, run=run)
