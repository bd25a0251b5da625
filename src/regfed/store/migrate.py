"""Versioned schema migrations for the service database.

Migrations are the package's ``migrations/NNNN_name.sql`` files, applied in version order,
each in its own transaction together with its row in ``schema_migrations``: a migration
that fails leaves nothing behind. Every transaction first takes a transaction-level
advisory lock, so several server processes starting together apply each migration once;
the others wait, then find it recorded.

A migration keeps the release before it working (columns and tables are added, and
dropped only a release after the code stopped using them), so that during a rolling
update, or after a rollback, the older release runs on a store one step ahead. A store
holding migrations the running code does not ship is reported (:func:`ahead`), never
refused: refusing would stop the rollback an incident needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# Fixed key of the advisory lock serialising migrations ("regfed" in ASCII, as a bigint).
# Every process migrating this database must use the same key.
LOCK_KEY = 0x726567666564

# A plain connection or one acquired from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int         PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema migration: its version, name and SQL script."""

    version: int
    name: str
    sql: str


class MigrationError(Exception):
    """A migration could not be applied (nothing of it was kept)."""

    def __init__(self, migration: Migration, cause: BaseException) -> None:
        super().__init__(
            f"migration {migration.version:04d}_{migration.name} failed: {type(cause).__name__}"
        )
        self.migration = migration


def available() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    folder = files(__package__ or "regfed.store").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise ValueError(f"migration file name {entry.name!r} is not NNNN_name.sql")
        found.append(
            Migration(
                version=int(match["version"]),
                name=match["name"],
                sql=entry.read_text(encoding="utf-8"),
            )
        )
    return _checked(found)


def _checked(migrations: Sequence[Migration]) -> list[Migration]:
    ordered = sorted(migrations, key=lambda m: m.version)
    versions = [m.version for m in ordered]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {versions}")
    if any(v <= 0 for v in versions):
        raise ValueError("migration versions start at 1")
    return ordered


async def _applied(conn: Connection) -> set[int]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM schema_migrations")
    return {int(row["version"]) for row in rows}


async def pending(conn: Connection, migrations: Sequence[Migration] | None = None) -> list[int]:
    """The versions not yet applied to the database ``conn`` is connected to, in order."""
    todo = _checked(available() if migrations is None else migrations)
    done = await _applied(conn)
    return [m.version for m in todo if m.version not in done]


async def ahead(conn: Connection, migrations: Sequence[Migration] | None = None) -> list[int]:
    """The versions applied to the database that are not among ``migrations`` (default:
    the package's), in order: the store was migrated by a newer release."""
    known = {m.version for m in _checked(available() if migrations is None else migrations)}
    return sorted((await _applied(conn)) - known)


async def migrate(conn: Connection, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Apply the pending migrations in order; return the versions applied (``[]`` if current).

    ``migrations`` defaults to :func:`available`; tests pass their own. Raises
    :class:`MigrationError` when one fails: the migrations before it stay applied, nothing of
    the failing one is kept, and the ones after it are not attempted.
    """
    todo = _checked(available() if migrations is None else migrations)
    applied: list[int] = []
    for migration in todo:
        # READ COMMITTED explicitly: every statement after the lock is granted then sees what
        # a process that held the lock before us committed (a REPEATABLE READ default would
        # freeze the snapshot before the wait and make us re-apply its work).
        async with conn.transaction(isolation="read_committed"):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            await conn.execute(_CREATE_TABLE)
            done = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
                migration.version,
            )
            if done:
                continue
            try:
                # Any failure aborts the whole transaction: the script's effects and its
                # schema_migrations row go together or not at all.
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(migration, exc) from exc
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
                migration.version,
                migration.name,
            )
        applied.append(migration.version)
    return applied
