"""PostgreSQL connection strings: pointing one at another database on the same server."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials as ``dsn``, on ``database``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))
