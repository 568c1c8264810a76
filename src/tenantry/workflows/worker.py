"""WorkflowWorker: claims due sagas of every tenant, fairly, and runs them with leases kept alive.

A worker is a loop in any process that reaches the database (the service runs one; ``tenantry
worker`` runs one on its own), and any number of them may run at once:

- it claims up to its free slots (``concurrency`` minus what it runs), of the definitions its
  registry has (a worker never holds a workflow it cannot run), with
  :func:`~tenantry.workflows.repository.claim`: each tenant at most its tier's cap of sagas
  running across all workers, every tenant's first due saga before anyone's second, so one
  tenant's burst does not hold back another tenant's first saga for longer than the worker's
  poll (or one saga's step, when every slot is busy);
- it runs each claimed saga with the :class:`~tenantry.workflows.engine.WorkflowEngine`;
- every ``lease / 3`` seconds it renews the leases of what it runs (one statement for all):
  a worker that dies stops renewing, its leases expire, and another worker's next claim takes
  its sagas over from their last checkpoint; a saga whose lease this worker lost is abandoned;
- a database that stops answering is retried with a growing pause (at most
  :data:`MAX_BACKOFF` seconds), and the worker goes on when it is back.

:meth:`WorkflowWorker.wake` makes the next claim now (the manager calls it when a saga is
created in the same process); otherwise the worker claims every ``poll`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from tenantry.db.changes import ChangeLog
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, TenantryError
from tenantry.logging import get_logger
from tenantry.workflows import repository as repo
from tenantry.workflows.definitions import WorkflowRegistry
from tenantry.workflows.engine import WorkflowEngine

__all__ = ["DEFAULT_CAPS", "MAX_BACKOFF", "WorkflowWorker"]

#: Sagas a tenant may have running at once, across all workers, by tier.
DEFAULT_CAPS: Final = {"free": 2, "standard": 4, "premium": 8, "enterprise": 16}
MAX_BACKOFF: Final = 5.0
_log = get_logger("tenantry.workflows")

Held = tuple[str, uuid.UUID]


class WorkflowWorker:
    """See the module docstring."""

    def __init__(
        self,
        database: Database,
        registry: WorkflowRegistry,
        *,
        concurrency: int = 32,
        lease: float = 30.0,
        poll: float = 0.5,
        caps: Mapping[str, int] | None = None,
        default_cap: int = 2,
        services: Mapping[str, Any] | None = None,
        audit: ChangeLog | None = None,
        name: str | None = None,
        tenants: Sequence[str] | None = None,
    ) -> None:
        if not 1 <= concurrency <= 1024:
            raise ConfigError("a worker runs from 1 to 1,024 sagas at once")
        if not (1.0 <= lease <= 3600 and 0.01 <= poll <= 60):
            raise ConfigError("a lease is 1 s to an hour, a poll 0.01 s to a minute")
        self.database = database
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.caps = dict(DEFAULT_CAPS if caps is None else caps)
        self.default_cap = default_cap
        #: The tenants this worker serves (None: every active tenant).
        self.tenants = None if tenants is None else tuple(tenants)
        #: This worker's name in the leases it holds (random: a restarted worker is another).
        self.name = name or f"worker-{uuid.uuid4().hex}"
        self.engine = WorkflowEngine(database, registry, self.name, services=services, audit=audit)
        self._running: dict[Held, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Sagas this worker ran (claimed), and claims that failed: for tests and metrics.
        self.claimed = 0
        self.claim_errors = 0

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    @property
    def held(self) -> list[Held]:
        return list(self._running)

    def wake(self) -> None:
        """Claim now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="tenantry-workflow-claims"),
            asyncio.create_task(self._heartbeat_loop(), name="tenantry-workflow-leases"),
        ]

    async def close(self) -> None:
        """Stop claiming, stop the sagas in flight and give their leases back (another worker
        resumes them from their last checkpoint)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        held = list(self._running.items())
        for _, task in held:
            task.cancel()
        for task in [*tasks, *(t for _, t in held)]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._running.clear()
        if held:
            with contextlib.suppress(TenantryError):
                await self._release([key for key, _ in held])

    async def run_once(self) -> int:
        """Claim once and run what was claimed to its end (or its next wait): the count."""
        claimed = await self._claim(self.concurrency - len(self._running))
        await asyncio.gather(*(self._running[key] for key in claimed))
        return len(claimed)

    async def drain(self, *, idle: float = 0.5, within: float = 60.0) -> None:
        """Run rounds until nothing was due for ``idle`` seconds (a retry waiting less than
        that is run too), for at most ``within`` seconds: for tests and one-shot scripts."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            last = loop.time()
            while True:
                if await self.run_once():
                    last = loop.time()
                elif loop.time() - last >= idle:
                    return
                else:
                    await asyncio.sleep(min(self.poll, 0.05))

    async def _lease(self, room: int) -> list[Held]:
        """Lease up to ``room`` due sagas to this worker: the fair, capped claim."""
        async with self.database.transaction() as conn:
            return await repo.claim(
                conn,
                self.name,
                limit=room,
                lease=self.lease,
                caps=self.caps,
                default_cap=self.default_cap,
                only=self.tenants,
                definitions=self.engine.registry.names(),
            )

    async def _claim(self, room: int) -> list[Held]:
        if room <= 0:
            return []
        claimed = await self._lease(room)
        for key in claimed:
            task = asyncio.create_task(self._run(key), name=f"tenantry-workflow-{key[1]}")
            self._running[key] = task
        self.claimed += len(claimed)
        return claimed

    async def _run(self, key: Held) -> None:
        try:
            await self.engine.run(*key)
        except TenantryError as exc:  # the database went away mid-saga: the lease will lapse
            _log.warning("workflow stopped", workflow=str(key[1]), error=exc.detail)
        except Exception:  # noqa: BLE001 - a bug in one saga must not stop the worker
            _log.exception("workflow crashed", workflow=str(key[1]))
        finally:
            self._running.pop(key, None)
            self._wake.set()  # a slot is free

    async def _claim_loop(self) -> None:
        pause = self.poll
        while True:
            # cleared before the claim: a slot freed while it runs wakes the next one at once
            self._wake.clear()
            try:
                await self._claim(self.concurrency - len(self._running))
                pause = self.poll
            except TenantryError as exc:
                self.claim_errors += 1
                pause = min(MAX_BACKOFF, max(self.poll, pause * 2))
                _log.warning("workflow claim failed", error=exc.detail, retry_in=pause)
                self._wake.clear()  # a failing database is given its backoff
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            held = list(self._running)
            if not held:
                continue
            try:
                async with self.database.transaction() as conn:
                    kept = await repo.renew(conn, self.name, held, self.lease)
            except TenantryError as exc:
                _log.warning("workflow leases not renewed", error=exc.detail)
                continue
            for key in held:
                if key not in kept and (task := self._running.get(key)) is not None:
                    task.cancel()  # lost to another worker: its writes would change nothing

    async def _release(self, held: list[Held]) -> None:
        """Give leases back now (a graceful stop): the sagas are due again at once."""
        async with self.database.transaction() as conn:
            await repo.renew(conn, self.name, held, 0.001)
