"""The port every registry adapter implements, and the one error it may raise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import asyncpg

from regfed.domain.model import PersonQuery, PersonRecord, Registry


class RegistryError(Exception):
    """A registry could not answer (unreachable, refused, broken schema, ...).

    The message names the registry and the kind of failure only: never personal data,
    never SQL, so it may be logged and counted as it is.
    """


class RegistryAdapter(Protocol):
    """Looks a person up in one registry.

    Implementations raise :class:`RegistryError` for every failure of the registry and
    let ``asyncio.CancelledError`` through untouched: the caller applies its deadline with
    ``asyncio.timeout`` and must see its own cancellation.
    """

    # A read-only protocol member, so an implementation may use a plain attribute.
    @property
    def registry(self) -> Registry:
        """Which registry this adapter reads."""
        ...

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        """The person's record, or None when the registry does not know them.

        None also when the query carries no identifier this registry is keyed on; the
        registry is then not queried at all.
        """
        ...


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
    """Turn database and network failures inside the block into :class:`RegistryError`.

    The message keeps only the exception class and SQLSTATE: server messages may quote
    values (identifiers) and must not reach logs or callers through us.
    """
    try:
        yield
    except _DATABASE_ERRORS as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        detail = type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
        raise RegistryError(f"{registry.value} registry lookup failed: {detail}") from exc
