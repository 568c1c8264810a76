"""Micro-batching: concurrent predictions of the same model version, stacked into one call.

A scikit-learn ``predict`` costs about the same for one row as for a few hundred (its checks and
its dispatch dominate), so :class:`MicroBatcher` holds each key's requests for a short window
(``window`` seconds, 2 ms by default) or until ``max_rows`` rows wait, stacks their rows, makes
one call, and gives each caller its own rows' results (or the call's exception). The call runs on
the event loop: ``max_rows`` keeps each one short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tenantry.ai.data import Matrix

__all__ = ["MicroBatcher"]

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
        self.window, self.max_rows = window, max_rows
        self._pending: dict[Hashable, _Batch] = {}
        self.calls = 0
        self.batched_rows = 0

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
