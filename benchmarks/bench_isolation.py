"""The cost of tenant isolation: row-level security and the tenant transaction.

Two tables of the same shape, ``tenantry.bench_rls`` (row-level security with tenantry's policy)
and ``tenantry.bench_plain`` (none), each with ``TENANTS`` x ``ROWS_PER_TENANT`` rows. Every
operation goes through the same :class:`~tenantry.db.engine.Database` (the application role):

- tenant transaction: ``BEGIN; SET LOCAL tenantry.tenant_id = ...`` in one round trip, then the
  statement (through SQLAlchemy, or compiled once and run on the driver by ``fetch_driver``);
- raw asyncpg, the peer of the tenant transaction: the same statements on one asyncpg connection;
- plain transaction: ``BEGIN``, then the statement, which names the tenant in its ``WHERE``;
- naive: ``BEGIN``, a separate ``set_config`` round trip, then the statement.

Two more rows read through the same ``Database`` routed through a ``ConnectionManager``, as the
service's is (the tenant's bulkhead lane, the primary's breaker and pool gate around the tenant
transaction): the cost of that path per transaction. Every read runs on one backend connection,
the raw peer's too (see ``run``); the inserts on the bench's own pool.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
)

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.connections import ConnectionManager
from tenantry.context import tenant_scope
from tenantry.db.bootstrap import quote_ident
from tenantry.db.engine import Database
from tenantry.db.metadata import SCHEMA
from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.db.rls import TENANT_SETTING, rls_statements
from tenantry.errors import IsolationViolation
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

TENANTS = 100
ROWS_PER_TENANT = 1000
SEED = 20261121

READ_RLS = "point read, RLS, tenant transaction"
READ_ROUTED = "point read, RLS, tenant transaction through the ConnectionManager"
READ_DRIVER = "point read, RLS, tenant transaction, fetch_driver"
READ_ROUTED_DRIVER = "point read, RLS, through the ConnectionManager, fetch_driver"
READ_RAW = "point read, RLS, raw asyncpg (BEGIN; SET LOCAL; select; COMMIT)"
READ_PLAIN = "point read, no RLS, plain transaction"
READ_NAIVE = "point read, RLS, naive set_config round trip"
INSERT_RLS = "insert, RLS, tenant transaction"
INSERT_PLAIN = "insert, no RLS, plain transaction"

_metadata = MetaData(schema=SCHEMA)


def _table(name: str) -> Table:
    return Table(
        name,
        _metadata,
        Column("tenant_id", Text, primary_key=True),
        Column("id", BigInteger, primary_key=True),
        Column("payload", Text, nullable=False),
    )


bench_rls = _table("bench_rls")
bench_plain = _table("bench_plain")

READ_RLS_SQL = select(bench_rls.c.payload).where(bench_rls.c.id == bindparam("id"))
READ_PLAIN_SQL = select(bench_plain.c.payload).where(
    bench_plain.c.tenant_id == bindparam("t"), bench_plain.c.id == bindparam("id")
)
READ_RLS_DRIVER = DriverQuery.compiled(READ_RLS_SQL)
SET_TENANT_SQL = text(f"select set_config('{TENANT_SETTING}', :t, true)")


def tenant_ids() -> list[str]:
    return [f"bench-{n:03d}" for n in range(TENANTS)]


def payload(tenant_id: str, row_id: int) -> str:
    """The payload of a row (the fill writes the same in SQL), for the correctness checks."""
    return f"{tenant_id}:{row_id}"


async def create_tables(env: Environment) -> None:
    """Register the tenants, then create, fill and (for ``bench_rls``) protect the two tables."""
    registry = TenantRegistry(env.db)
    for tenant in tenant_ids():
        await registry.create(tenant, f"Benchmark tenant {tenant}")
    owner = quote_ident(env.runtime.settings.owner_role)
    engine = env.admin_engine()
    try:
        async with engine.connect() as conn:
            # As the owner: the app role gets its grants from the schema's default privileges.
            await conn.execute(text(f"SET ROLE {owner}"))
            for table in (bench_rls, bench_plain):
                name = f'"{SCHEMA}"."{table.name}"'
                await conn.execute(
                    text(
                        f"CREATE TABLE {name} ("
                        f' tenant_id text NOT NULL REFERENCES "{SCHEMA}".tenants (id)'
                        " ON DELETE CASCADE,"
                        " id bigint NOT NULL, payload text NOT NULL,"
                        " PRIMARY KEY (tenant_id, id))"
                    )
                )
                # Filled before RLS is on: with FORCE, the owner itself could not insert.
                await conn.execute(
                    text(
                        f"INSERT INTO {name} (tenant_id, id, payload)"
                        " SELECT t.id, g, t.id || ':' || g"
                        f' FROM "{SCHEMA}".tenants t, generate_series(0, :last) g'
                        " WHERE t.id LIKE 'bench-%' ORDER BY 1, 2"
                    ),
                    {"last": ROWS_PER_TENANT - 1},
                )
            for statement in rls_statements(bench_rls.name, SCHEMA):
                await conn.execute(text(statement))
            await conn.execute(text(f'ANALYZE "{SCHEMA}".bench_rls, "{SCHEMA}".bench_plain'))
    finally:
        await engine.dispose()


async def read_rls(db: Database, tenant: str, row_id: int) -> str | None:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            return (await conn.execute(READ_RLS_SQL, {"id": row_id})).scalar()


async def read_driver(db: Database, tenant: str, row_id: int) -> str | None:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = await TenantRepository(conn).fetch_driver(READ_RLS_DRIVER, {"id": row_id})
            return str(rows[0][0]) if rows else None


def raw_reader(driver: asyncpg.Connection) -> Callable[[Database, str, int], Awaitable[str | None]]:
    """The peer: the same statements on one asyncpg connection of the application role, with no
    pool, no SQLAlchemy and no tenantry around them (the tenant id is one of ``tenant_ids()``)."""

    async def read(_: Database, tenant: str, row_id: int) -> str | None:
        await driver.execute(f"BEGIN; SET LOCAL {TENANT_SETTING} = '{tenant}'")
        value: str | None = await driver.fetchval(READ_RLS_DRIVER.sql, row_id)
        await driver.execute("COMMIT")
        return value

    return read


async def read_plain(db: Database, tenant: str, row_id: int) -> str | None:
    async with db.transaction() as conn:
        return (await conn.execute(READ_PLAIN_SQL, {"t": tenant, "id": row_id})).scalar()


async def read_naive(db: Database, tenant: str, row_id: int) -> str | None:
    async with db.transaction() as conn:
        await conn.execute(SET_TENANT_SQL, {"t": tenant})
        return (await conn.execute(READ_RLS_SQL, {"id": row_id})).scalar()


async def insert_rls(db: Database, tenant: str, row_id: int) -> None:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            values = {"tenant_id": tenant, "id": row_id, "payload": payload(tenant, row_id)}
            await conn.execute(insert(bench_rls), values)


async def insert_plain(db: Database, tenant: str, row_id: int) -> None:
    async with db.transaction() as conn:
        values = {"tenant_id": tenant, "id": row_id, "payload": payload(tenant, row_id)}
        await conn.execute(insert(bench_plain), values)


async def verify(db: Database) -> None:
    """Check, once before timing, that every variant does what its name says."""
    tenant, other, row_id = "bench-007", "bench-042", 123
    expected = payload(tenant, row_id)
    assert await read_rls(db, tenant, row_id) == expected
    assert await read_plain(db, tenant, row_id) == expected
    assert await read_naive(db, tenant, row_id) == expected
    assert await read_driver(db, tenant, row_id) == expected
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            visible = await conn.scalar(select(func.count()).select_from(bench_rls))
    assert visible == ROWS_PER_TENANT, visible
    async with db.transaction() as conn:  # no tenant context: RLS hides every row
        assert await conn.scalar(select(func.count()).select_from(bench_rls)) == 0
    try:
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                await conn.execute(insert(bench_rls), {"tenant_id": other, "id": -1, "payload": ""})
    except IsolationViolation:
        pass
    else:
        raise AssertionError("an insert for another tenant passed row-level security")


def _reader(
    read: Callable[[Database, str, int], Awaitable[str | None]], db: Database, seed: int
) -> Callable[[], Awaitable[str | None]]:
    rng = random.Random(seed)
    tenants = tenant_ids()

    async def run() -> str | None:
        return await read(db, rng.choice(tenants), rng.randrange(ROWS_PER_TENANT))

    return run


def _writer(
    write: Callable[[Database, str, int], Awaitable[None]], db: Database, seed: int
) -> Callable[[], Awaitable[None]]:
    rng = random.Random(seed)
    tenants = tenant_ids()
    ids = itertools.count(ROWS_PER_TENANT)  # above the filled ids; one counter per table

    async def run() -> None:
        await write(db, rng.choice(tenants), next(ids))

    return run


async def run(env: Environment, plan: Plan) -> list[Row]:
    await create_tables(env)
    await verify(env.db)
    # Every read, the raw peer's included, runs on one backend: the one connection of ``reads``.
    # A round trip's latency here depends on where the scheduler puts the backend (on 2 cores, one
    # sharing the client's core costs a context switch per round trip: 100-350 us against ~100),
    # which a second connection would leave to luck, a different luck for each variant.
    reads = Database(env.runtime.app_url, pool_size=1, max_overflow=0)
    pooled = await reads.pool.acquire()
    driver = pooled.driver  # the raw peer's: the same backend, used while the pool holds it idle
    await reads.pool.release(pooled)
    read_raw = raw_reader(driver)
    assert await read_raw(reads, "bench-007", 123) == payload("bench-007", 123)
    assert await read_raw(reads, "bench-042", 123) == payload("bench-042", 123)
    # The routed rows: the same Database, through a ConnectionManager whose primary it is, as
    # the service's is; the other rows open their transactions on it directly.
    connections = ConnectionManager(
        env.runtime.settings, primary=reads, redis_url="", health_interval=0
    )
    try:
        async with connections:
            direct = _routing(reads, None)
            routed = _routing(reads, connections)
            assert await routed(read_rls)(reads, "bench-007", 123) == payload("bench-007", 123)
            cases = [
                Case(READ_RAW, _reader(read_raw, reads, SEED)),
                Case(READ_RLS, _reader(direct(read_rls), reads, SEED), peer=READ_RAW),
                Case(READ_DRIVER, _reader(direct(read_driver), reads, SEED), peer=READ_RAW),
                Case(READ_ROUTED, _reader(routed(read_rls), reads, SEED), peer=READ_RLS),
                Case(
                    READ_ROUTED_DRIVER,
                    _reader(routed(read_driver), reads, SEED),
                    peer=READ_RAW,
                ),
                Case(READ_PLAIN, _reader(direct(read_plain), reads, SEED)),
                Case(READ_NAIVE, _reader(direct(read_naive), reads, SEED), peer=READ_PLAIN),
                # The writes on a pool of their own (a backend that has just committed answers
                # its next round trip slower: the reads' backend only reads, as the peer's).
                Case(INSERT_RLS, _writer(insert_rls, env.db, SEED), peer=INSERT_PLAIN),
                Case(INSERT_PLAIN, _writer(insert_plain, env.db, SEED)),
            ]
            return await run_cases(cases, plan, module="isolation")
    finally:
        reads.route_through(None)
        await reads.dispose()


Read = Callable[[Database, str, int], Awaitable[str | None]]


def _routing(db: Database, router: ConnectionManager | None) -> Callable[[Read], Read]:
    """Wrap a read so that ``db`` sends it through ``router`` (None: opens it directly)."""

    def wrap(read: Read) -> Read:
        async def run(database: Database, tenant: str, row_id: int) -> str | None:
            db.route_through(None)
            db.route_through(router)
            return await read(database, tenant, row_id)

        return run

    return wrap


BENCHMARK = Benchmark(
    name="isolation",
    operations=(
        READ_RAW,
        READ_RLS,
        READ_DRIVER,
        READ_ROUTED,
        READ_ROUTED_DRIVER,
        READ_PLAIN,
        READ_NAIVE,
        INSERT_RLS,
        INSERT_PLAIN,
    ),
    run=run,
)
