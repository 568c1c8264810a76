"""Group commit and pipelined writes of audit appends.

The appends of a tenant are serialized (one sequence, no forks), so N concurrent appends would
cost N lock-holding transactions in a row. Instead the first caller becomes the leader: it opens
a transaction and, once the tenant's lock is granted, takes every submission waiting by then
(its own first) and writes them in that transaction; it loops while more arrive, and the others
wait for their sequence numbers. A submission (one ``append`` or one ``append_many``) is never
split: its entries stay contiguous and in order, in one transaction. Order is arrival order; an
error fails exactly the submissions of the transaction that failed, and a submission the writer
refuses (an entry that has no canonical form) fails alone.

How many entries one shared transaction takes is the combiner's ``max_batch`` (:data:`MAX_BATCH`
by default), changed while it runs by :meth:`AppendCombiner.set_max_batch` (the performance
manager's ``audit_max_batch`` knob); a transaction already open keeps what it took.

Inside the transaction the submissions are written in chunks (:func:`chunk_plan`): a small one
first, each next about half again as large. While PostgreSQL writes chunk k, the event loop
prepares chunk k+1 (canonical bytes, leaf hashes, tree nodes, seals), so the Python work of a
batch overlaps the database's instead of preceding it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from tenantry.errors import InvalidInput, TransactionRolledBack

__all__ = [
    "FIRST_CHUNK",
    "MAX_BATCH",
    "MAX_BATCH_LIMIT",
    "AppendCombiner",
    "Outcome",
    "Writer",
    "chunk_plan",
    "discard",
]

#: Entries per shared transaction (a larger submission gets a transaction of its own).
MAX_BATCH = 500
#: The largest ``max_batch`` a combiner takes.
MAX_BATCH_LIMIT = 10_000
#: Entries of the first chunk of a transaction (whole submissions, so at least one).
FIRST_CHUNK = 32
T = TypeVar("T")
#: A submission's sequence numbers, or why it was refused.
Outcome = list[int] | Exception
#: ``write(tenant_id, take)`` opens the transaction, calls ``take()`` once the lock is granted
#: for the submissions to write, writes them and commits; returns one outcome per submission.
Writer = Callable[[str, Callable[[], list[list[T]]]], Awaitable[list[Outcome]]]
_Item = tuple[list[T], "asyncio.Future[list[int]]"]


class AppendCombiner(Generic[T]):
    """Coalesces concurrent submissions per (event loop, tenant) into transactions."""

    def __init__(self, write: Writer[T], *, max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self.max_batch = MAX_BATCH
        self.set_max_batch(max_batch)
        self._queues: dict[tuple[asyncio.AbstractEventLoop, str], list[_Item[T]]] = {}

    def set_max_batch(self, entries: int) -> None:
        """Entries per shared transaction from now on (1 to :data:`MAX_BATCH_LIMIT`)."""
        if isinstance(entries, bool) or not isinstance(entries, int):
            raise InvalidInput(f"the audit batch is a whole number of entries, not {entries!r}")
        if not 1 <= entries <= MAX_BATCH_LIMIT:
            raise InvalidInput(f"the audit batch is 1 to {MAX_BATCH_LIMIT} entries, not {entries}")
        self.max_batch = entries

    async def submit(self, tenant_id: str, entries: list[T]) -> list[int]:
        """Append ``entries``, contiguous and in order; return their sequence numbers."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        key = (loop, tenant_id)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append((entries, future))
            return await future
        queue = self._queues[key] = [(entries, future)]
        batch: list[_Item[T]] = []

        def take() -> list[list[T]]:
            count, total, most = 1, len(queue[0][0]), self.max_batch
            while count < len(queue) and total + len(queue[count][0]) <= most:
                total += len(queue[count][0])
                count += 1
            batch.extend(queue[:count])
            del queue[:count]
            return [entries for entries, _ in batch]

        try:
            while queue:
                try:
                    outcomes = await self._write(tenant_id, take)
                except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
                    if not batch:  # failed before take(): every submission waiting for it
                        batch.extend(queue)
                        queue.clear()
                    _fail(batch, exc)
                else:
                    for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                        if waiter.done():
                            continue
                        if isinstance(outcome, Exception):
                            waiter.set_exception(outcome)
                        else:
                            waiter.set_result(outcome)
                batch.clear()
        finally:
            del self._queues[key]
            leftover = TransactionRolledBack("the append was not written (its leader stopped)")
            _fail(batch + queue, leftover)
        return await future


def chunk_plan(sizes: Sequence[int]) -> list[range]:
    """Split submissions of ``sizes`` entries into runs for successive statements, in order.

    The first run holds at least :data:`FIRST_CHUNK` entries (or everything), each next one at
    least half again as many as the one before: preparing an entry (canonical bytes, hashes, a
    seal) costs about two thirds of writing it, so the next chunk is ready about when the
    statement before it returns, and the first statement starts early.
    """
    plan: list[range] = []
    start, target = 0, FIRST_CHUNK
    while start < len(sizes):
        end, total = start + 1, sizes[start]
        while end < len(sizes) and total < target:
            total += sizes[end]
            end += 1
        plan.append(range(start, end))
        start, target = end, max(target, total) * 3 // 2
    return plan


def discard(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` if it still runs: its outcome is not wanted (nor reported unretrieved)."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _fail(items: Sequence[_Item[T]], exc: BaseException) -> None:
    for _, waiter in items:
        if not waiter.done():
            waiter.set_exception(exc)
