"""Background tasks a component owns: stopped by cancelling and waiting for them."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class PeriodicFlush:
    """What gathers writes in memory and flushes them every ``interval`` seconds in a task
    of its own, and once more when stopped. Subclasses write in :meth:`flush`."""

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Write what is pending; keep it for the next flush when the write fails."""
        raise NotImplementedError

    async def start(self) -> None:
        """Flush periodically from now on."""
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop the periodic flush and write what is left."""
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
