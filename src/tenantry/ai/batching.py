"""Micro-batching: concurrent predictions of the same model version, stacked into one call.

A scikit-learn ``predict`` costs about the same for one row as for a few hundred (its checks and
its dispatch dominate), so :class:`MicroBatcher` holds each key's requests for a short window
(``window`` seconds, 2 ms by default) or until ``max_rows`` rows wait, stacks their rows, makes
one call, and gives each caller its own rows' results (or the call's exception). The call runs on
the event loop: ``max_rows`` keeps each one short. Both can be changed while it runs
(:meth:`MicroBatcher.set_window`, :meth:`MicroBatcher.set_max_rows`: the performance manager's
``ai_batch_window`` and ``ai_batch_max_rows`` knobs); a batch already waiting keeps its timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tenantry.ai.data import Matrix
from tenantry.errors import InvalidInput

__all__ = ["MAX_ROWS_LIMIT", "MAX_WINDOW", "MicroBatcher"]

#: The largest window (seconds) and row count a batcher takes.
MAX_WINDOW = 60.0
MAX_ROWS_LIMIT = 65_536

Run = Callable[[Matrix], Sequence[Any]]


@dataclass
class _Batch:
    run: Run
    parts: list[tuple[Matrix, asyncio.Future[list[Any]]]] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    """See the module docstring. ``calls`` and ``batched_rows`` count what it did."""

    def __init__(self, *, window: float = 0.002, max_rows: int = 512) -> None:
        self.window, self.max_rows = 0.0, 1
        self.set_window(window)
        self.set_max_rows(max_rows)
        self._pending: dict[Hashable, _Batch] = {}
        self.calls = 0
        self.batched_rows = 0

    def set_window(self, seconds: float) -> None:
        """Hold the next batches ``seconds`` (0 to :data:`MAX_WINDOW`)."""
        number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
        if not (number and 0 <= seconds <= MAX_WINDOW):
            raise InvalidInput(f"the batch window is 0 to {MAX_WINDOW} seconds, not {seconds!r}")
        self.window = float(seconds)

    def set_max_rows(self, rows: int) -> None:
        """Flush a batch once ``rows`` rows wait (1 to :data:`MAX_ROWS_LIMIT`)."""
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS_LIMIT:
            raise InvalidInput(
                f"max_rows is a whole number from 1 to {MAX_ROWS_LIMIT}, not {rows!r}"
            )
        self.max_rows = rows

    async def submit(self, key: Hashable, rows: Matrix, run: Run) -> list[Any]:
        """``run``'s results for ``rows``, computed with whatever else waits under ``key``
        (requests under one key must want the same ``run``)."""
        loop = asyncio.get_running_loop()
        batch = self._pending.get(key)
        if batch is None:
            batch = self._pending[key] = _Batch(run)
            batch.timer = loop.call_later(self.window, self._flush, key, batch)
        future: asyncio.Future[list[Any]] = loop.create_future()
        batch.parts.append((rows, future))
        batch.rows += len(rows)
        if batch.rows >= self.max_rows:
            self._flush(key, batch)
        return await future

    def _flush(self, key: Hashable, batch: _Batch) -> None:
        if self._pending.get(key) is batch:
            del self._pending[key]
        if batch.timer is not None:
            batch.timer.cancel()
        parts = [(rows, f) for rows, f in batch.parts if not f.done()]
        batch.parts = []
        if not parts:
            return
        self.calls += 1
        self.batched_rows += sum(len(rows) for rows, _ in parts)
        try:
            outputs = list(batch.run(np.vstack([rows for rows, _ in parts])))
        except Exception as exc:  # noqa: BLE001 - every caller gets the call's exception
            for _, future in parts:
                future.set_exception(exc)
            return
        start = 0
        for rows, future in parts:
            future.set_result(outputs[start : start + len(rows)])
            start += len(rows)
