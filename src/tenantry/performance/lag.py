"""Event-loop lag: a task that asks to wake every ``interval`` seconds and measures how late it
woke. A loop blocked by a synchronous call (a ``time.sleep``, a CPU-bound parse) wakes it late by
as long as the block lasted, so the lag is what every other coroutine waited too."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable

__all__ = ["LoopLag"]


class LoopLag:
    """Measures the loop's wake-up delay every ``interval`` seconds; ``on_lag(seconds)`` is
    called with each measurement (the sampler records it)."""

    def __init__(self, on_lag: Callable[[float], None], *, interval: float = 0.5) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.on_lag, self.interval = on_lag, interval
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    async def _run(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.perf_counter() - asked - self.interval)
            self.worst = max(self.worst, lag)
            self.on_lag(lag)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
