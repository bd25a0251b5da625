"""The in-memory revocation view: loaded at start, told of revocations by NOTIFY."""

from __future__ import annotations

import asyncio

import pytest

from regfed.store.certificates import CertificateStore
from regfed.store.revocations import RevocationCache
from tests.integration.test_certificate_store import NOW, basis, candidate, person

pytestmark = pytest.mark.postgres


async def eventually_revoked(cache: RevocationCache, uvci: str) -> bool:
    """Whether ``cache`` learns of the revocation within a bounded wait."""
    for _ in range(100):
        if cache.revoked_at(uvci) is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_revocations_present_at_start_are_loaded(
    store_dsn: str, store: CertificateStore
) -> None:
    """A cache started after a revocation knows it."""
    record = await store.record(candidate(person(), basis()))
    await store.revoke(record.uvci, "test", NOW)
    cache = RevocationCache(store, store_dsn)
    await cache.start()
    try:
        assert cache.revoked_at(record.uvci) == NOW
    finally:
        await cache.stop()


async def test_another_process_revocation_arrives_by_notify(
    store_dsn: str, store: CertificateStore
) -> None:
    """A revocation made elsewhere reaches a running cache without waiting for the refresh."""
    record = await store.record(candidate(person(), basis()))
    cache = RevocationCache(store, store_dsn, refresh=3600)
    await cache.start()
    try:
        assert cache.revoked_at(record.uvci) is None
        await store.revoke(record.uvci, "revoked by another server process", NOW)
        assert await eventually_revoked(cache, record.uvci)
    finally:
        await cache.stop()


async def test_without_notifications_the_periodic_reload_catches_up(
    store: CertificateStore,
) -> None:
    """With the listening connection gone, the periodic reload still picks revocations up."""
    record = await store.record(candidate(person(), basis()))
    cache = RevocationCache(store, "postgresql://nobody@127.0.0.1:1/none", refresh=0.1)
    await cache.start()
    try:
        await store.revoke(record.uvci, "test", NOW)
        assert await eventually_revoked(cache, record.uvci)
    finally:
        await cache.stop()
