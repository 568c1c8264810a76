"""Sessions: validation on a cache hit, session creation, and validation over HTTP.

- ``session validate, L1 hit (SessionManager)`` vs ``PyJWT decode, HS256``: the same claims
  (tenant, user, session, type, level, roles, expiries) in a JWT. Goal: >= 100k/s on one core
  and >= 2x PyJWT's throughput.
- ``create_session (embedded PostgreSQL)``: one caller at a time (goal p95 < 5 ms), and
  ``create_session, 8 concurrent callers``: the throughput with a pool in use;
  ``create_session through the ConnectionManager``: the same on a ``Database`` routed through a
  ``ConnectionManager``, as the service's is (its peer is the first).
- ``GET /sessions/{id}/validate over HTTP`` vs ``GET /bare over HTTP``: uvicorn with one worker,
  the same keep-alive client; the bare route returns a constant from a FastAPI app.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import jwt

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from benchmarks.service import free_port, serve, service_env
from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.connections import ConnectionManager
from tenantry.sessions.manager import SessionManager
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

VALIDATE = "session validate, L1 hit (SessionManager)"
JWT = "PyJWT decode, HS256 (same claims)"
CREATE = "create_session (embedded PostgreSQL)"
CREATE_8 = "create_session, 8 concurrent callers"
CREATE_ROUTED = "create_session through the ConnectionManager"
HTTP_VALIDATE = "GET /sessions/{id}/validate over HTTP"
HTTP_BARE = "GET /bare over HTTP (FastAPI, constant)"
OPERATIONS = (VALIDATE, JWT, CREATE, CREATE_8, CREATE_ROUTED, HTTP_VALIDATE, HTTP_BARE)
TENANT = "bench-sessions"
BARE_APP = "benchmarks.bare_app:app"
BATCH = 20
ROOT = str(Path(__file__).resolve().parent.parent)


async def run(env: Environment, plan: Plan) -> list[Row]:
    await TenantRegistry(env.db).create(TENANT, "Sessions bench")
    await AccessControl(env.db).grant(TENANT, "listener-1", "viewer")
    manager = SessionManager(env.db, cache=CacheManager())
    await manager.initialize()
    session_id, token = await manager.create_session(TENANT, "listener-1")
    principal = await manager.validate(token)
    secret = os.urandom(32)
    claims = {
        "tenant": TENANT,
        "sub": principal.principal_id,
        "sid": session_id,
        "typ": "user",
        "lvl": "high",
        "roles": sorted(principal.roles),
        "exp": int(time.time()) + 3600,
        "iat": int(time.time()),
    }
    encoded = jwt.encode(claims, secret, algorithm="HS256")

    async def validate() -> None:  # BATCH calls per sample (see Case.batch)
        for _ in range(BATCH):
            await manager.validate(token)

    async def decode() -> None:
        for _ in range(BATCH):
            jwt.decode(encoded, secret, algorithms=["HS256"])

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
        Case(VALIDATE, validate, peer=JWT, batch=BATCH),
        Case(JWT, decode, batch=BATCH),
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
    if env.mode != "embedded":
        return []  # the service under test runs on the bench database of the embedded mode
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
