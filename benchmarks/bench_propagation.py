"""How fast a change on one node reaches another: cache invalidation and session revocation.

Two nodes (two ``CacheManager``s, each with its own Redis client and invalidation subscription,
and a ``SessionManager`` on each) share one Redis (``TENANTRY_BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) and the bench database. The figures that
``tests/cache/test_distributed.py`` and ``tests/sessions/test_distributed.py`` used to assert
(under 500 ms) are measured here; the tests check only that the change arrives.

- ``Redis PUBLISH -> subscriber on another connection``: the floor. One client
  publishes a counter; a listener task on another connection (``get_message`` in a loop, as the
  cache's invalidation bus listens) hands it to the timed call.
- ``cache set on node A -> new value read on node B``: node B holds the key in L1
  (untimed, before each call); timed: ``A.set(key, n)`` (L1, Redis ``SET``, ``PUBLISH``) and B's
  ``get`` polled (``asyncio.sleep(0)`` between reads) until it returns ``n``: B's subscription
  dropped its L1 copy and B read the new value from Redis. Peer: the PUBLISH round trip.
- ``session revoked on node A -> refused on node B``: a session created on A and
  validated twice on B (its principal in B's L1), untimed; timed: ``A.revoke(id)`` and
  ``B.validate(token)`` polled until it raises ``AuthenticationError``.
  Peer: the same with A's own ``validate`` polled (no other node involved).

Without Redis the module prints a line and returns no rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from benchmarks.environment import Environment, reachable_redis
from benchmarks.harness import Benchmark, Case, Operation, Plan, Row, run_cases
from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.context import tenant_scope
from tenantry.errors import AuthenticationError
from tenantry.sessions.manager import SessionManager
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

PUBSUB = "Redis PUBLISH -> subscriber on another connection"
CACHE = "cache set on node A -> new value read on node B"
REVOKE_B = "session revoked on node A -> refused on node B"
REVOKE_A = "session revoked on node A -> refused on node A"
OPERATIONS = (PUBSUB, CACHE, REVOKE_B, REVOKE_A)

TENANT = "bench-propagation"
USER = "listener"
CHANNEL = "bench:propagation"
#: A change that has not arrived after this long is a failure, not a slow sample.
DEADLINE = 10.0


async def run(env: Environment, plan: Plan) -> list[Row]:
    url = await reachable_redis("propagation benchmarks")
    if url is None:
        return []
    async with contextlib.AsyncExitStack() as stack:
        clients = [Redis.from_url(url) for _ in range(4)]
        for client in clients:
            stack.push_async_callback(client.aclose)
        publisher, subscriber, redis_a, redis_b = clients
        cache_a, cache_b = CacheManager(redis=redis_a), CacheManager(redis=redis_b)
        for cache in (cache_a, cache_b):
            await cache.start()
            stack.push_async_callback(cache.close)
            assert cache.bus is not None
            await asyncio.wait_for(cache.bus.connected.wait(), DEADLINE)
        rows = await _pubsub_and_cache(publisher, subscriber, cache_a, cache_b, plan)
        if plan.wants_any((REVOKE_B, REVOKE_A)):
            rows += await _revocation(env, cache_a, cache_b, plan)
        return rows


async def _until(condition: Operation, what: str) -> None:
    """Poll ``condition`` (yielding to the loop between tries) until it returns True."""
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {DEADLINE:g} s")
        await asyncio.sleep(0)


async def _pubsub_and_cache(
    publisher: Redis, subscriber: Redis, cache_a: CacheManager, cache_b: CacheManager, plan: Plan
) -> list[Row]:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)

    async def listen() -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                received.put_nowait(message["data"])

    listener = asyncio.create_task(listen())
    counter = iter(range(10**9))

    async def round_trip() -> None:
        sent = str(next(counter)).encode()
        await publisher.publish(CHANNEL, sent)
        async with asyncio.timeout(DEADLINE):
            while await received.get() != sent:
                pass

    async def subscribed() -> bool:  # the subscription is live once a message comes back
        await publisher.publish(CHANNEL, b"ready")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.1):
                while await received.get() != b"ready":
                    pass
                return True
        return False

    versions = iter(range(10**9))
    current = 0

    async def b_holds_the_key() -> None:
        with tenant_scope(TENANT):
            await cache_b.get("key")
            if cache_b.l1.get_entry(TENANT, "key") is None:
                raise AssertionError("node B does not hold the key in L1")

    async def set_on_a_read_on_b() -> None:
        nonlocal current
        current = next(versions)
        with tenant_scope(TENANT):
            await cache_a.set("key", current, ttl=3600)

            async def b_sees_it() -> bool:
                return bool(await cache_b.get("key") == current)

            await _until(b_sees_it, "node B's new value")

    try:
        await _until(subscribed, "the benchmark's own subscription")
        with tenant_scope(TENANT):
            await cache_a.set("key", -1, ttl=3600)
        cases = [
            Case(PUBSUB, round_trip),
            Case(CACHE, set_on_a_read_on_b, peer=PUBSUB, prepare=b_holds_the_key),
        ]
        return await run_cases(cases, plan, module="propagation")
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await pubsub.aclose()
        with tenant_scope(TENANT):
            await cache_a.delete("key")


@dataclass(slots=True)
class _Live:
    session_id: str = ""
    token: str = ""


async def _revocation(
    env: Environment, cache_a: CacheManager, cache_b: CacheManager, plan: Plan
) -> list[Row]:
    await TenantRegistry(env.db).create(TENANT, "Propagation bench")
    await AccessControl(env.db).grant(TENANT, USER, "viewer")
    node_a, node_b = SessionManager(env.db, cache=cache_a), SessionManager(env.db, cache=cache_b)
    await node_a.initialize()
    await node_b.initialize()
    live = _Live()

    def prepare(validator: SessionManager) -> Operation:
        async def create() -> None:  # one live session at a time: the user's limit never bites
            live.session_id, live.token = await node_a.create_session(TENANT, USER)
            await validator.validate(live.token)
            await validator.validate(live.token)  # an L1 hit: the principal is held

        return create

    def revoke_then_poll(validator: SessionManager) -> Operation:
        async def refused() -> bool:
            try:
                await validator.validate(live.token)
            except AuthenticationError:
                return True
            return False

        async def revoke() -> None:
            await node_a.revoke(live.session_id)
            await _until(refused, "the revocation")

        return revoke

    slow = plan.capped(
        iterations=1000 if plan.iterations >= 1000 else 200, warmup=20, memory_iterations=50
    )
    cases = [
        Case(REVOKE_B, revoke_then_poll(node_b), peer=REVOKE_A, prepare=prepare(node_b)),
        Case(REVOKE_A, revoke_then_poll(node_a), prepare=prepare(node_a)),
    ]
    return await run_cases(cases, slow, module="propagation")


BENCHMARK = Benchmark(name="propagation", operations=OPERATIONS, run=run)
