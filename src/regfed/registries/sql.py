"""What the PostgreSQL-backed registry adapters share: their failures, translated once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from regfed.domain.model import Registry
from regfed.errors import RegistryError
from regfed.postgres.bounded import DATABASE_ERRORS, described


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
    except DATABASE_ERRORS as exc:
        raise RegistryError(f"{registry.value} registry lookup failed ({described(exc)})") from exc
