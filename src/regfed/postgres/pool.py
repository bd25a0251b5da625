"""asyncpg pools as regfed uses them: small, opened without connecting, closed with a bound,
and without the reset query on release.

asyncpg resets every connection it takes back into a pool (``RESET ALL``, ``UNLISTEN *``,
``CLOSE ALL``, advisory unlocks): one more round trip per call, measured at about a third
of a pool's throughput on the Issue path. regfed's connections never change session state
(no SET, LISTEN, cursors or advisory locks held outside a transaction: migrations take
transaction-level locks only, and notifications use a dedicated connection), so there is
nothing to reset.

Pools start empty (``min_size=0``): creating one never touches the network, so a database
that is down at start-up does not stop the start; the first statement connects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class StatelessConnection(asyncpg.Connection):
    """A connection whose session state never changes, so a pool need not reset it."""

    def get_reset_query(self) -> str:
        """Nothing to reset (see the module docstring)."""
        return ""


async def create_pool(
    dsn: str, size: int, *, connect_timeout: float = 60.0, **kwargs: Any
) -> asyncpg.Pool:
    """A pool of at most ``size`` stateless connections to ``dsn``; none opened yet.

    ``connect_timeout`` bounds each new connection (callers bound their statements with
    :class:`~regfed.postgres.bounded.BoundedPool`, which covers connecting too).
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size,
        connection_class=StatelessConnection,
        timeout=connect_timeout,
        **kwargs,
    )
    assert pool is not None  # asyncpg's stubs allow None for an unawaited pool
    return pool


async def close_pool(pool: asyncpg.Pool, within: float) -> None:
    """Close ``pool`` gracefully within ``within`` seconds, else terminate its connections
    (closing sends a goodbye and waits for it: on a dead link, for ever)."""
    try:
        async with asyncio.timeout(within):
            await pool.close()
    except TimeoutError:
        log.warning("a database pool did not close within %.1f s; terminated", within)
        pool.terminate()
