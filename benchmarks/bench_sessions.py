"""Sessions: validation (L1 hit and cache miss, 1,024 tokens cycled), creation, and over HTTP.

- ``session validate, L1 hit`` vs ``PyJWT decode, HS256``: validation cycles ``TOKENS`` distinct
  session tokens (of ``USERS`` users), each cached in L1 and in the node's memo (keyed by the
  token's SHA-256: no plaintext token is kept), against decoding as many JWTs of the same claims
  (tenant, user, session, type, level, roles, expiries). Goal: >= 100k/s on one core and >= 2x
  PyJWT's throughput.
- ``session validate, cache miss``: the next of the same tokens on a node that has never seen it
  (a new ``SessionManager`` with an empty cache, made before each call, untimed): the token is
  hashed and parsed, looked up in PostgreSQL (session and roles) and cached. Its peer is a point
  read under row-level security (``bench_isolation``'s round trip, here on the sessions table).
- ``create_session, one caller`` (goal p95 < 5 ms) and ``create_session, 8 concurrent callers``:
  the throughput with a pool in use; ``create_session through the ConnectionManager``: the same on
  a ``Database`` routed through a ``ConnectionManager``, as the service's is (its peer is the
  first).
- ``GET /sessions/{id}/validate over HTTP`` vs ``GET /bare over HTTP``: uvicorn with one worker,
  the same keep-alive client; the bare route returns a constant from a FastAPI app.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import jwt

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from benchmarks.service import free_port, serve, service_env
from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.connections import ConnectionManager
from tenantry.context import tenant_scope
from tenantry.sessions import SessionPolicy
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.tokens import hash_token
from tenantry.tenants import ActiveTenants, TenantRegistry
from tenantry.threats.events import SecurityEvents

__all__ = ["BENCHMARK"]

VALIDATE = "session validate, L1 hit, 1,024 tokens cycled"
JWT = "PyJWT decode, HS256 (same claims), 1,024 tokens cycled"
MISS = "session validate, cache miss (parse, hash, PostgreSQL), 1,024 tokens cycled"
MISS_READS = "the cache miss's reads alone: session by token hash, roles (2 transactions)"
CREATE = "create_session, one caller"
CREATE_8 = "create_session, 8 concurrent callers"
CREATE_ROUTED = "create_session through the ConnectionManager"
HTTP_VALIDATE = "GET /sessions/{id}/validate over HTTP"
HTTP_BARE = "GET /bare over HTTP (FastAPI, constant)"
OPERATIONS = (
    VALIDATE,
    JWT,
    MISS,
    MISS_READS,
    CREATE,
    CREATE_8,
    CREATE_ROUTED,
    HTTP_VALIDATE,
    HTTP_BARE,
)
TENANT = "bench-sessions"
BARE_APP = "benchmarks.bare_app:app"
BATCH = 20
#: Distinct tokens the validation rows cycle through, of this many users (10 sessions at most each).
TOKENS, USERS = 1024, 128
#: Long enough that no cached entry expires and no ``last_seen`` write happens while the hit row
#: runs (the production defaults, 60 s, would mix reloads and writes into the "L1 hit" row).
HOUR = timedelta(hours=1)
ROOT = str(Path(__file__).resolve().parent.parent)


async def _make_tokens(env: Environment, manager: SessionManager) -> list[tuple[str, str]]:
    """``TOKENS`` sessions of ``USERS`` users (each granted ``viewer``), 8 created at a time."""
    access = AccessControl(env.db)
    for user in range(USERS):
        await access.grant(TENANT, f"reader-{user}", "viewer")
    made: list[tuple[str, str]] = []
    for start in range(0, TOKENS, 8):
        made += await asyncio.gather(
            *(
                manager.create_session(TENANT, f"reader-{n % USERS}")
                for n in range(start, min(start + 8, TOKENS))
            )
        )
    return made


async def _validation_cases(
    env: Environment, manager: SessionManager, policy: SessionPolicy
) -> list[Case]:
    """The validation rows: L1 hit vs PyJWT, and cache miss vs its reads alone."""
    sessions = await _make_tokens(env, manager)
    tokens = [token for _, token in sessions]
    principals = [await manager.validate(token) for token in tokens]  # each now in L1 and memo
    secret = os.urandom(32)
    now = int(time.time())
    encoded = [
        jwt.encode(
            {
                "tenant": TENANT,
                "sub": principal.principal_id,
                "sid": session_id,
                "typ": "user",
                "lvl": "high",
                "roles": sorted(principal.roles),
                "exp": now + 3600,
                "iat": now,
            },
            secret,
            algorithm="HS256",
        )
        for (session_id, _), principal in zip(sessions, principals, strict=True)
    ]
    hits, decodes = itertools.cycle(tokens), itertools.cycle(encoded)

    async def validate() -> None:  # BATCH calls per sample (see Case.batch)
        for _ in range(BATCH):
            await manager.validate(next(hits))

    async def decode() -> None:
        for _ in range(BATCH):
            jwt.decode(next(decodes), secret, algorithms=["HS256"])

    # The cache miss: a node that has never seen the token (new manager, empty cache and memo),
    # sharing what a node shares between requests (tenant status, access control, events).
    access, events = AccessControl(env.db), SecurityEvents(env.db)
    active = ActiveTenants(TenantRegistry(env.db), CacheManager())
    misses, reads = itertools.cycle(tokens), itertools.cycle(tokens)
    node = manager

    async def new_node() -> None:
        nonlocal node
        node = SessionManager(
            env.db,
            cache=CacheManager(l1_bytes=1 << 20),
            policy=policy,
            access=access,
            events=events,
            active=active,
        )

    async def validate_miss() -> None:
        await node.validate(next(misses))

    async def miss_reads() -> None:
        digest = hash_token(next(reads))
        with tenant_scope(TENANT):
            async with env.db.tenant_transaction() as conn:
                row = await SessionsRepository(conn).by_token(digest)
        assert row is not None
        await access.effective_roles(TENANT, row["user_id"])

    return [
        Case(VALIDATE, validate, peer=JWT, batch=BATCH),
        Case(JWT, decode, batch=BATCH),
        Case(MISS, validate_miss, peer=MISS_READS, prepare=new_node),
        Case(MISS_READS, miss_reads),
    ]


async def run(env: Environment, plan: Plan) -> list[Row]:
    await TenantRegistry(env.db).create(TENANT, "Sessions bench")
    await AccessControl(env.db).grant(TENANT, "listener-1", "viewer")
    policy = SessionPolicy(touch_interval=HOUR, cache_ttl=HOUR.total_seconds())
    manager = SessionManager(env.db, cache=CacheManager(), policy=policy)
    await manager.initialize()
    validation = await _validation_cases(env, manager, policy)

    users = iter(range(10**9))

    async def create() -> object:
        return await manager.create_session(TENANT, f"user-{next(users)}")

    async def create_concurrently() -> object:
        return await asyncio.gather(*(create() for _ in range(8)))

    routed_db = env.runtime.open_database()
    connections = ConnectionManager(
        env.runtime.settings, primary=routed_db, redis_url="", health_interval=0
    )
    await connections.start()
    routed_db.route_through(connections)
    routed = SessionManager(routed_db, cache=CacheManager())

    async def create_routed() -> object:
        return await routed.create_session(TENANT, f"user-{next(users)}")

    cases = [
        *validation,
        Case(CREATE, create),
        Case(CREATE_8, create_concurrently),
        Case(CREATE_ROUTED, create_routed, peer=CREATE),
    ]
    try:
        rows = await run_cases(cases, plan, module="sessions")
    finally:
        await connections.close()
        await routed.cache.close()
        await routed_db.dispose()
    if plan.wants(HTTP_VALIDATE) or plan.wants(HTTP_BARE):
        rows.extend(await _http_rows(env, manager, plan))
    await manager.cache.close()
    return rows


async def _http_rows(env: Environment, manager: SessionManager, plan: Plan) -> list[Row]:
    api_port, bare_port = free_port(), free_port()
    base_env = {**os.environ, "TENANTRY_LOG_LEVEL": "warning", "TENANTRY_DATABASE_URL": ""}
    service = await asyncio.to_thread(
        serve, ["-m", "tenantry", "serve"], service_env(env, api_port), api_port
    )
    bare = await asyncio.to_thread(
        serve,
        [
            "-m",
            "uvicorn",
            BARE_APP,
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        {**base_env, "PYTHONPATH": ROOT},
        bare_port,
    )
    session_id, token = await manager.create_session(TENANT, "listener-http")
    try:
        async with httpx.AsyncClient(http2=False) as client:
            headers = {"Authorization": f"Bearer {token}"}
            validate_url = f"http://127.0.0.1:{api_port}/sessions/{session_id}/validate"
            bare_url = f"http://127.0.0.1:{bare_port}/bare"
            assert (await client.get(validate_url, headers=headers)).status_code == 200

            def getter(url: str, hdrs: dict[str, str]) -> Callable[[], Awaitable[object]]:
                async def call() -> object:
                    return await client.get(url, headers=hdrs)

                return call

            cases = [
                Case(HTTP_VALIDATE, getter(validate_url, headers), peer=HTTP_BARE),
                Case(HTTP_BARE, getter(bare_url, {})),
            ]
            return await run_cases(cases, plan, module="sessions")
    finally:
        for process in (service, bare):
            process.terminate()
            process.wait(timeout=30)


BENCHMARK = Benchmark(name="sessions", operations=OPERATIONS, run=run)
