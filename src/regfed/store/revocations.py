"""An in-memory view of revocations, so Verify answers without a database round trip.

Revocations are rare and every Verify needs them. Each server process keeps the full set
(UVCI -> revocation time), reloads it when PostgreSQL announces a revocation on
``REVOCATIONS_CHANNEL`` (the Revoke statement itself sends the NOTIFY, delivered at
commit), and once every ``refresh`` seconds in case a notification was missed while the
listening connection was down. A revocation made by this process is applied at once.

The store may be down when the server starts: the cache then starts empty and keeps
trying (every ``retry`` seconds) until its first load succeeds; until then it does not
pretend to know, and :meth:`RevocationCache.revoked_at` raises StoreUnavailable (a code
must not read VALID because the revocations could not be read). Once loaded it keeps
answering from memory through store outages, and reloads as soon as the listening
connection is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import asyncpg

from regfed.errors import StoreUnavailable
from regfed.logthrottle import DEPENDENCIES
from regfed.postgres.bounded import DATABASE_ERRORS
from regfed.postgres.tasks import cancel_and_wait
from regfed.store.certificates import REVOCATIONS_CHANNEL, CertificateStore

log = logging.getLogger(__name__)


class RevocationCache:
    """Revoked UVCIs with their revocation times, kept current."""

    def __init__(
        self,
        store: CertificateStore,
        dsn: str,
        *,
        refresh: float = 30.0,
        retry: float = 0.5,
        connect_timeout: float = 5.0,
    ) -> None:
        self._store = store
        self._dsn = dsn
        self._refresh = refresh
        self._retry = retry
        self._connect_timeout = connect_timeout
        self._revoked: dict[str, datetime] = {}
        self._loaded = False
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def loaded(self) -> bool:
        """Whether the set has been read from the store at least once."""
        return self._loaded

    def revoked_at(self, uvci: str) -> datetime | None:
        """When ``uvci`` was revoked, or None; StoreUnavailable before the first load."""
        if not self._loaded:
            raise StoreUnavailable("revocations not loaded yet: the store has not answered")
        return self._revoked.get(uvci)

    def note(self, uvci: str, revoked_at: datetime) -> None:
        """Apply a revocation this process made, without waiting for the notification."""
        self._revoked.setdefault(uvci, revoked_at)

    async def start(self) -> None:
        """Try to load the set (within the store's bound), then listen and keep it current
        in the background. Never fails: with the store down the background task keeps
        trying."""
        await self._reload()
        self._task = asyncio.create_task(self._run(), name="revocation-cache")

    async def stop(self) -> None:
        """Stop listening and reloading."""
        await cancel_and_wait(self._task)
        self._task = None
        await self._close_listener()

    def _notified(self, *_: object) -> None:
        self._changed.set()

    async def _listen(self) -> bool:
        """Open the listening connection (bounded); whether it is open."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                self._listener = await asyncpg.connect(self._dsn)
                await self._listener.add_listener(REVOCATIONS_CHANNEL, self._notified)
        except DATABASE_ERRORS as exc:
            DEPENDENCIES.log(
                log,
                logging.WARNING,
                "revocations:listen",
                "revocation notifications unavailable (%s); reloading periodically",
                type(exc).__name__,
            )
            await self._close_listener()
            return False
        return True

    async def _close_listener(self) -> None:
        if self._listener is not None:
            # Terminated, not closed: a graceful close waits for the server's goodbye,
            # which on a dead link never comes.
            self._listener.terminate()
            self._listener = None

    async def _reload(self) -> None:
        try:
            self._revoked = await self._store.revoked()
        except StoreUnavailable:
            DEPENDENCIES.log(
                log,
                logging.WARNING,
                "revocations:reload",
                "could not %s revocations; %s",
                "reload" if self._loaded else "load",
                "keeping the last known set" if self._loaded else "will keep trying",
            )
        else:
            self._loaded = True

    async def _run(self) -> None:
        """Reload on each notification, every ``refresh`` seconds regardless, and as soon as
        the listening connection is back after it was lost (what was announced meanwhile
        was missed)."""
        while True:
            if self._listener is None or self._listener.is_closed():
                await self._close_listener()
                if await self._listen():
                    await self._reload()  # what was announced while nobody listened
            listening = self._listener is not None
            wait = self._refresh if listening and self._loaded else min(self._retry, self._refresh)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()
            self._changed.clear()
            await self._reload()
