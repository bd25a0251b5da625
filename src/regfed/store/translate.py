"""The store's failures, translated once: whatever asyncpg or the network raises becomes
:class:`~regfed.errors.StoreUnavailable`, naming the store and the operation.

The message keeps the exception class and SQLSTATE only: a server's message may quote a
value, and SQL or parameters never leave the store. The original stays chained
(``__cause__``) for logs. ``asyncio.CancelledError`` is a BaseException: it passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from regfed.errors import StoreUnavailable
from regfed.postgres.bounded import DATABASE_ERRORS, described


@contextlib.contextmanager
def translated(store: str, operation: str) -> Iterator[None]:
    """Inside, database and network failures become StoreUnavailable."""
    try:
        yield
    except TimeoutError as exc:  # our bound on a statement (postgres/bounded.py)
        raise StoreUnavailable(f"{store}: {operation} timed out") from exc
    except DATABASE_ERRORS as exc:
        raise StoreUnavailable(f"{store}: {operation} failed ({described(exc)})") from exc
