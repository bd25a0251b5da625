"""Fixtures for tests against the service's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from regfed.store.certificates import CertificateStore
from regfed.store.migrate import migrate
from tests.conftest import CreateDatabase


@pytest.fixture
async def store_dsn(create_database: CreateDatabase) -> str:
    """A freshly migrated service database."""
    dsn = await create_database()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def pool(store_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of 10 connections to the freshly migrated service database."""
    pool = await asyncpg.create_pool(store_dsn, min_size=10, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> CertificateStore:
    """The store over the pool."""
    return CertificateStore(pool)
