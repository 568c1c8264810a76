"""Background rounds over the tenants noticed since the last round.

A :class:`TenantRounds` collects tenants (:meth:`~TenantRounds.notice`, cheap: a set insertion)
and, every ``interval`` seconds in a task of its own (a fresh context: no caller's tenant scope or
open transaction follows it), visits each one once. One tenant's failure is logged and does not
stop the others; a visit may ask to come back next round (a batch left over, a backend that was
full). The cost follows the tenants that had something to do, not the number of tenants. The
threat watch and the behaviour learner are rounds.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Generic, TypeVar

from tenantry.errors import TenantryError
from tenantry.logging import get_logger

__all__ = ["TenantRounds"]

R = TypeVar("R")
_log = get_logger("tenantry.rounds")


class TenantRounds(Generic[R]):
    """Rounds that visit the noticed tenants; subclasses say what a visit does (:meth:`visit`)."""

    #: What the rounds do, for the log ("threat analysis", "behaviour learning").
    work = "tenant round"

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def visit(self, tenant_id: str) -> R:
        """Do the round's work for one tenant."""
        raise NotImplementedError

    def again(self, result: R) -> bool:
        """Whether a visit that gave ``result`` left work for the next round."""
        return False

    def retry(self, error: TenantryError) -> bool:
        """Whether a visit that failed with ``error`` is tried again next round."""
        return False

    async def before_round(self, number: int) -> None:
        """Awaited by the background task before its ``number``-th round (from 1)."""

    @property
    def noticed(self) -> frozenset[str]:
        """The tenants the next round visits."""
        return frozenset(self._pending)

    def notice(self, tenant_id: str) -> None:
        """``tenant_id`` has something to do: visit it in the next round."""
        self._pending.add(tenant_id)

    async def run_once(self) -> list[R]:
        """One round: visit every tenant noticed since the last one; what the visits gave."""
        tenants, self._pending = sorted(self._pending), set()
        results: list[R] = []
        for tenant_id in tenants:
            try:
                result = await self.visit(tenant_id)
            except TenantryError as exc:  # one tenant's failure must not stop the others
                _log.warning(f"{self.work} failed", tenant=tenant_id, error=exc.detail)
                if self.retry(exc):
                    self.notice(tenant_id)
                continue
            except Exception:  # noqa: BLE001 - nor a bug met in one tenant's data
                _log.exception(f"{self.work} failed", tenant=tenant_id)
                continue
            if self.again(result):
                self.notice(tenant_id)
            results.append(result)
        return results

    async def start(self) -> None:
        """Run rounds in the background until :meth:`close` (in a context of its own)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        number = 0
        while True:
            await asyncio.sleep(self.interval)
            number += 1
            try:
                await self.before_round(number)
                await self.run_once()
            except Exception:  # noqa: BLE001 - the rounds outlive one round's failure
                _log.exception(f"{self.work} round failed")
