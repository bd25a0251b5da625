"""What the PostgreSQL-backed registry adapters share: their failures, translated once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from regfed.domain.model import Registry
from regfed.errors import RegistryError

# Errors asyncpg and the network raise for a registry that cannot answer. TimeoutError (an
# OSError) is let through: a lookup that ran out of time is TIMED_OUT, not FAILED, whether
# the federation's timeout or the pool's own bound (postgres/bounded.py) fired first.
_DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


@asynccontextmanager
async def translate_errors(registry: Registry) -> AsyncIterator[None]:
    """Turn database and network failures inside the block into ``RegistryError``.

    The message keeps only the exception class and SQLSTATE: server messages may quote
    values (identifiers) and must not reach logs or callers through us.
    """
    try:
        yield
    except TimeoutError:
        raise
    except _DATABASE_ERRORS as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        detail = type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
        raise RegistryError(f"{registry.value} registry lookup failed: {detail}") from exc
