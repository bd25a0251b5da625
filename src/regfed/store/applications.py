"""Applications in the service database: one open per person, leased to reconcilers.

Every statement that changes an application is one statement, so it happens entirely or
not at all: a submission (insert, or find the open one), a claim (lock with ``SKIP
LOCKED`` and lease), a settlement (the check's outcome, the lease ended, the sealed person
erased on closing), a release. Instants come from the caller's clock, not the database's,
so leases and due times mean the same in the service and in its tests.

Every database failure leaves this module as :class:`~regfed.errors.StoreUnavailable`,
naming the operation and the error class only.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import asyncpg

from regfed.domain.model import DenialReason
from regfed.errors import StoreUnavailable
from regfed.postgres.bounded import BoundedPool, bounded
from regfed.service.ports import (
    ApplicationCategory,
    ApplicationCounts,
    ApplicationRecord,
    ApplicationStatus,
    CertificateRecord,
    Lease,
    require_aware,
)
from regfed.store.certificates import certificate_from_row
from regfed.store.translate import translated

# How often submit() retries when its insert lost to a row its snapshot cannot see.
_SUBMIT_ATTEMPTS: Final = 5

_COLUMNS: Final = """
id, person_key, category, status, submitted_at, checks, checked_at, next_check_at, denial,
closed_at, uvci, sealed_person, sealed_certificate
"""

_SUBMIT: Final = f"""
WITH inserted AS (
    INSERT INTO applications
        (id, person_key, category, status, submitted_at, checks, checked_at, next_check_at,
         denial, closed_at, uvci, sealed_person, sealed_certificate)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (person_key) WHERE status = 'pending' DO NOTHING
    RETURNING {_COLUMNS}
)
SELECT {_COLUMNS} FROM inserted
UNION ALL
SELECT {_COLUMNS} FROM applications
 WHERE person_key = $2 AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM inserted)
LIMIT 1
"""  # noqa: S608 - constant column lists, no input

_OPEN_FOR: Final = f"""
SELECT {_COLUMNS} FROM applications WHERE person_key = $1 AND status = 'pending'
"""  # noqa: S608

# The first entry of the due index.
_NEXT_DUE: Final = "SELECT min(next_check_at) FROM applications WHERE status = 'pending'"

_GET: Final = f"""
SELECT {", ".join("a." + c.strip() for c in _COLUMNS.split(","))},
       c.uvci AS c_uvci, c.person_key AS c_person_key, c.basis_fingerprint AS c_basis_fingerprint,
       c.kind AS c_kind, c.valid_from AS c_valid_from, c.valid_until AS c_valid_until,
       c.issued_at AS c_issued_at, c.kid AS c_kid, c.sources AS c_sources,
       c.degraded AS c_degraded, c.revoked_at AS c_revoked_at,
       c.revocation_reason AS c_revocation_reason
  FROM applications a LEFT JOIN certificates c ON c.uvci = a.uvci
 WHERE a.id = $1
"""  # noqa: S608

# The rows are locked by the inner SELECT and skipped by any concurrent claimer; the lease
# written on them then keeps them out of every claim until it ends, after this short
# transaction commits. A row a concurrent claimer leased and committed meanwhile is
# re-checked against the WHERE clause on its newest version (READ COMMITTED), so its
# lease excludes it.
_CLAIM: Final = f"""
WITH due AS (
    SELECT id FROM applications
     WHERE status = 'pending' AND next_check_at <= $1
       AND (lease_until IS NULL OR lease_until <= $2)
     ORDER BY next_check_at, submitted_at
     LIMIT $3
     FOR UPDATE SKIP LOCKED
)
UPDATE applications a
   SET lease_token = $4, lease_until = $5
  FROM due
 WHERE a.id = due.id
RETURNING {", ".join("a." + c.strip() for c in _COLUMNS.split(","))}
"""  # noqa: S608

# Only while the lease is ours and the application open: a reconciler whose lease ran out
# and passed to another writes nothing. Closing erases the sealed person in this same
# statement (and the table's CHECK refuses a closed row that keeps it).
_SETTLE: Final = """
UPDATE applications
   SET status = $3, checks = checks + 1, checked_at = $4, next_check_at = $5, denial = $6,
       closed_at = $7, uvci = $8, sealed_certificate = $9,
       sealed_person = CASE WHEN $3 = 'pending' THEN sealed_person END,
       lease_token = NULL, lease_until = NULL
 WHERE id = $1 AND lease_token = $2 AND status = 'pending'
"""

_RELEASE: Final = """
UPDATE applications
   SET lease_token = NULL, lease_until = NULL,
       next_check_at = COALESCE($3, next_check_at)
 WHERE id = ANY($1::uuid[]) AND lease_token = $2 AND status = 'pending'
"""

_COUNTS: Final = """
SELECT category, status, count(*) AS total FROM applications
 WHERE ($1::timestamptz IS NULL OR submitted_at >= $1)
   AND ($2::timestamptz IS NULL OR submitted_at < $2)
 GROUP BY 1, 2
"""

_MEDIAN: Final = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY closed_at - submitted_at) AS median,
       count(*) AS total
  FROM applications
 WHERE status = 'issued'
   AND ($1::timestamptz IS NULL OR submitted_at >= $1)
   AND ($2::timestamptz IS NULL OR submitted_at < $2)
"""

_LIST: Final = f"""
SELECT {_COLUMNS} FROM applications
 WHERE ($1::text IS NULL OR status = $1)
 ORDER BY submitted_at DESC, id
 LIMIT $2
"""  # noqa: S608


def _optional_bytes(value: object) -> bytes | None:
    return None if value is None else bytes(value)  # type: ignore[call-overload]


def _from_row(row: asyncpg.Record, certificate: CertificateRecord | None = None) -> (
    ApplicationRecord
):  # fmt: skip
    denial = row["denial"]
    return ApplicationRecord(
        id=row["id"],
        person_key=bytes(row["person_key"]),
        category=ApplicationCategory(row["category"]),
        status=ApplicationStatus(row["status"]),
        submitted_at=row["submitted_at"],
        checks=row["checks"],
        checked_at=row["checked_at"],
        next_check_at=row["next_check_at"],
        denial=DenialReason(denial) if denial is not None else None,
        closed_at=row["closed_at"],
        uvci=row["uvci"],
        sealed_person=_optional_bytes(row["sealed_person"]),
        sealed_certificate=_optional_bytes(row["sealed_certificate"]),
        certificate=certificate,
    )


def _certificate_of(row: asyncpg.Record) -> CertificateRecord | None:
    """The joined certificate, when the application has one."""
    return None if row["c_uvci"] is None else certificate_from_row(row, "c_")


def _translated(operation: str) -> contextlib.AbstractContextManager[None]:
    return translated("application store", operation)


class ApplicationStore:
    """Applications in the service's own PostgreSQL."""

    def __init__(self, pool: BoundedPool | asyncpg.Pool) -> None:
        """Every statement bounded (REGFED_STORE_TIMEOUT within the caller's deadline)."""
        self._pool = bounded(pool)

    async def open_for(self, person_key: bytes) -> ApplicationRecord | None:
        """The person's open application, if any."""
        with _translated("open_for"):
            row = await self._pool.fetchrow(_OPEN_FOR, person_key)
        return None if row is None else _from_row(row)

    async def submit(self, application: ApplicationRecord) -> ApplicationRecord:
        """Insert ``application``, or return the person's open one when it is open too.

        The partial unique index on open applications arbitrates concurrent submissions.
        """
        a = application
        with _translated("submit"):
            for _ in range(_SUBMIT_ATTEMPTS):
                row = await self._pool.fetchrow(
                    _SUBMIT,
                    a.id, a.person_key, a.category.value, a.status.value, a.submitted_at,
                    a.checks, a.checked_at, a.next_check_at,
                    a.denial.value if a.denial else None, a.closed_at, a.uvci,
                    a.sealed_person, a.sealed_certificate,
                )  # fmt: skip
                if row is not None:
                    return _from_row(row, a.certificate if row["id"] == a.id else None)
                # The insert waited for a concurrent one that committed after this
                # statement's snapshot, and the fallback SELECT cannot see it (the same
                # case as CertificateStore.record): a new statement can.
                row = await self._pool.fetchrow(_OPEN_FOR, a.person_key)
                if row is not None:
                    return _from_row(row)
                # That one closed in between: try again.
        raise StoreUnavailable("application store: submit did not settle under concurrent closes")

    async def get(self, application_id: uuid.UUID) -> ApplicationRecord | None:
        """The application with its certificate row; None if unknown."""
        with _translated("get"):
            row = await self._pool.fetchrow(_GET, application_id)
        return None if row is None else _from_row(row, _certificate_of(row))

    async def next_due(self) -> datetime | None:
        """The earliest next check of any open application; None when none is open."""
        with _translated("next_due"):
            due: datetime | None = await self._pool.fetchval(_NEXT_DUE)
        return due

    async def claim(
        self, *, due_by: datetime, now: datetime, lease: Lease, limit: int
    ) -> list[ApplicationRecord]:
        """Lease up to ``limit`` open applications due by ``due_by`` and free at ``now``."""
        require_aware("due_by", due_by)
        require_aware("now", now)
        with _translated("claim"):
            rows = await self._pool.fetch(_CLAIM, due_by, now, limit, lease.token, lease.until)
        return [_from_row(row) for row in rows]

    async def settle(self, application: ApplicationRecord, lease: Lease) -> bool:
        """Write a check's outcome and end the lease; False if the lease is no longer ours."""
        a = application
        with _translated("settle"):
            result = await self._pool.execute(
                _SETTLE,
                a.id, lease.token, a.status.value, a.checked_at, a.next_check_at,
                a.denial.value if a.denial else None, a.closed_at, a.uvci,
                a.sealed_certificate,
            )  # fmt: skip
        return result == "UPDATE 1"

    async def release(
        self, ids: Sequence[uuid.UUID], lease: Lease, next_check_at: datetime | None = None
    ) -> None:
        """End the lease on ``ids`` without counting a check; ``next_check_at`` postpones."""
        with _translated("release"):
            await self._pool.execute(_RELEASE, list(ids), lease.token, next_check_at)

    async def application_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> ApplicationCounts:
        """Applications submitted within ``since``..``until``, by category and status."""
        with _translated("application_counts"):
            rows = await self._pool.fetch(_COUNTS, since, until)
        return {
            (ApplicationCategory(row["category"]), ApplicationStatus(row["status"])): int(
                row["total"]
            )
            for row in rows
        }

    async def median_time_to_code(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[timedelta | None, int]:
        """The median submission-to-certificate time of the issued applications submitted
        within ``since``..``until``, and how many there are."""
        with _translated("median_time_to_code"):
            row = await self._pool.fetchrow(_MEDIAN, since, until)
        assert row is not None  # an aggregate always returns its row
        return row["median"], int(row["total"])

    async def list(
        self, *, status: ApplicationStatus | None = None, limit: int = 100
    ) -> list[ApplicationRecord]:
        """The newest applications (with ``status``), for operators: no personal data is
        opened, so this needs no application key."""
        with _translated("list"):
            rows = await self._pool.fetch(_LIST, status.value if status else None, limit)
        return [_from_row(row) for row in rows]
