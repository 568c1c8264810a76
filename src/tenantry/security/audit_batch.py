"""Group commit for audit appends: concurrent appends to one tenant share one transaction.

The appends of a tenant are serialized (one sequence, no forks), so N concurrent single appends
would cost N lock-holding transactions in a row. Instead the first caller becomes the leader:
it writes its entry together with every entry that arrived meanwhile, in one ``append_many``
transaction, and loops while more arrive; the others wait for their sequence numbers. Order is
arrival order; an error fails exactly the entries of the transaction that failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenantry.errors import TransactionRolledBack

__all__ = ["AppendCombiner"]

MAX_BATCH = 500
Writer = Callable[[str, list[bytes]], Awaitable[list[int]]]
_Item = tuple[bytes, "asyncio.Future[int]"]


class AppendCombiner:
    """Coalesces concurrent appends per (event loop, tenant) into batches."""

    def __init__(self, write: Writer) -> None:
        self._write = write
        self._queues: dict[tuple[asyncio.AbstractEventLoop, str], list[_Item]] = {}

    async def submit(self, tenant_id: str, data: bytes) -> int:
        """Append the canonical ``data``; returns its sequence number."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        key = (loop, tenant_id)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append((data, future))
            return await future
        queue = self._queues[key] = [(data, future)]
        batch: list[_Item] = []
        try:
            while queue:
                batch = queue[:MAX_BATCH]
                del queue[:MAX_BATCH]
                try:
                    seqs = await self._write(tenant_id, [d for d, _ in batch])
                except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
                    _fail(batch, exc)
                else:
                    for (_, waiter), seq in zip(batch, seqs, strict=True):
                        if not waiter.done():
                            waiter.set_result(seq)
                batch = []
        finally:
            del self._queues[key]
            leftover = TransactionRolledBack("the append was not written (its leader stopped)")
            _fail(batch + queue, leftover)
        return await future


def _fail(items: list[_Item], exc: BaseException) -> None:
    for _, waiter in items:
        if not waiter.done():
            waiter.set_exception(exc)
