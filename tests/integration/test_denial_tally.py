"""Denial counts: gathered in memory, written in batches, kept when a write fails."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from regfed.domain.model import DenialReason
from regfed.store.certificates import CertificateStore
from regfed.store.tally import DenialTally

pytestmark = pytest.mark.postgres

DAY = date(2026, 11, 26)


async def test_counts_reach_the_store_on_flush(store: CertificateStore) -> None:
    """Denials added in memory are written, one upsert per reason and day, on flush."""
    tally = DenialTally(store, interval=3600)
    for _ in range(3):
        tally.add(DenialReason.NOT_FOUND, DAY)
    tally.add(DenialReason.ACTIVE_ILLNESS, DAY)
    assert await store.denial_counts() == {}
    await tally.flush()
    await tally.flush()  # nothing new: nothing doubled
    assert await store.denial_counts() == {
        DenialReason.NOT_FOUND: 3,
        DenialReason.ACTIVE_ILLNESS: 1,
    }


async def test_stop_writes_what_is_left(store: CertificateStore) -> None:
    """Stopping flushes the last counts."""
    tally = DenialTally(store, interval=3600)
    await tally.start()
    tally.add(DenialReason.NO_RECORDS, DAY)
    await tally.stop()
    assert await store.denial_counts() == {DenialReason.NO_RECORDS: 1}


async def test_a_failed_write_keeps_the_counts(
    store: CertificateStore,
    pool: asyncpg.Pool,
) -> None:
    """When the store fails, the counts wait for the next flush instead of being lost."""
    tally = DenialTally(store, interval=3600)
    tally.add(DenialReason.BASIS_EXPIRED, DAY)
    await pool.execute("ALTER TABLE denials RENAME TO denials_away")
    await tally.flush()
    await pool.execute("ALTER TABLE denials_away RENAME TO denials")
    await tally.flush()
    assert await store.denial_counts() == {DenialReason.BASIS_EXPIRED: 1}
