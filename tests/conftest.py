"""Shared fixtures: a real PostgreSQL for the run, and fresh databases on it.

Tests that need PostgreSQL use ``REGFED_TEST_DSN`` (a server where the user may create
databases) when it is set, else an embedded server (pgserver) started once per run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest

from regfed.postgres.dsn import with_database

CreateDatabase = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server on which the tests may create databases."""
    dsn = os.environ.get("REGFED_TEST_DSN")
    if dsn:
        yield dsn
        return
    import pgserver

    folder = tempfile.mkdtemp(prefix="regfed-test-pg-")
    server = pgserver.get_server(folder, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
async def create_database(pg_server_dsn: str) -> AsyncIterator[CreateDatabase]:
    """A factory: ``await create_database(*ddl)`` makes a fresh database, applies each DDL
    script in it, and returns its DSN. Every database made is dropped at the end of the run."""
    made: list[str] = []

    async def create(*ddl: str) -> str:
        name = "regfed_test_" + secrets.token_hex(6)
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        made.append(name)
        dsn = with_database(pg_server_dsn, name)
        if ddl:
            conn = await asyncpg.connect(dsn)
            try:
                for script in ddl:
                    await conn.execute(script)
            finally:
                await conn.close()
        return dsn

    yield create

    admin = await asyncpg.connect(pg_server_dsn)
    try:
        for name in made:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
