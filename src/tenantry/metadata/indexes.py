"""Search indexes per tenant: a tenant with many records gets full-text and vector indexes of
its own; the others are searched by reading their own rows.

Why not one index for all tenants: a scan of a shared index costs what *all* tenants' rows make
it cost (how many records of every tenant hold the query's words, how many other tenants'
vectors an HNSW scan walks past before it finds the caller's), so one tenant's search time
would tell another's vocabulary and size; an HNSW scan filtered to one tenant afterwards also
returns too few of its rows (recall). Partial indexes (``WHERE tenant_id = '<tenant>'``) hold
one tenant's rows each: a search reads only its caller's.

- **Use.** The search statements name the tenant (``tenant_id = $n``) and are planned with the
  value (``plan_cache_mode = force_custom_plan`` in their transaction), so PostgreSQL proves a
  partial index's predicate and uses the caller's index, and can use no other. Row-level
  security still applies. A full-text index is used under RLS only where ``@@`` is marked
  leakproof (the bootstrap does it when it runs as a superuser, as the embedded database's and
  the tests' do); elsewhere the tenant's rows are tested one by one, as for a small tenant.
- **Build.** Indexes belong to the table's owner, so they are built on the admin connection
  (the one that migrates; the service has it), ``CREATE INDEX CONCURRENTLY``, which does not
  block other tenants' writes, one at a time per process and under an advisory lock per index
  across processes. A build that failed leaves an invalid index: it is dropped and built again.
- **When.** :class:`SearchIndexes` is a round (:mod:`tenantry.rounds`): a write notices its
  tenant; a visit counts the tenant's records up to ``min_records`` and builds what is missing
  once it has that many; every ``sweep_every`` rounds every active tenant is noticed and the
  indexes of tenants that no longer exist (or were deleted) are dropped. Once built, the indexes
  grow with the tenant's writes; they are not dropped when a tenant shrinks.
- **Cost.** The planner considers every partial index for each statement on the table, and each
  insert tests every index's predicate: microseconds each, so a few hundred large tenants cost
  little; past that, partitioning the table by tenant is the next step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.bootstrap import quote_ident
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import ConfigError
from tenantry.logging import get_logger
from tenantry.metadata.models import EMBEDDING_PARTS
from tenantry.metadata.search import VectorStore, part_expression
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.rounds import ActiveTenantRounds
from tenantry.tenants.schemas import TenantStatus

__all__ = ["KINDS", "MIN_RECORDS", "IndexStep", "SearchIndexes", "index_names"]

#: Records from which a tenant gets its own indexes. Below it a search reads the tenant's rows
#: (a few milliseconds at this size, benchmarks/README.md).
MIN_RECORDS: Final = 1000
_TABLE = '"tenantry"."metadata_records"'
_PREFIX = "ix_md_"
_log = get_logger("tenantry.metadata.indexes")
#: HNSW's build parameters (pgvector's defaults are m 16, ef_construction 64): on a tenant of
#: 100,000 records, recall@10 at ef_search 400 rose from 0.89 to 0.96 for a sixth more build
#: time (benchmarks/README.md, Metadata).
_HNSW = "WITH (m = 24, ef_construction = 200)"


#: The kinds of a tenant's indexes: full text, and one vector index per part of the stored rows.
KINDS: Final = ("text", *(f"vector{n}" for n in range(len(EMBEDDING_PARTS))))


def index_names(tenant_id: str) -> dict[str, str]:
    """The names of ``tenant_id``'s indexes by kind (:data:`KINDS`): a digest of the id, so any
    id fits PostgreSQL's 63 characters and no name is another tenant's."""
    digest = hashlib.sha256(validate_tenant_id(tenant_id).encode()).hexdigest()[:24]
    return {kind: f"{_PREFIX}{kind}_{digest}" for kind in KINDS}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class IndexStep:
    """One visit: the tenant's records (counted up to ``min_records``) and the indexes built."""

    tenant_id: str
    records: int = 0
    built: tuple[str, ...] = ()


class SearchIndexes(ActiveTenantRounds[IndexStep]):
    """Keeps every large tenant's search indexes; see the module docstring.

    ``runtime`` gives the admin URL and the owner role; without it (a manager given a database
    but no runtime) nothing is built and searches read the tenants' rows.
    """

    work = "metadata search indexes"

    def __init__(
        self,
        database: Database | None = None,
        *,
        runtime: DatabaseRuntime | None = None,
        min_records: int = MIN_RECORDS,
        interval: float = 30.0,
        sweep_every: int = 20,
        maintenance_work_mem: str = "256MB",
    ) -> None:
        if min_records < 1 or sweep_every < 1:
            raise ValueError("min_records and sweep_every must be >= 1")
        self._database = database
        self._runtime = runtime
        super().__init__(interval=interval)
        self.min_records, self.sweep_every = min_records, sweep_every
        self.maintenance_work_mem = maintenance_work_mem
        #: Tenants whose indexes are known to be built and valid (from the catalogue).
        self._indexed: set[str] = set()

    # -- rounds -----------------------------------------------------------------------------------

    async def before_round(self, number: int) -> None:
        if self.builds:  # a keeper that cannot build has nothing to sweep for
            await super().before_round(number)

    async def sweep(self) -> int:
        """Notice every active tenant, and drop the indexes of tenants that are gone."""
        noticed = await super().sweep()
        await self.prune()
        return noticed

    @property
    def builds(self) -> bool:
        """Whether this keeper can build (it has, or will take the default, admin URL)."""
        return self._runtime is not None or self._database is None

    async def visit(self, tenant_id: str) -> IndexStep:
        if tenant_id in self._indexed:
            return IndexStep(tenant_id, self.min_records)
        records = await self.records(tenant_id)
        if records < self.min_records or not self.builds:
            return IndexStep(tenant_id, records)
        return IndexStep(tenant_id, records, await self.ensure(tenant_id))

    # -- reading ----------------------------------------------------------------------------------

    async def records(self, tenant_id: str) -> int:
        """``tenant_id``'s records, counted up to ``min_records`` (in its own transaction)."""
        validate_tenant_id(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                found = await conn.scalar(
                    text(f"SELECT count(*) FROM (SELECT 1 FROM {_TABLE} LIMIT :cap) AS r"),
                    {"cap": self.min_records},
                )
        return int(found or 0)

    async def existing(self) -> dict[str, bool]:
        """Every per-tenant index on the table, and whether it is valid (built and usable)."""
        async with (await self._db()).transaction() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.relname, i.indisvalid FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid "
                    f"WHERE i.indrelid = '{_TABLE}'::regclass "
                    "AND starts_with(c.relname, :prefix)"
                ),
                {"prefix": _PREFIX},
            )
            return {str(name): bool(valid) for name, valid in rows}

    async def _kinds(self) -> dict[str, str]:
        """Index method by kind: a vector index only where the column is pgvector's."""
        async with (await self._db()).transaction() as conn:
            store = await VectorStore.detect(conn)
        kinds = {"text": "gin (search_tsv)"}
        if store.pgvector:
            for number in range(len(EMBEDDING_PARTS)):
                expression = part_expression(number, pgvector=True)
                kinds[f"vector{number}"] = f"hnsw ({expression} vector_cosine_ops) {_HNSW}"
        return kinds

    # -- building ---------------------------------------------------------------------------------

    async def ensure(self, tenant_id: str) -> tuple[str, ...]:
        """Build ``tenant_id``'s missing (or invalid) indexes now, whatever its size; the names
        of those built. Another process building one of them is left to it."""
        names = index_names(tenant_id)
        kinds = await self._kinds()
        found = await self.existing()
        wanted = {names[kind]: using for kind, using in kinds.items()}
        if all(found.get(name) for name in wanted):
            self._indexed.add(tenant_id)
            return ()
        built: list[str] = []
        async with self._admin() as conn:
            for name, using in wanted.items():
                if found.get(name):
                    continue
                if await self._build(conn, name, using, tenant_id, rebuild=name in found):
                    built.append(name)
        now = await self.existing()
        if all(now.get(name) for name in wanted):
            self._indexed.add(tenant_id)
        return tuple(built)

    async def _build(
        self, conn: AsyncConnection, name: str, using: str, tenant_id: str, *, rebuild: bool
    ) -> bool:
        locked = await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": name})
        if not locked:
            return False  # another process is building it
        try:
            index = f'"tenantry".{quote_ident(name)}'
            if rebuild:  # invalid, and nobody builds it: a failed build's remains
                await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {index}"))
            await conn.execute(
                text(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(name)} ON {_TABLE} "
                    f"USING {using} WHERE tenant_id = {_literal(tenant_id)}"
                )
            )
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})
        _log.info("metadata index built", tenant_id=tenant_id, index=name)
        return True

    async def prune(self) -> tuple[str, ...]:
        """Drop the indexes of tenants that no longer exist or were deleted; their names."""
        keep: set[str] = set()
        registry = TenantRegistry(await self._db())
        after: str | None = None
        while page := await registry.list(after=after, limit=1000):
            for tenant in page:
                if tenant.status is not TenantStatus.DELETED:
                    keep.update(index_names(tenant.id).values())
            after = page[-1].id
        found = await self.existing()
        gone = sorted(set(found) - keep)
        self._indexed.clear()
        if gone:
            async with self._admin() as conn:
                for name in gone:
                    index = f'"tenantry".{quote_ident(name)}'
                    await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {index}"))
            _log.info("metadata indexes dropped", indexes=len(gone))
        return tuple(gone)

    def _admin(self) -> _AdminConnection:
        if self._runtime is None:
            raise ConfigError("search indexes are built by the admin URL: give a runtime")
        return _AdminConnection(self._runtime, self.maintenance_work_mem)

    async def _db(self) -> Database:
        if self._database is None and self._runtime is None:  # the process's default database
            from tenantry.db.default import default_runtime  # noqa: PLC0415 - process default

            self._runtime = await default_runtime()
        return await super()._db()


class _AdminConnection:
    """An autocommit connection of the admin URL acting as the owner role (``CREATE INDEX
    CONCURRENTLY`` runs outside a transaction)."""

    def __init__(self, runtime: DatabaseRuntime, maintenance_work_mem: str) -> None:
        self._url: URL = runtime.admin_url
        self._owner = runtime.settings.owner_role
        self._memory = maintenance_work_mem
        self._engine = create_async_engine(
            self._url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> AsyncConnection:
        conn = self._conn = await self._engine.connect()
        await conn.execute(text(f"SET ROLE {quote_ident(self._owner)}"))
        await conn.execute(
            text("SELECT set_config('maintenance_work_mem', :m, false)"), {"m": self._memory}
        )
        return conn

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()
        await self._engine.dispose()
