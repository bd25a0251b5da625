"""Statements with a bound on every wait: a connection whose statement did not finish is
terminated, never waited on, and a lost connection is retried once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from regfed import deadlines
from regfed.postgres.bounded import BoundedPool
from regfed.postgres.pool import create_pool
from tests.conftest import CreateDatabase

pytestmark = pytest.mark.postgres


@pytest.fixture
async def dsn(create_database: CreateDatabase) -> str:
    """A database with one table."""
    return await create_database("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")


@pytest.fixture
async def raw(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A regfed pool of two connections."""
    pool = await create_pool(dsn, 2)
    try:
        yield pool
    finally:
        pool.terminate()


async def test_a_statement_past_its_bound_is_cut_and_the_pool_stays_usable(
    dsn: str, pg_server_dsn: str
) -> None:
    """A statement blocked on a lock times out at the pool's bound; its connection is
    terminated (its backend goes away, not left queued on the lock) and the next statement
    gets a new one."""
    pool = await create_pool(dsn, 1)
    bounded = BoundedPool(pool, timeout=0.3)
    blocker = await asyncpg.connect(dsn)
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        before = await bounded.fetchval("SELECT pg_backend_pid()")
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            async with asyncio.timeout(10):  # a guard for the test, not a measurement
                with pytest.raises(TimeoutError):
                    await bounded.fetchval("SELECT x FROM t")
            # Not released to wait in the pool: the next statement is on a new connection.
            assert await bounded.fetchval("SELECT pg_backend_pid()") != before
        assert await bounded.fetchval("SELECT x FROM t") == 1
        # The cut connection's backend ends once the lock lets it notice the closed socket.
        for _ in range(250):
            if not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", before
            ):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the terminated connection's backend is still there")
    finally:
        await admin.close()
        await blocker.close()
        pool.terminate()


async def test_the_callers_deadline_cuts_the_pools_bound(raw: asyncpg.Pool, dsn: str) -> None:
    """Inside a call with little time left, a statement gets only that time."""
    bounded = BoundedPool(raw, timeout=30)
    blocker = await asyncpg.connect(dsn)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            async with asyncio.timeout(10):  # a guard: the pool's own bound is 30 s
                with deadlines.within(0.2), pytest.raises(TimeoutError):
                    await bounded.fetchval("SELECT x FROM t")
    finally:
        await blocker.close()


async def test_no_time_left_means_no_statement(raw: asyncpg.Pool) -> None:
    """A call whose deadline has passed does not even take a connection."""
    with deadlines.within(0), pytest.raises(TimeoutError):
        await BoundedPool(raw, timeout=5).fetchval("SELECT 1")


async def test_a_connection_ended_by_the_server_is_retried_once(
    raw: asyncpg.Pool, pg_server_dsn: str
) -> None:
    """pg_terminate_backend on the pool's connections: the next statement runs on a fresh
    one, unless it must not run twice."""
    bounded = BoundedPool(raw, timeout=10)
    pids = await asyncio.gather(
        bounded.fetchval("SELECT pg_backend_pid(), pg_sleep(0.1)"),
        bounded.fetchval("SELECT pg_backend_pid(), pg_sleep(0.1)"),
    )
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        for pid in set(pids):
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    assert await bounded.fetchval("SELECT 1") == 1
