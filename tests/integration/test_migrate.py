"""Schema migrations against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from regfed.store.migrate import Migration, MigrationError, ahead, available, migrate, pending
from tests.integration.harness import channel_to, demo_settings, running

pytestmark = pytest.mark.postgres

CreateDatabase = Callable[..., Awaitable[str]]


@pytest.fixture
async def dsn(create_database: CreateDatabase) -> str:
    """A fresh, empty database."""
    return await create_database()


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the fresh database."""
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


def test_available_migrations_are_numbered_and_ordered() -> None:
    """The package ships migrations 1..n in order, each with a name and SQL."""
    migrations = available()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "certificates"
    assert all(m.sql.strip() for m in migrations)


async def test_migrate_applies_once_then_is_current(conn: asyncpg.Connection) -> None:
    """A fresh database gets every migration; a second run applies nothing."""
    versions = [m.version for m in available()]
    assert await pending(conn) == versions

    assert await migrate(conn) == versions
    assert await pending(conn) == []
    assert await migrate(conn) == []

    rows = await conn.fetch("SELECT version, name, applied_at FROM schema_migrations")
    assert sorted(r["version"] for r in rows) == versions
    assert all(r["name"] and r["applied_at"] is not None for r in rows)
    assert await conn.fetchval("SELECT to_regclass('certificates') IS NOT NULL")
    assert await conn.fetchval("SELECT to_regclass('denials') IS NOT NULL")


async def test_concurrent_migrations_apply_each_version_once(dsn: str) -> None:
    """Two processes migrating together apply every migration exactly once between them."""
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        versions = [m.version for m in available()]
        assert sorted(results[0] + results[1]) == versions
        assert not set(results[0]) & set(results[1])
        count = await first.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(versions)
    finally:
        await first.close()
        await second.close()


async def test_many_concurrent_migrations_on_a_longer_chain(dsn: str) -> None:
    """Five connections racing over a chain of slow migrations each apply a version once."""
    chain = [
        Migration(v, f"step_{v}", f"SELECT pg_sleep(0.05); CREATE TABLE t{v} (x int)")
        for v in range(1, 5)
    ]
    connections = [await asyncpg.connect(dsn) for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrate(c, chain) for c in connections))
        applied = [v for result in results for v in result]
        assert sorted(applied) == [1, 2, 3, 4]
        assert all(result == sorted(result) for result in results)
    finally:
        for connection in connections:
            await connection.close()


async def test_failing_migration_leaves_nothing_half_applied(conn: asyncpg.Connection) -> None:
    """A migration that fails midway keeps none of its changes and is not recorded."""
    chain = [
        Migration(1, "good", "CREATE TABLE good (x int)"),
        Migration(2, "bad", "CREATE TABLE half (x int); INSERT INTO good VALUES (1); SELECT 1/0"),
        Migration(3, "later", "CREATE TABLE later (x int)"),
    ]
    with pytest.raises(MigrationError, match="0002_bad") as caught:
        await migrate(conn, chain)
    assert caught.value.migration.version == 2

    assert await conn.fetchval("SELECT to_regclass('good') IS NOT NULL")
    assert await conn.fetchval("SELECT to_regclass('half') IS NULL")
    assert await conn.fetchval("SELECT to_regclass('later') IS NULL")
    assert await conn.fetchval("SELECT count(*) FROM good") == 0
    assert await pending(conn, chain) == [2, 3]


async def test_fixed_migration_resumes_where_it_stopped(conn: asyncpg.Connection) -> None:
    """After a failure, a corrected chain applies the rest and skips what is done."""
    broken = [Migration(1, "one", "CREATE TABLE one (x int)"), Migration(2, "two", "SELECT 1/0")]
    with pytest.raises(MigrationError):
        await migrate(conn, broken)
    fixed = [broken[0], Migration(2, "two", "CREATE TABLE two (x int)")]
    assert await migrate(conn, fixed) == [2]


def test_duplicate_versions_are_refused() -> None:
    """Two migrations with one version number are a packaging error."""
    from regfed.store.migrate import _checked

    with pytest.raises(ValueError, match="duplicate"):
        _checked([Migration(1, "a", "SELECT 1"), Migration(1, "b", "SELECT 1")])


async def test_schema_holds_no_personal_data_columns(conn: asyncpg.Connection) -> None:
    """The certificates table has no column for names or raw identifiers."""
    await migrate(conn)
    columns = {
        r["column_name"]
        for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'certificates'"
        )
    }
    assert columns == {
        "uvci",
        "person_key",
        "basis_fingerprint",
        "kind",
        "valid_from",
        "valid_until",
        "issued_at",
        "kid",
        "sources",
        "degraded",
        "revoked_at",
        "revocation_reason",
    }


async def test_migrate_through_a_pool_connection(dsn: str) -> None:
    """A connection acquired from a pool migrates like a plain one."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await migrate(conn) == [m.version for m in available()]
            assert await pending(conn) == []
    finally:
        await pool.close()


async def test_kid_migration_turns_base64_text_into_the_8_bytes(conn: asyncpg.Connection) -> None:
    """Migration 3 keeps every certificate's signing key: base64 text becomes bytes."""
    first_two = [m for m in available() if m.version <= 2]
    await migrate(conn, first_two)
    await conn.execute(
        "INSERT INTO certificates (uvci, person_key, basis_fingerprint, kind, valid_from,"
        " valid_until, issued_at, key_id, sources) VALUES ('URN:UVCI:01:RU:X', $1, $1,"
        " 'test', now(), now() + interval '1 day', now(), 'AAECAwQFBgc=', '{city}')",
        b"k" * 32,
    )
    assert 3 in await migrate(conn)
    assert await conn.fetchval("SELECT kid FROM certificates") == bytes(range(8))
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE certificates SET kid = '\\x00'::bytea")


async def test_a_store_migrated_by_a_newer_release_is_reported(conn: asyncpg.Connection) -> None:
    """Versions in the store that the package does not ship: a newer release ran here."""
    await migrate(conn)
    assert await ahead(conn) == []
    newest = available()[-1].version
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future'),"
        " ($2, 'further')",
        newest + 2,
        newest + 1,
    )
    assert await ahead(conn) == [newest + 1, newest + 2]
    assert await migrate(conn) == []  # nothing of ours is missing: nothing applied


async def test_a_server_on_a_store_ahead_of_it_serves_and_says_so(
    create_database: CreateDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rollback: the older release starts on the newer store, serves, and warns."""
    settings = await demo_settings(create_database, tmp_path)
    assert settings.store_dsn is not None
    conn = await asyncpg.connect(settings.store_dsn)
    try:
        await migrate(conn)
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'next')")
    finally:
        await conn.close()
    with caplog.at_level(logging.WARNING, logger="regfed.store.monitor"):
        async with running(settings) as app, channel_to(app) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(  # type: ignore[attr-defined]  # the stubs lack it
                health_pb2.HealthCheckRequest(service="regfed.v1.CertificateService"), timeout=10
            )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    warnings = [r.getMessage() for r in caplog.records if r.name == "regfed.store.monitor"]
    assert any("[9999]" in message for message in warnings)
