"""A noisy tenant and a quiet one on the service, over HTTP: the quiet tenant's request latency.

The service routes every transaction through its ``ConnectionManager`` (``docs/connections.md``,
"The service's transactions"), so a tenant's transactions hold at most its share of the
PostgreSQL pool. This module shows what that gives a quiet tenant while another floods the
service, as a client sees it. Three ``tenantry serve`` processes (uvicorn, one worker, on
loopback: the service as it runs in production, its event loop and HTTP server of its own, the
load from other processes) on the bench database, each with the default pool
(``POSTGRES_POOL_SIZE`` 10: a pool gate of 10 growing to 15 connections):

- ``on``: the default ``TENANTRY_TENANT_POOL_SHARE`` (0.5: a tenant holds at most 8 connections);
- ``off``: ``TENANTRY_TENANT_POOL_SHARE=1.0``, a tenant may hold the whole pool: the service as
  it was before its transactions went through the manager, as far as the pool is concerned;
- ``alone``: the default, and nobody floods it.

Tenant A floods ``on`` and ``off``: a flood process (its own event loop, so that making the flood
does not slow the timed client) runs ``FLOOD`` clients per server, each in a loop,
``PUT /settings/<hot key>`` of tenant A, one key per server. Tenant A also has a batch job on
each hot key (in this process, straight on the database): a transaction that holds the row
(``SELECT ... FOR UPDATE``) for ``HOLD`` seconds, then commits, and again. A's requests
therefore spend their time in the database, waiting for the row and holding their connection
meanwhile, at little cost to the server's event loop: the flood a pool bulkhead is for. (A flood
of quick requests is bound by the event loop instead, which no pool bulkhead protects; see the
benchmarks README.) The timed call is tenant B's ``GET /settings/theme``, one at a time on a
keep-alive connection, answered 200:

- ``... bulkheads on``: A's requests hold at most 8 connections and the rest queue in A's lane
  (past ``TENANTRY_BULKHEAD_TIMEOUT`` they are answered 429); B's transaction finds a free
  connection. Peer: ``no flood``.
- ``... bulkheads off``: A's requests take every connection and queue at the pool gate, and B's
  transaction queues behind them (FIFO). Peer: ``on``.
- ``... no flood``: the ``alone`` server; the machine still carries both floods (two servers, the
  flood process, PostgreSQL).

Before timing, the module waits until the noise is in place (A's lane full with callers waiting
on ``on``; the gate full with callers waiting on ``off``, read from ``/connections/health``).
Metric rows give what the bulkheads cost A: its requests served per second on each server, and
the share of them answered 429. The rows are slow ("off" waits behind A's queue), so the module
runs 100 iterations per row (20 with ``--quick``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import httpx
from sqlalchemy import text

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Metric, Plan, Row, run_cases, run_metrics
from benchmarks.service import free_port, serve, service_env
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

ON = "http noisy tenant: quiet tenant's GET /settings/{key}, bulkheads on"
OFF = "http noisy tenant: quiet tenant's GET /settings/{key}, bulkheads off"
ALONE = "http noisy tenant: quiet tenant's GET /settings/{key}, no flood"
SERVED_ON = "http noisy tenant: noisy tenant's requests served, bulkheads on"
SERVED_OFF = "http noisy tenant: noisy tenant's requests served, bulkheads off"
REFUSED_ON = "http noisy tenant: noisy tenant's requests answered 429, bulkheads on"
OPERATIONS = (ON, OFF, ALONE, SERVED_ON, SERVED_OFF, REFUSED_ON)

#: Concurrent clients of tenant A on each flooded server.
FLOOD = 48
#: Seconds A's batch job holds a hot row in each of its transactions.
HOLD = 0.2
#: The hot key of tenant A on each flooded server.
HOT = {"on": "hot-on", "off": "hot-off"}
HOLD_ROW = text("select value from tenantry.tenant_settings where key = :key for update")
#: How long the noise may take to be in place (A's lane, the pool gate), at most.
SETTLE_SECONDS = 30.0


async def run(env: Environment, plan: Plan) -> list[Row]:
    suffix = uuid.uuid4().hex[:8]
    noisy, quiet = f"bench-http-noisy-{suffix}", f"bench-http-quiet-{suffix}"
    registry = TenantRegistry(env.db)
    await registry.create(noisy, "Noisy tenant, HTTP bench")
    await registry.create(quiet, "Quiet tenant, HTTP bench")

    servers: dict[str, tuple[Any, str, str]] = {}  # name -> (process, base URL, service token)
    try:
        for name, share in (("on", "0.5"), ("off", "1.0"), ("alone", "0.5")):
            port = free_port()
            settings = service_env(
                env, port, TENANTRY_TENANT_POOL_SHARE=share, TENANTRY_REDIS_URL=""
            )
            process = await asyncio.to_thread(serve, ["-m", "tenantry", "serve"], settings, port)
            servers[name] = (process, f"http://127.0.0.1:{port}", settings["TENANTRY_API_TOKEN"])
        return await _measure(env.db, plan, servers, noisy, quiet)
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            await asyncio.to_thread(process.wait, 30)


def _headers(token: str, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Tenant-ID": tenant}


async def _measure(
    db: Database, plan: Plan, servers: dict[str, tuple[Any, str, str]], noisy: str, quiet: str
) -> list[Row]:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results: Queue[list[tuple[dict[int, int], float]]] = context.Queue()
    targets = [
        (f"{servers[name][1]}/settings/{HOT[name]}", _headers(servers[name][2], noisy))
        for name in ("on", "off")
    ]
    async with httpx.AsyncClient(timeout=60) as client:
        for name, (_, url, token) in servers.items():  # B's setting, and A's hot row, exist
            for tenant, key in ((quiet, "theme"), (noisy, HOT.get(name))):
                if key is not None:
                    made = await client.put(
                        f"{url}/settings/{key}", json={"value": 0}, headers=_headers(token, tenant)
                    )
                    made.raise_for_status()
        jobs = [asyncio.create_task(_batch_job(db, noisy, key, stop)) for key in HOT.values()]
        flood = context.Process(target=_flood, args=(targets, FLOOD, stop, results))
        flood.start()
        try:
            await _noise_in_place(client, servers, noisy)

            def quiet_get(name: str) -> Callable[[], Awaitable[object]]:
                _, url, token = servers[name]
                headers = _headers(token, quiet)

                async def get() -> object:
                    response = await client.get(f"{url}/settings/theme", headers=headers)
                    if response.status_code != 200:
                        raise AssertionError(f"{name}: {response.status_code} {response.text}")
                    return response

                return get

            slow = plan.capped(
                iterations=100 if plan.iterations >= 1000 else 20, warmup=3, memory_iterations=3
            )
            cases = [
                Case(ON, quiet_get("on"), peer=ALONE),
                Case(OFF, quiet_get("off"), peer=ON),
                Case(ALONE, quiet_get("alone")),
            ]
            rows = await run_cases(cases, slow, module="http noisy tenant")
        finally:
            stop.set()
            await asyncio.gather(*jobs)
        outcomes = await asyncio.to_thread(results.get, True, 120)
        await asyncio.to_thread(flood.join, 30)
    (on, on_seconds), (off, off_seconds) = outcomes
    on_total, off_total = sum(on.values()), sum(off.values())
    metrics = [
        Metric(SERVED_ON, lambda: on.get(200, 0) / on_seconds, "req/s", SERVED_OFF, on_total),
        Metric(SERVED_OFF, lambda: off.get(200, 0) / off_seconds, "req/s", count=off_total),
        Metric(REFUSED_ON, lambda: 100 * on.get(429, 0) / max(1, on_total), "%", count=on_total),
    ]
    unexpected = {k: v for k, v in (Counter(on) + Counter(off)).items() if k not in (200, 429)}
    if unexpected:
        raise AssertionError(f"the noisy tenant got other answers: {unexpected}")
    return rows + run_metrics(metrics, plan, module="http noisy tenant")


async def _batch_job(db: Database, tenant: str, key: str, stop: Event) -> None:
    """Tenant A's batch job: hold the row of ``key`` ``HOLD`` seconds per transaction, until
    ``stop`` (each next transaction queues for the row behind A's requests waiting for it)."""
    with tenant_scope(tenant):
        while not stop.is_set():
            async with db.tenant_transaction() as conn:
                await conn.execute(HOLD_ROW, {"key": key})
                await asyncio.sleep(HOLD)


async def _noise_in_place(
    client: httpx.AsyncClient, servers: dict[str, tuple[Any, str, str]], noisy: str
) -> None:
    """Wait until A fills its lane on ``on`` and the whole pool, with callers queued, on ``off``."""
    deadline = time.monotonic() + SETTLE_SECONDS
    pools: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for name in ("on", "off"):
            _, url, token = servers[name]
            health = await client.get(
                f"{url}/connections/health", headers={"Authorization": f"Bearer {token}"}
            )
            health.raise_for_status()
            postgres = next(b for b in health.json()["backends"] if b["name"] == "postgres")
            pools[name] = postgres["pool"]
        lanes, gate = pools["on"]["bulkhead"], pools["off"]["gate"]
        lane_full = lanes["busiest"].get(noisy) == lanes["max_per_tenant"] and lanes["waiting"]
        if lane_full and gate["in_use"] == gate["limit"] and gate["waiting"]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the noise is not in place: {pools}")


def _flood(
    targets: list[tuple[str, dict[str, str]]],
    clients: int,
    stop: Event,
    results: Queue[list[tuple[dict[int, int], float]]],
) -> None:
    """The flood process: ``clients`` loops of ``PUT`` per target until ``stop``; puts, per
    target, the count of each status (``0``: a transport error) and the seconds it ran."""
    results.put(asyncio.run(_flood_all(targets, clients, stop)))


async def _flood_all(
    targets: list[tuple[str, dict[str, str]]], clients: int, stop: Event
) -> list[tuple[dict[int, int], float]]:
    counts = [Counter[int]() for _ in targets]
    started = time.monotonic()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=60))
            for _ in targets
        ]

        async def loop(
            n: int, session: httpx.AsyncClient, url: str, headers: dict[str, str]
        ) -> None:
            count = counts[n]
            value = 0
            while not stop.is_set():
                value += 1
                try:
                    response = await session.put(url, json={"value": value}, headers=headers)
                    count[response.status_code] += 1
                except httpx.TransportError:
                    count[0] += 1

        await asyncio.gather(
            *(
                loop(n, sessions[n], url, headers)
                for n, (url, headers) in enumerate(targets)
                for _ in range(clients)
            )
        )
    elapsed = time.monotonic() - started
    return [(dict(count), elapsed) for count in counts]


BENCHMARK = Benchmark(name="http noisy tenant", operations=OPERATIONS, run=run)
