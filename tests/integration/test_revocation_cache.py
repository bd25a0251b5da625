"""The in-memory revocation view: loaded at start, told of revocations by NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from regfed.store.certificates import CertificateStore
from regfed.store.migrate import migrate
from regfed.store.revocations import RevocationCache
from tests.conftest import CreateDatabase
from tests.integration.test_certificate_store import NOW, basis, candidate, person

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(create_database: CreateDatabase) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A migrated service database and a pool on it."""
    dsn = await create_database()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield dsn, pool
    finally:
        await pool.close()


async def eventually_revoked(cache: RevocationCache, uvci: str) -> bool:
    """Whether ``cache`` learns of the revocation within a bounded wait."""
    for _ in range(100):
        if cache.revoked_at(uvci) is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_revocations_present_at_start_are_loaded(
    database: tuple[str, asyncpg.Pool],
) -> None:
    """A cache started after a revocation knows it."""
    dsn, pool = database
    store = CertificateStore(pool)
    record = await store.record(candidate(person(), basis()))
    await store.revoke(record.uvci, "test", NOW)
    cache = RevocationCache(store, dsn)
    await cache.start()
    try:
        assert cache.revoked_at(record.uvci) == NOW
    finally:
        await cache.stop()


async def test_another_process_revocation_arrives_by_notify(
    database: tuple[str, asyncpg.Pool],
) -> None:
    """A revocation made elsewhere reaches a running cache without waiting for the refresh."""
    dsn, pool = database
    store = CertificateStore(pool)
    record = await store.record(candidate(person(), basis()))
    cache = RevocationCache(store, dsn, refresh=3600)
    await cache.start()
    try:
        assert cache.revoked_at(record.uvci) is None
        await store.revoke(record.uvci, "revoked by another server process", NOW)
        assert await eventually_revoked(cache, record.uvci)
    finally:
        await cache.stop()


async def test_without_notifications_the_periodic_reload_catches_up(
    database: tuple[str, asyncpg.Pool],
) -> None:
    """With the listening connection gone, the periodic reload still picks revocations up."""
    _, pool = database
    store = CertificateStore(pool)
    record = await store.record(candidate(person(), basis()))
    cache = RevocationCache(store, "postgresql://nobody@127.0.0.1:1/none", refresh=0.1)
    await cache.start()
    try:
        await store.revoke(record.uvci, "test", NOW)
        assert await eventually_revoked(cache, record.uvci)
    finally:
        await cache.stop()
