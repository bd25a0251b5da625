"""Watching the service's own database: migrated when it first answers, checked while it
runs, and the answer published as the service's health.

The server starts whether the store is up or not. The monitor's first check migrates the
store (the server waits for that check, bounded by the store's timeout); while the store
cannot be reached the store's circuit breaker stays open — calls needing the store fail
at once with UNAVAILABLE, Verify keeps answering from memory — and the service reports
NOT_SERVING. The monitor checks every ``interval`` seconds while the store is up, every
``down_interval`` while it is not, and at once when traffic opens the breaker. Its first
successful check after an outage (migrating first, if the store was never migrated)
closes the breaker and reports SERVING again.

Outages are logged once each: one line naming the store and the kind of failure when it
goes, one when it is back, never a traceback per check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from regfed.breaker import BreakerState, CircuitBreaker
from regfed.postgres.bounded import DATABASE_ERRORS, BoundedPool, described
from regfed.postgres.tasks import cancel_and_wait
from regfed.store.migrate import MigrationError, ahead, migrate

log = logging.getLogger(__name__)

# Migrating may wait on another process's advisory lock (several workers starting at once)
# and runs DDL: it gets longer than a statement, and still a bound.
MIGRATE_TIMEOUT = 60.0

Publish = Callable[[bool], Awaitable[None]]


class StoreMonitor:
    """Checks the store; closes or trips its breaker; publishes whether the service serves."""

    def __init__(
        self,
        pool: BoundedPool,
        breaker: CircuitBreaker,
        publish: Publish,
        *,
        interval: float = 1.0,
        down_interval: float = 0.25,
    ) -> None:
        self._pool = pool
        self._breaker = breaker
        self._publish = publish
        self._interval = interval
        self._down_interval = min(down_interval, interval)
        self._migrated = False
        self._serving: bool | None = None
        self._down_since: float | None = None
        self._wake = asyncio.Event()
        self._first_check = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        breaker.subscribe(self._breaker_changed)

    @property
    def serving(self) -> bool:
        """Whether the store was migrated and answered its last check."""
        return bool(self._serving)

    async def start(self, wait: float) -> None:
        """Hold the breaker until the first check succeeds, start checking in the
        background, and wait at most ``wait`` seconds for that first check (the server
        starts NOT_SERVING when the store has not answered by then)."""
        self._breaker.hold()
        self._task = asyncio.create_task(self._run(), name="store-monitor")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._first_check.wait()

    async def stop(self) -> None:
        """Stop checking."""
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._publisher)
        self._task = self._publisher = None

    async def check(self) -> bool:
        """One check: migrate the store if that is still to do, else ``SELECT 1``."""
        problem: str | None = None
        try:
            if self._migrated:
                unreachable = await self._pool.unreachable()
                problem = None if unreachable is None else f"unreachable ({unreachable})"
            else:
                async with self._pool.connection(MIGRATE_TIMEOUT) as conn:
                    applied = await migrate(conn)
                    newer = await ahead(conn)
                self._migrated = True
                if applied:
                    log.info("store migrated: applied %s", applied)
                if newer:
                    log.warning(
                        "the store holds migrations %s that this release does not ship: a "
                        "newer release migrated it (serving: each migration keeps the release "
                        "before it working)",
                        newer,
                    )
        except MigrationError as exc:
            problem = f"migration failed ({exc})"
        except DATABASE_ERRORS as exc:  # refused connections, a black-holed link too
            problem = f"unreachable ({described(exc)})"
        except Exception:
            # A bug must not stop the checks (the store would stay NOT_SERVING for ever).
            log.exception("store check failed unexpectedly")
            problem = "check failed"
        if problem is None:
            self._up()
        else:
            self._down(problem)
        await self._publish_state()
        return self.serving

    def _down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "store %s: not serving regfed.v1 until it is back; checking every %.2g s",
                why,
                self._down_interval,
            )
        self._breaker.trip()

    def _up(self) -> None:
        if self._down_since is not None:
            log.info("store is back after %.1f s: serving", time.monotonic() - self._down_since)
            self._down_since = None
        self._breaker.close()

    def _breaker_changed(self, state: BreakerState) -> None:
        # Traffic opened (or a probe closed) the breaker: publish now, even while a check
        # is waiting on a dead link, and check again soon.
        self._wake.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(self._publish_state())

    async def _publish_state(self) -> None:
        while True:  # until what is published is what holds
            serving = self._migrated and self._breaker.state is BreakerState.CLOSED
            if serving == self._serving:
                return
            self._serving = serving
            await self._publish(serving)

    async def _run(self) -> None:
        await self.check()
        self._first_check.set()
        while True:
            up = self._serving and self._breaker.state is BreakerState.CLOSED
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval if up else self._down_interval):
                    await self._wake.wait()
            self._wake.clear()
            await self._publish_state()
            await self.check()
