"""The audit log: append throughput with 8 concurrent writers, and proofs on a 1,000,000-leaf tree.

Concurrent appends of one tenant are group-committed (they share one transaction,
``tenantry.audit.batch``), so each append row has two plain peers doing the same inserts: the
same number of separate transactions (8 writers at once, ``PLAIN``/``PLAIN_MANY``: the append
row's ratio) and one transaction of the same rows (``PLAIN_ONE``/``PLAIN_MANY_ONE``, whose ratio is
over the append row). ``--quick`` builds a 20,000-leaf tree instead (a smoke test).

Appends go through :class:`~tenantry.audit.manager.AuditLog` on one tenant (the advisory lock
in the transaction's opening message, then per chunk one statement that checks the tree state
and writes the entries and the nodes they complete; concurrent calls share a transaction); the
peer is a plain ``INSERT`` of the same row (same columns, canonical bytes and leaf hash computed,
row-level security on, in a tenant transaction) into ``bench_audit_plain``, with no tree work
and no lock. Both run 8 writers at once (``asyncio.gather``); each call is one round of 8, so the
per-call latency is the round's time over the appends it made, and ops/s is appends per second.

The million-leaf tree is built in bulk: leaf hashes and every complete subtree computed in Python
(:class:`~tenantry.audit.merkle.CompactRange`), then ``COPY``-ed into ``audit_entries`` and
``audit_nodes`` as the admin. Proof generation reads O(log n) nodes from PostgreSQL; proof
verification is :func:`~tenantry.audit.merkle.verify_inclusion`, pure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.audit.manager import AuditLog
from tenantry.audit.merkle import CompactRange, leaf_hash, verify_inclusion
from tenantry.audit.notes import CheckpointSigner
from tenantry.audit.schemas import AuditEntry, InclusionProof
from tenantry.context import tenant_scope
from tenantry.db.bootstrap import quote_ident
from tenantry.db.metadata import SCHEMA
from tenantry.db.rls import rls_statements
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

WRITERS = 8
BATCH = 50
ROWS = WRITERS * BATCH  # the rows of one round of append_many
BIG, QUICK_BIG = 1_000_000, 20_000  # leaves of the proofs' tree (--quick: a smoke test)
SEED = 20261122
TENANT, BIG_TENANT = "bench-audit", "bench-audit-1m"

APPEND = "audit append, 8 concurrent writers (group-committed: one shared transaction)"
PLAIN = "plain insert of the same row, 8 concurrent writers (8 separate transactions)"
PLAIN_ONE = "plain insert of the same 8 rows in one transaction"
APPEND_MANY = (
    f"audit append_many({BATCH}), 8 concurrent writers (group-committed: one shared transaction)"
)
PLAIN_MANY = f"plain insert of {BATCH} rows, 8 concurrent writers (8 separate transactions)"
PLAIN_MANY_ONE = f"plain insert of the same 8 x {BATCH} rows in one transaction"
PROOF = "audit inclusion proof from PostgreSQL, big tree (1M leaves; --quick 20k)"
NODE_READ = "point read of one audit node, big tree (1M leaves; --quick 20k)"
VERIFY = "audit inclusion proof verification (pure), big tree (1M leaves; --quick 20k)"
CONSISTENCY = "audit consistency proof from PostgreSQL, big tree (1M leaves; --quick 20k)"

_PLAIN = f'"{SCHEMA}".bench_audit_plain'
_INSERT = text(
    f"INSERT INTO {_PLAIN} (tenant_id, seq, leaf_hash, entry) SELECT :t, * FROM"
    " unnest(CAST(:seqs AS bigint[]), CAST(:leaves AS bytea[]), CAST(:entries AS bytea[]))"
)
_NODE = text(f'SELECT hash FROM "{SCHEMA}".audit_nodes WHERE level = 0 AND idx = :i')


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        actor=f"user-{n % 97}",
        action="metadata:write",
        resource=f"track/{n}",
        request_id=f"req-{n}",
        frameworks=("SOC2", "GDPR"),
    )


async def create_plain_table(env: Environment) -> None:
    owner = quote_ident(env.runtime.settings.owner_role)
    engine = env.admin_engine()
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"SET ROLE {owner}"))
            await conn.execute(
                text(
                    f"CREATE TABLE {_PLAIN} (tenant_id text NOT NULL"
                    f' REFERENCES "{SCHEMA}".tenants (id) ON DELETE CASCADE,'
                    " seq bigint NOT NULL, leaf_hash bytea NOT NULL, entry bytea,"
                    " recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, seq))"
                )
            )
            for statement in rls_statements("bench_audit_plain", SCHEMA):
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def build_big_tree(env: Environment, size: int) -> list[bytes]:
    """COPY a ``size``-leaf tree of ``BIG_TENANT`` (entries and nodes); returns the leaves."""
    started = time.perf_counter()
    tree = CompactRange()
    entries: list[tuple[str, int, bytes, bytes]] = []
    nodes: list[tuple[str, int, int, bytes]] = []
    leaves: list[bytes] = []
    for n in range(size):
        data = b'{"actor":"bulk","n":%d}' % n
        leaves.append(leaf_hash(data))
        entries.append((BIG_TENANT, n, leaves[-1], data))
        nodes.extend((BIG_TENANT, level, idx, h) for level, idx, h in tree.append(leaves[-1]))
    engine = env.admin_engine()
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            async with driver.transaction():
                await driver.execute(
                    "SELECT set_config('tenantry.tenant_id', $1, true)", BIG_TENANT
                )
                await driver.copy_records_to_table(
                    "audit_entries",
                    schema_name=SCHEMA,
                    columns=["tenant_id", "seq", "leaf_hash", "entry"],
                    records=entries,
                )
                await driver.copy_records_to_table(
                    "audit_nodes",
                    schema_name=SCHEMA,
                    columns=["tenant_id", "level", "idx", "hash"],
                    records=nodes,
                )
            await driver.execute(f'ANALYZE "{SCHEMA}".audit_nodes, "{SCHEMA}".audit_entries')
    finally:
        await engine.dispose()
    print(
        f"audit: built a {size:,}-leaf tree ({len(nodes):,} nodes) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return leaves


def _writers(work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        return await asyncio.gather(*(work() for _ in range(WRITERS)))

    return run


async def run(env: Environment, plan: Plan) -> list[Row]:
    registry = TenantRegistry(env.db)
    for tenant in (TENANT, BIG_TENANT):
        await registry.create(tenant, f"Benchmark tenant {tenant}")
    await create_plain_table(env)
    audit = AuditLog(env.db, signer=CheckpointSigner.generate())
    counter, plain_seq = itertools.count(), itertools.count()

    async def append() -> None:
        await audit.append(TENANT, _entry(next(counter)))

    async def append_many() -> None:
        await audit.append_many(TENANT, [_entry(next(counter)) for _ in range(BATCH)])

    async def plain(rows: int) -> None:  # one transaction of ``rows`` rows
        data = [_entry(next(counter)).canonical() for _ in range(rows)]
        values = {
            "t": TENANT,
            "seqs": [next(plain_seq) for _ in range(rows)],
            "leaves": [leaf_hash(d) for d in data],
            "entries": data,
        }
        with tenant_scope(TENANT):
            async with env.db.tenant_transaction() as conn:
                await conn.execute(_INSERT, values)

    big = BIG if plan.iterations >= 1000 else QUICK_BIG
    leaves = await build_big_tree(env, big)
    rng = random.Random(SEED)
    root = await audit.root(BIG_TENANT)
    proofs: list[InclusionProof] = []
    for _ in range(100):
        proof = await audit.inclusion_proof(BIG_TENANT, rng.randrange(big))
        assert verify_inclusion(leaves[proof.index], proof.index, big, proof.path, root)
        proofs.append(proof)
    cycle = itertools.cycle(proofs)

    async def prove() -> None:
        await audit.inclusion_proof(BIG_TENANT, rng.randrange(big))

    async def consistency() -> None:
        await audit.consistency_proof(BIG_TENANT, rng.randrange(1, big), big)

    async def node_read() -> None:
        with tenant_scope(BIG_TENANT):
            async with env.db.tenant_transaction() as conn:
                await conn.execute(_NODE, {"i": rng.randrange(big)})

    async def verify() -> None:
        p = next(cycle)
        if not verify_inclusion(p.leaf_hash, p.index, p.tree_size, p.path, p.root_hash):
            raise AssertionError("a proof does not verify")

    writes = dataclasses.replace(
        plan, iterations=max(50, plan.iterations // 10), warmup=5, memory_iterations=10
    )
    many = dataclasses.replace(
        plan, iterations=max(20, plan.iterations // 100), warmup=2, memory_iterations=3
    )
    rows = await run_cases(
        [
            Case(APPEND, _writers(append), peer=PLAIN, batch=WRITERS),
            Case(PLAIN, _writers(lambda: plain(1)), batch=WRITERS),
            Case(PLAIN_ONE, lambda: plain(WRITERS), peer=APPEND, batch=WRITERS),
        ],
        writes,
        module="audit",
    )
    rows += await run_cases(
        [
            Case(APPEND_MANY, _writers(append_many), peer=PLAIN_MANY, batch=WRITERS * BATCH),
            Case(PLAIN_MANY, _writers(lambda: plain(BATCH)), batch=WRITERS * BATCH),
            Case(
                PLAIN_MANY_ONE,
                lambda: plain(WRITERS * BATCH),
                peer=APPEND_MANY,
                batch=WRITERS * BATCH,
            ),
        ],
        many,
        module="audit",
    )
    report = await audit.verify(TENANT)
    assert report.ok, report.problems[:3]
    rows += await run_cases(
        [
            Case(PROOF, prove, peer=NODE_READ),
            Case(NODE_READ, node_read),
            Case(CONSISTENCY, consistency, peer=NODE_READ),
            Case(VERIFY, verify),
        ],
        plan,
        module="audit",
    )
    return rows


BENCHMARK = Benchmark(
    name="audit",
    operations=(
        APPEND,
        PLAIN,
        PLAIN_ONE,
        APPEND_MANY,
        PLAIN_MANY,
        PLAIN_MANY_ONE,
        PROOF,
        NODE_READ,
        CONSISTENCY,
        VERIFY,
    ),
    run=run,
)
