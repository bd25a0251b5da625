"""The application store against real PostgreSQL: its constraints, leases and counts."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from regfed.domain.model import DenialReason
from regfed.errors import StoreUnavailable
from regfed.service.ports import (
    ApplicationCategory,
    ApplicationRecord,
    ApplicationStatus,
    Lease,
)
from regfed.store.applications import ApplicationStore

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def pending(
    person: int, *, at: datetime = NOW, category: ApplicationCategory = ApplicationCategory.OTHER
) -> ApplicationRecord:
    """An open application of person number ``person``, due at ``at``."""
    return ApplicationRecord(
        id=uuid.uuid4(),
        person_key=person.to_bytes(32, "big"),
        category=category,
        status=ApplicationStatus.PENDING,
        submitted_at=at,
        checks=1,
        checked_at=at,
        next_check_at=at,
        denial=DenialReason.NOT_FOUND,
        sealed_person=b"\x01sealed",
    )


def lease(until: datetime = NOW + timedelta(minutes=2)) -> Lease:
    """A fresh lease."""
    return Lease(uuid.uuid4().bytes, until)


@pytest.fixture
def applications(pool: asyncpg.Pool) -> ApplicationStore:
    """The application store over the freshly migrated database."""
    return ApplicationStore(pool)


async def test_one_open_application_per_person(applications: ApplicationStore) -> None:
    """A second open application for the same person is not stored: the first comes back."""
    first = await applications.submit(pending(1))
    second = await applications.submit(pending(1))
    assert second.id == first.id
    assert (await applications.open_for((1).to_bytes(32, "big"))) == first


async def test_the_database_refuses_a_closed_application_keeping_its_person(
    applications: ApplicationStore, pool: asyncpg.Pool
) -> None:
    """Closed means the sealed person is gone: a row that keeps it is refused by a CHECK,
    whatever a bug in the code tries."""
    record = await applications.submit(pending(2))
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "UPDATE applications SET status = 'expired', closed_at = now(), next_check_at = NULL"
            " WHERE id = $1",
            record.id,
        )


async def test_a_leased_application_is_claimed_by_nobody_else_until_the_lease_ends(
    applications: ApplicationStore,
) -> None:
    """A claim leases; another claim skips it until the lease ends; a settle under a
    foreign lease writes nothing."""
    record = await applications.submit(pending(3))
    mine = lease()
    assert [a.id for a in await applications.claim(due_by=NOW, now=NOW, lease=mine, limit=10)] == [
        record.id
    ]
    assert await applications.claim(due_by=NOW, now=NOW, lease=lease(), limit=10) == []
    checked = replace(record, checks=2, next_check_at=NOW + timedelta(minutes=1))
    assert not await applications.settle(checked, lease())
    later = NOW + timedelta(minutes=3)
    theirs = lease(later + timedelta(minutes=2))
    reclaimed = await applications.claim(due_by=later, now=later, lease=theirs, limit=10)
    assert [a.id for a in reclaimed] == [record.id]
    assert not await applications.settle(checked, mine)  # the lease passed on
    assert await applications.settle(checked, theirs)
    stored = await applications.get(record.id)
    assert stored is not None
    assert stored.checks == 2


async def test_closing_erases_the_sealed_person_in_the_same_statement(
    applications: ApplicationStore,
) -> None:
    """Settling an application closed EXPIRED leaves no sealed person behind."""
    record = await applications.submit(pending(4))
    held = lease()
    await applications.claim(due_by=NOW, now=NOW, lease=held, limit=1)
    expired = replace(
        record,
        status=ApplicationStatus.EXPIRED,
        checks=2,
        closed_at=NOW,
        next_check_at=None,
        sealed_person=None,
    )
    assert await applications.settle(expired, held)
    stored = await applications.get(record.id)
    assert stored is not None
    assert stored.status is ApplicationStatus.EXPIRED
    assert stored.sealed_person is None
    assert stored.denial is DenialReason.NOT_FOUND


async def test_counts_and_list_within_a_window(applications: ApplicationStore) -> None:
    """Counts by category and status over submission times; the list is newest first."""
    vaccination = ApplicationCategory.VACCINATION_NOT_FOUND
    old = await applications.submit(pending(5, at=NOW - timedelta(days=3)))
    await applications.submit(pending(6, category=vaccination))
    await applications.submit(pending(7, category=vaccination))
    assert await applications.application_counts() == {
        (ApplicationCategory.OTHER, ApplicationStatus.PENDING): 1,
        (vaccination, ApplicationStatus.PENDING): 2,
    }
    assert await applications.application_counts(since=NOW - timedelta(days=1)) == {
        (vaccination, ApplicationStatus.PENDING): 2
    }
    assert await applications.median_time_to_code() == (None, 0)
    listed = await applications.list(status=ApplicationStatus.PENDING, limit=2)
    assert len(listed) == 2
    assert old.id not in {a.id for a in listed}
    assert await applications.list(status=ApplicationStatus.ISSUED) == []


async def test_a_failing_database_is_store_unavailable(pool: asyncpg.Pool) -> None:
    """A database error leaves the store as StoreUnavailable, naming no SQL."""
    await pool.execute("DROP TABLE applications")
    with pytest.raises(StoreUnavailable, match="application store: get failed") as caught:
        await ApplicationStore(pool).get(uuid.uuid4())
    assert "SELECT" not in str(caught.value)
