"""An in-memory view of revocations, so Verify answers without a database round trip.

Revocations are rare and every Verify needs them. Each server process keeps the full set
(UVCI -> revocation time), reloads it when PostgreSQL announces a revocation on
``REVOCATIONS_CHANNEL`` (the Revoke statement itself sends the NOTIFY, delivered at
commit), and once every ``refresh`` seconds in case a notification was missed while the
listening connection was down. A revocation made by this process is applied at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import asyncpg

from regfed.errors import StoreUnavailable
from regfed.postgres.tasks import cancel_and_wait
from regfed.store.certificates import REVOCATIONS_CHANNEL, CertificateStore

log = logging.getLogger(__name__)


class RevocationCache:
    """Revoked UVCIs with their revocation times, kept current."""

    def __init__(self, store: CertificateStore, dsn: str, *, refresh: float = 30.0) -> None:
        self._store = store
        self._dsn = dsn
        self._refresh = refresh
        self._revoked: dict[str, datetime] = {}
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def revoked_at(self, uvci: str) -> datetime | None:
        """When ``uvci`` was revoked, or None."""
        return self._revoked.get(uvci)

    def note(self, uvci: str, revoked_at: datetime) -> None:
        """Apply a revocation this process made, without waiting for the notification."""
        self._revoked.setdefault(uvci, revoked_at)

    async def start(self) -> None:
        """Load the set and start listening; the first load's failure stops the start."""
        self._revoked = await self._store.revoked()
        await self._listen()
        self._task = asyncio.create_task(self._run(), name="revocation-cache")

    async def stop(self) -> None:
        """Stop listening and reloading."""
        await cancel_and_wait(self._task)
        self._task = None
        await self._close_listener()

    def _notified(self, *_: object) -> None:
        self._changed.set()

    async def _listen(self) -> None:
        try:
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener(REVOCATIONS_CHANNEL, self._notified)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning(
                "revocation notifications unavailable (%s); reloading periodically",
                type(exc).__name__,
            )
            await self._close_listener()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await self._listener.close()
            self._listener = None

    async def _run(self) -> None:
        """Reload on each notification, and every ``refresh`` seconds regardless."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh):
                    await self._changed.wait()
            self._changed.clear()
            if self._listener is None or self._listener.is_closed():
                await self._close_listener()
                await self._listen()
            try:
                self._revoked = await self._store.revoked()
            except StoreUnavailable:
                log.warning("could not reload revocations; keeping the last known set")
