"""Metadata writes: ``create_metadata`` against plain INSERTs, and how soon a record is found by
meaning.

- ``create_metadata, one caller`` (goal p95 < 10 ms) and ``..., 8 concurrent callers`` (the
  value column: records/s): records templated from the labelled catalogue
  (``benchmarks/metadata_data.generate``), each with a catalogue number, in one tenant. The
  production path: the content checked, serialised, compressed when large, its searchable text
  and projection; one tenant transaction (row-level security) with the record row, the version
  row and the audit entry (an INSERT into the audit outbox); the embedder noticed.
- Peers: ``plain INSERT of record + version rows``: the same content serialised and compressed
  the same way, the same two rows inserted in one transaction on raw asyncpg as the owner (no
  RLS, no audit entry), one transaction per record; with 8 callers on a pool of 8 connections.
- ``create_metadata to found by vector search``: with the embedder running
  (``await manager.initialize()``, its default 0.2 s round), the time from ``create_metadata``
  returning to a vector-only search for the record's own text returning it (polled every 5 ms:
  the record's ``embedded`` flag, then the search). One record at a time, in a tenant of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import asyncpg

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, percentile, run_cases
from benchmarks.metadata_data import Generated, admin_dsn, generate
from tenantry.metadata import MetadataManager, MetadataSearch, codec
from tenantry.metadata.encoder import default_encoder
from tenantry.metadata.language import text_config
from tenantry.metadata.manager import ID_PREFIX
from tenantry.metadata.text import searchable_text
from tenantry.sessions.tokens import make_id
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

CREATE = "create_metadata, one caller"
CREATE_8 = "create_metadata, 8 concurrent callers"
INSERT = "plain INSERT of record + version rows, raw asyncpg, one caller"
INSERT_8 = "plain INSERT of record + version rows, raw asyncpg, 8 concurrent callers"
FRESH = "create_metadata to found by vector search (embedder running)"
OPERATIONS = (CREATE, CREATE_8, INSERT, INSERT_8, FRESH)
TENANT, FRESH_TENANT = "bench-md-write", "bench-md-fresh"
CALLERS = 8
_RECORD = (
    "INSERT INTO tenantry.metadata_records (tenant_id, id, metadata_type, version, language, "
    "text_config, fields, search_text, created_by, updated_by) VALUES ($1, $2, $3, 1, $4, "
    "$5::regconfig, $6::jsonb, $7, $8, $8) RETURNING created_at, updated_at"
)
_VERSION = (
    "INSERT INTO tenantry.metadata_versions (tenant_id, record_id, version, metadata_type, "
    "encoding, payload, change, created_by) VALUES ($1, $2, 1, $3, $4, $5, 'create', $6)"
)


def contents() -> itertools.cycle[tuple[Generated, int]]:
    numbers = itertools.count()
    return itertools.cycle((g, next(numbers)) for g in generate(256, seed=15))


async def plain_insert(conn: asyncpg.Connection, record: Generated, number: int) -> None:
    content = {**record.content, "catalogue_number": f"TR-W-{number:07d}"}
    payload, packed = codec.compress(codec.dump(content))
    record_id = make_id(ID_PREFIX, TENANT)
    async with conn.transaction():
        await conn.fetchrow(
            _RECORD,
            TENANT,
            record_id,
            record.metadata_type,
            record.language,
            text_config(record.language),
            codec.dump(codec.projection(content)).decode(),
            searchable_text(content, None),
            "bench",
        )
        await conn.execute(
            _VERSION,
            TENANT,
            record_id,
            record.metadata_type,
            codec.PUBLIC_COMPRESSED if packed else 0,
            payload,
            "bench",
        )


def _latency_row(name: str, latencies_ns: list[int]) -> Row:
    ordered = sorted(latencies_ns)
    return Row(
        operation=name,
        p50_us=round(percentile(ordered, 0.5) / 1000, 1),
        p95_us=round(percentile(ordered, 0.95) / 1000, 1),
        ops_per_s=None,
        peak_kib=None,
        iterations=len(ordered),
        module="metadata_write",
    )


async def freshness(env: Environment, samples: int) -> Row:
    """``FRESH``: see the module docstring."""
    await TenantRegistry(env.db).create(FRESH_TENANT, FRESH_TENANT)
    manager = MetadataManager(env.db, encoder=default_encoder())
    await manager.initialize()
    records = contents()
    latencies: list[int] = []
    try:
        for _ in range(samples):
            record, number = next(records)
            content = {**record.content, "catalogue_number": f"TR-F-{number:07d}"}
            query = searchable_text(content, None)
            record_id = await manager.create_metadata(
                FRESH_TENANT, record.metadata_type, content, language=record.language
            )
            started = time.perf_counter_ns()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if (await manager.get_metadata(FRESH_TENANT, record_id)).embedded:
                    search = MetadataSearch(query, text_search=False, similarity_threshold=0.0)
                    hits = await manager.search_metadata(FRESH_TENANT, search)
                    if record_id in {hit.record.id for hit in hits}:
                        latencies.append(time.perf_counter_ns() - started)
                        break
                await asyncio.sleep(0.005)
            else:
                raise AssertionError(f"{record_id} was not found by meaning within 30 s")
    finally:
        await manager.close()
    return _latency_row(FRESH, latencies)


async def run(env: Environment, plan: Plan) -> list[Row]:
    # First, while no tenant has a backlog: the embedder visits tenants in turn, and a visit
    # encodes a batch of 64 records (seconds on this machine), so another tenant's backlog (the
    # write rows leave thousands of records due) would be measured instead.
    fresh = [await freshness(env, 5 if plan.iterations < 1000 else 30)] if plan.wants(FRESH) else []
    await TenantRegistry(env.db).create(TENANT, TENANT)
    manager = MetadataManager(env.db, encoder=default_encoder())
    ours, theirs = contents(), contents()

    async def create() -> object:
        record, number = next(ours)
        content = {**record.content, "catalogue_number": f"TR-W-{number:07d}"}
        return await manager.create_metadata(
            TENANT, record.metadata_type, content, language=record.language, actor="bench"
        )

    async def create_8() -> object:
        return await asyncio.gather(*(create() for _ in range(CALLERS)))

    pool: Any = await asyncpg.create_pool(admin_dsn(env), min_size=CALLERS, max_size=CALLERS)
    try:

        async def insert() -> None:
            async with pool.acquire() as conn:
                await plain_insert(conn, *next(theirs))

        async def insert_8() -> object:
            return await asyncio.gather(*(insert() for _ in range(CALLERS)))

        cases = [
            Case(CREATE, create, peer=INSERT),
            Case(INSERT, insert),
            Case(CREATE_8, create_8, peer=INSERT_8),
            Case(INSERT_8, insert_8),
        ]
        capped = plan.capped(iterations=2000, warmup=20, memory_iterations=20)
        rows = await run_cases(cases, capped, module="metadata_write")
    finally:
        await pool.close()
        await manager.close()
    rows = [
        row
        if row.operation not in (CREATE_8, INSERT_8) or row.ops_per_s is None
        else Row(**{**row.to_json(), "value": round(row.ops_per_s * CALLERS), "unit": "records/s"})
        for row in rows
    ]
    return rows + fresh


BENCHMARK = Benchmark(name="metadata_write", operations=OPERATIONS, run=run)
