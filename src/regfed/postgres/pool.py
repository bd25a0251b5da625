"""asyncpg pools as regfed uses them: small, and without the reset query on release.

asyncpg resets every connection it takes back into a pool (``RESET ALL``, ``UNLISTEN *``,
``CLOSE ALL``, advisory unlocks): one more round trip per call, measured at about a third
of a pool's throughput on the Issue path. regfed's connections never change session state
(no SET, LISTEN, cursors or advisory locks held outside a transaction: migrations take
transaction-level locks only, and notifications use a dedicated connection), so there is
nothing to reset.
"""

from __future__ import annotations

from typing import Any

import asyncpg


class StatelessConnection(asyncpg.Connection):
    """A connection whose session state never changes, so a pool need not reset it."""

    def get_reset_query(self) -> str:
        """Nothing to reset (see the module docstring)."""
        return ""


async def create_pool(dsn: str, size: int, **kwargs: Any) -> asyncpg.Pool:
    """A pool of at most ``size`` stateless connections to ``dsn``."""
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, connection_class=StatelessConnection, **kwargs
    )
    assert pool is not None  # asyncpg's stubs allow None for an unawaited pool
    return pool
