"""The operations of the ``load:`` rows, as :class:`benchmarks.load.Target` openers.

Each opener is called in every process that runs its target (the benchmark's, or a worker
process), with the bench database's URL, and opens what a node of the service would have there:
its own ``Database`` pool (the service's size), its own managers and caches. What the operations
need from the database (tenants, sessions, security events) the module made before.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks.load import Load, TargetContext
from tenantry.access.manager import AccessControl
from tenantry.audit.models import audit_pending
from tenantry.audit.trail import trail_for
from tenantry.cache import CacheManager
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.rls import TENANT_SETTING
from tenantry.sessions import SessionPolicy
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.models import session_activity, sessions
from tenantry.sessions.tokens import hash_token, make_id, make_token
from tenantry.tenants import ActiveTenants, TenantRegistry
from tenantry.threats.events import SecurityEvents
from tenantry.threats.manager import ThreatAnalyzer

__all__ = [
    "cache_get",
    "cache_set",
    "raw_session_create",
    "session_create",
    "session_validate",
    "session_validate_miss",
    "threat_analysis",
]

#: Calls per operation of the microsecond operations (timed as one arrival of the open loop).
VALIDATE_BATCH, CACHE_BATCH = 100, 1000
CACHE_KEYS = [f"key-{i}" for i in range(1_000)]
VALUE = "v" * 200


def _name(table: object) -> str:
    return f'"{table.schema}"."{table.name}"'  # type: ignore[attr-defined]


_SESSION_COLUMNS = (
    "tenant_id, session_id, user_id, session_type, security_level, token_hash, created_at, "
    "last_seen_at, idle_expires_at, absolute_expires_at, ip, user_agent, device_id, step_up_at, cap"
)
#: create_session's three INSERTs, as it sends them to asyncpg (no RETURNING).
INSERT_SESSION = (
    f"INSERT INTO {_name(sessions)} ({_SESSION_COLUMNS}) VALUES "
    f"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
INSERT_ACTIVITY = (
    f"INSERT INTO {_name(session_activity)} (tenant_id, session_id, user_id, occurred_at, kind, "
    "ip, user_agent, device_id, requests) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)"
)
INSERT_PENDING = (
    f"INSERT INTO {_name(audit_pending)} (tenant_id, id, leaf_hash, entry) VALUES ($1, $2, $3, $4)"
)
#: The size of a sealed ``session.create`` entry (canonical entry, header, nonce, tag), as found
#: in the bench database after a run.
SEALED_ENTRY_BYTES = 356


#: The process's ``Database`` of each context and how many targets hold it: the targets of a
#: process share one pool, as one node's managers do (and the server's connections suffice).
_databases: dict[TargetContext, tuple[Database, int]] = {}


@asynccontextmanager
async def _database(context: TargetContext) -> AsyncIterator[Database]:
    db, holders = _databases.get(context) or (
        Database(
            make_url(context.database_url),
            pool_size=context.pool_size,
            max_overflow=context.max_overflow,
        ),
        0,
    )
    _databases[context] = (db, holders + 1)
    try:
        yield db
    finally:
        db, holders = _databases[context]
        if holders == 1:
            del _databases[context]
            await db.dispose()
        else:
            _databases[context] = (db, holders - 1)


@asynccontextmanager
async def session_create(context: TargetContext, tenant: str) -> AsyncIterator[Load]:
    """``create_session(tenant, <new user>)``; after a phase, the tenant's queued audit entries
    are moved into its tree (what the outbox's background task does after each commit)."""
    async with _database(context) as db:
        manager = SessionManager(db, cache=CacheManager())
        prefix, users = f"load-{os.getpid()}-{uuid.uuid4().hex[:6]}", itertools.count()
        outbox = trail_for(db).outbox

        async def create() -> object:
            return await manager.create_session(tenant, f"{prefix}-{next(users)}")

        async def settle() -> object:
            return await outbox.integrate(tenant)

        try:
            await manager.initialize()
            yield Load(create, settle)
        finally:
            await manager.cache.close()


@asynccontextmanager
async def raw_session_create(context: TargetContext, tenant: str) -> AsyncIterator[Load]:
    """create_session's INSERTs (session row, its activity row, the audit entry queued) on raw
    asyncpg, one transaction each (``BEGIN; SET LOCAL`` in one message, as tenantry opens its
    transactions), through an asyncpg pool of the ``Database``'s size (its pool plus overflow)."""
    url = make_url(context.database_url).set(drivername="postgresql")
    pool = await asyncpg.create_pool(
        url.render_as_string(hide_password=False),
        min_size=0,  # connected when first needed, as SQLAlchemy's pool does
        max_size=context.pool_size + context.max_overflow,
    )
    prefix, users = f"raw-{os.getpid()}-{uuid.uuid4().hex[:6]}", itertools.count()
    begin = f"BEGIN; SET LOCAL {TENANT_SETTING} = '{tenant}'"
    entry = os.urandom(SEALED_ENTRY_BYTES)

    async def create() -> object:
        user = f"{prefix}-{next(users)}"
        session_id, token = make_id("ses", tenant), make_token("s", tenant)
        now = datetime.now(UTC)
        pending = uuid.uuid4().hex
        async with pool.acquire() as conn:
            await conn.execute(begin)
            try:
                await conn.execute(
                    INSERT_SESSION,
                    tenant,
                    session_id,
                    user,
                    "user",
                    "high",
                    hash_token(token),
                    now,
                    now,
                    now + timedelta(hours=1),
                    now + timedelta(hours=12),
                    None,
                    None,
                    None,
                    None,
                    None,
                )
                await conn.execute(
                    INSERT_ACTIVITY, tenant, session_id, user, now, "create", None, None, None
                )
                leaf = hashlib.sha256(pending.encode() + entry).digest()
                await conn.execute(INSERT_PENDING, tenant, pending, leaf, entry)
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return session_id, token

    try:
        yield Load(create)
    finally:
        await pool.close()


@asynccontextmanager
async def session_validate(
    context: TargetContext, tokens: list[str], hours: float
) -> AsyncIterator[Load]:
    """``validate(token)`` of ``tokens`` cycled, ``VALIDATE_BATCH`` per operation, every one
    validated once before (each then an L1 hit; ``hours``: the policy's cache TTL and touch
    interval, long enough that nothing expires or is written)."""
    span = timedelta(hours=hours)
    policy = SessionPolicy(touch_interval=span, cache_ttl=hours * 3600)
    cycle = itertools.cycle(tokens)
    async with _database(context) as db:
        manager = SessionManager(db, cache=CacheManager(), policy=policy)

        async def validate() -> None:
            for _ in range(VALIDATE_BATCH):
                await manager.validate(next(cycle))

        try:
            await manager.initialize()
            for token in tokens:
                await manager.validate(token)
            yield Load(validate)
        finally:
            await manager.cache.close()


@asynccontextmanager
async def session_validate_miss(
    context: TargetContext, tenant: str, tokens: list[str]
) -> AsyncIterator[Load]:
    """``validate(token)`` on a node that has never seen the token: a new ``SessionManager`` with
    an empty cache and memo per call (about 130 us of it), sharing what a node shares between
    requests (tenant status, access control, events), as ``bench_sessions``' miss row does."""
    cycle = itertools.cycle(tokens)
    async with _database(context) as db:
        access, events = AccessControl(db), SecurityEvents(db)
        status = CacheManager()
        active = ActiveTenants(TenantRegistry(db), status)

        async def validate() -> object:
            node = SessionManager(
                db,
                cache=CacheManager(l1_bytes=1 << 20),
                access=access,
                events=events,
                active=active,
            )
            return await node.validate(next(cycle))

        try:
            with tenant_scope(tenant):
                await active.check(tenant)  # the tenant's status cached, as on a warm node
            yield Load(validate)
        finally:
            await status.close()


@asynccontextmanager
async def _cache(tenant: str) -> AsyncIterator[CacheManager]:
    cache = CacheManager()
    try:
        with tenant_scope(tenant):
            for key in CACHE_KEYS:
                await cache.set(key, VALUE)
        yield cache
    finally:
        await cache.close()


def _key_batches() -> Iterator[list[str]]:
    """``CACHE_BATCH`` keys of ``CACHE_KEYS`` at a time, round and round."""
    for start in itertools.cycle(range(0, len(CACHE_KEYS), CACHE_BATCH)):
        yield CACHE_KEYS[start : start + CACHE_BATCH]


@asynccontextmanager
async def cache_get(context: TargetContext, tenant: str) -> AsyncIterator[Load]:
    """``await cache.get(key)`` of an L1 hit (CacheManager, L1 alone), ``CACHE_BATCH`` keys of
    1,000 per operation, in the tenant's scope."""
    del context
    async with _cache(tenant) as cache:
        batches = _key_batches()

        async def gets() -> None:
            with tenant_scope(tenant):
                for key in next(batches):
                    if await cache.get(key) is None:
                        raise AssertionError(f"cache miss of {key}")

        yield Load(gets)


@asynccontextmanager
async def cache_set(context: TargetContext, tenant: str) -> AsyncIterator[Load]:
    """``await cache.set(key, value)`` (CacheManager, L1 alone, 200-byte string, default TTL),
    ``CACHE_BATCH`` of 1,000 keys in turn per operation."""
    del context
    async with _cache(tenant) as cache:
        batches = _key_batches()

        async def sets() -> None:
            with tenant_scope(tenant):
                for key in next(batches):
                    await cache.set(key, VALUE)

        yield Load(sets)


@asynccontextmanager
async def threat_analysis(
    context: TargetContext, tenant: str, now: str, window_seconds: float
) -> AsyncIterator[Load]:
    """``analyze_threats(tenant, window, now=now)`` as ``bench_threats`` times it (baseline kept
    per tenant, so cached after the first call of each process)."""
    at, window = datetime.fromisoformat(now), timedelta(seconds=window_seconds)
    async with _database(context) as db:
        analyzer = ThreatAnalyzer(db)

        async def analyze() -> object:
            return await analyzer.analyze_threats(tenant, window, now=at)

        yield Load(analyze)
