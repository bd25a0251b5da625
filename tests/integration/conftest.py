"""Fixtures for tests against the service's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from regfed.store.certificates import CertificateStore
from regfed.store.migrate import migrate
from tests.conftest import CreateDatabase


@pytest.fixture
async def pool(create_database: CreateDatabase) -> AsyncIterator[asyncpg.Pool]:
    """A pool of 10 connections to a freshly migrated service database."""
    dsn = await create_database()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> CertificateStore:
    """The store over the pool."""
    return CertificateStore(pool)
