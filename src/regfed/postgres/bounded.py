"""Statements with a bound on every wait: acquiring a connection, the statement, and the
cleanup after it.

asyncpg bounds none of these by itself in the way a service needs. A cancelled or timed
out statement makes asyncpg send a CancelRequest over a NEW connection and, when the
connection goes back to the pool, wait for that cancellation to finish: on a black-holed
link both wait for the operating system's TCP timeouts (62 s measured, for as many calls
as the pool had connections). So here a connection whose statement did not finish — the
caller's deadline, our own timeout, or a broken link — is terminated on the spot (its
socket closed, nothing sent, nothing awaited) and the pool opens a new one for the next
caller. Acquisition, the statement and one retry share a single timeout: the smaller of
this pool's and what is left of the caller's deadline (:mod:`regfed.deadlines`).

A statement that fails because the connection was lost before or while it ran (the
server restarted, ``pg_terminate_backend``) is retried once on a fresh connection within
the same budget, unless the caller says it is not idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from regfed import deadlines

# SQLSTATE classes that say the link or the server is gone, not that the statement was
# wrong: 08 connection exception, 53 insufficient resources (too many connections), 57P
# operator intervention (admin or crash shutdown, cannot connect now). 57014 (query
# cancelled) is not one: the server answered.
_LINK_SQLSTATES = ("08", "53", "57P")

# Failures after which the same statement may succeed on a new connection: the link was
# lost, or the server ended the session (pg_terminate_backend: 57P01). InternalClientError
# is how asyncpg refuses a connection whose session the server ended while it sat idle in
# the pool ("cannot switch to state ..."), before the socket's close reached it.
_LOST = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.InternalClientError,
    ConnectionError,
)


# What asyncpg and the network raise when a database cannot answer a statement: the server
# refused it or failed, the client library gave up, or the link did (refused, reset, our
# own timeout — TimeoutError is an OSError).
DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


def described(exc: BaseException) -> str:
    """A database failure in words fit for a log line or an error: its class and SQLSTATE,
    never the server's message (which may quote a value)."""
    sqlstate = getattr(exc, "sqlstate", None)
    return type(exc).__name__ + (f", SQLSTATE {sqlstate}" if sqlstate else "")


class Queryable(Protocol):
    """What the store and the registry adapters need of a pool (an asyncpg pool has it;
    :class:`BoundedPool` adds the bounds)."""

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Every row."""
        ...

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        """The first row, or None."""
        ...

    async def execute(self, query: str, *args: object) -> str:
        """The status of the command."""
        ...


def link_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or the link broke (as
    opposed to the server refusing one statement: a constraint, a missing table)."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(_LINK_SQLSTATES)
    return isinstance(exc, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError)


class BoundedPool:
    """An asyncpg pool whose statements are bounded in time, with broken connections
    terminated rather than waited on."""

    def __init__(self, pool: asyncpg.Pool, *, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout

    @property
    def timeout(self) -> float:
        """Seconds a statement gets, at most (less when the caller has less)."""
        return self._timeout

    async def unreachable(self) -> str | None:
        """None when ``SELECT 1`` succeeds; else what went wrong, in words fit for a log
        line (the exception class and SQLSTATE, never a server message)."""
        try:
            await self.fetchval("SELECT 1")
        except DATABASE_ERRORS as exc:
            return described(exc)
        return None

    async def fetch(self, query: str, *args: object, retry: bool = True) -> list[asyncpg.Record]:
        """Every row of ``query``."""
        return list(await self._run("fetch", query, args, retry))

    async def fetchrow(
        self, query: str, *args: object, retry: bool = True
    ) -> asyncpg.Record | None:
        """The first row of ``query``, or None."""
        row: asyncpg.Record | None = await self._run("fetchrow", query, args, retry)
        return row

    async def fetchval(self, query: str, *args: object, retry: bool = True) -> Any:
        """The first column of the first row of ``query``."""
        return await self._run("fetchval", query, args, retry)

    async def execute(self, query: str, *args: object, retry: bool = True) -> str:
        """Run ``query``; its status. ``retry=False`` for statements that must not run
        twice (the first may have committed before the link broke)."""
        status: str = await self._run("execute", query, args, retry)
        return status

    @asynccontextmanager
    async def connection(self, block: float | None = None) -> AsyncIterator[PoolConnectionProxy]:
        """A connection for several statements (a migration): acquiring it is bounded like
        a statement, the block by ``block`` seconds (default: this pool's timeout), both
        within the caller's deadline."""
        limit = deadlines.budget(self._timeout)
        if limit <= 0:
            raise TimeoutError
        async with asyncio.timeout(limit) as scope, self._acquired() as conn:
            seconds = deadlines.budget(block or self._timeout)
            scope.reschedule(asyncio.get_running_loop().time() + seconds)
            yield conn

    async def _run(self, method: str, query: str, args: tuple[object, ...], retry: bool) -> Any:
        limit = deadlines.budget(self._timeout)
        if limit <= 0:
            raise TimeoutError  # the caller's time is up: do not even take a connection
        async with asyncio.timeout(limit):
            try:
                async with self._acquired() as conn:
                    return await getattr(conn, method)(query, *args)
            except _LOST:
                if not retry:
                    raise
            # The connection was lost (the server restarted, or ended its sessions): the
            # pool's other idle connections most likely were too, so they are all replaced
            # as they are next taken, and the statement runs once more on a fresh one,
            # within what is left of the same timeout.
            await self._pool.expire_connections()
            async with self._acquired() as conn:
                return await getattr(conn, method)(query, *args)

    @asynccontextmanager
    async def _acquired(self) -> AsyncIterator[PoolConnectionProxy]:
        """A pool connection, terminated instead of released when its statement did not
        finish cleanly."""
        conn = await self._pool.acquire()
        try:
            yield conn
        except BaseException as exc:
            # Cancelled, timed out or broken mid-statement: the link's state is unknown.
            # Terminating closes the socket at once and skips asyncpg's CancelRequest and
            # its wait; the pool replaces the connection on the next acquire.
            if not isinstance(exc, asyncpg.PostgresError) or link_failure(exc):
                # A connection asyncpg saw close is already back in the pool, detached.
                with contextlib.suppress(asyncpg.InterfaceError):
                    conn.terminate()
            raise
        finally:
            # No I/O: a terminated connection is already back in the pool, and a healthy
            # one has nothing to reset (postgres/pool.py: StatelessConnection).
            await self._pool.release(conn)


# Seconds a statement gets when a store is built over a plain asyncpg pool (tests, tools);
# the service passes BoundedPools with REGFED_STORE_TIMEOUT.
PLAIN_POOL_TIMEOUT = 30.0


def bounded(pool: BoundedPool | asyncpg.Pool) -> BoundedPool:
    """``pool`` itself when it is bounded already, else bounded by PLAIN_POOL_TIMEOUT."""
    return pool if isinstance(pool, BoundedPool) else BoundedPool(pool, timeout=PLAIN_POOL_TIMEOUT)
