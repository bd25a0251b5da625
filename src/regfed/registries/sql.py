"""What the PostgreSQL-backed registry adapters share: their failures, translated once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from regfed.domain.model import Registry
from regfed.errors import RegistryError

# Errors asyncpg and the network raise for a registry that cannot answer. TimeoutError is
# an OSError: it can only come from asyncpg's own connect timeout here, because the
# caller's asyncio.timeout surfaces as CancelledError inside us, which is not caught.
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
    except _DATABASE_ERRORS as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        detail = type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
        raise RegistryError(f"{registry.value} registry lookup failed: {detail}") from exc
