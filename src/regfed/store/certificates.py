"""Issued certificates in the service database: idempotent issuance, lookup, revocation.

Every database failure leaves this module as :class:`~regfed.errors.StoreUnavailable`,
whose message names the operation and the error class only: no SQL, no parameters, no
personal data. The original exception stays chained (``__cause__``) for logs.

Every statement is bounded in time (``postgres/bounded.py``: the store's timeout within
the caller's deadline), and the store's circuit breaker, when given, fails calls at once
while the database is taken as down (``regfed.breaker``; the store monitor probes it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Final

import asyncpg

from regfed import deadlines
from regfed.breaker import UNGUARDED, CircuitBreaker
from regfed.domain.model import CertificateKind, DenialReason, Registry
from regfed.errors import StoreUnavailable
from regfed.postgres.bounded import BoundedPool, bounded, link_failure
from regfed.service.audit import Actor
from regfed.service.ports import CertificateRecord, IssuedCounts, require_aware
from regfed.store.translate import translated

# The NOTIFY channel revocations are announced on.
REVOCATIONS_CHANNEL: Final = "regfed_revocations"

# How often record() retries when its insert lost to a row it cannot see (see record()).
_RECORD_ATTEMPTS: Final = 5

# The queries spell out their column lists (no string building, so no injection surface);
# each returns the columns certificate_from_row reads.
_RECORD: Final = """
WITH inserted AS (
    INSERT INTO certificates
        (uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
         kid, sources, degraded)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (person_key, basis_fingerprint) WHERE revoked_at IS NULL DO NOTHING
    RETURNING uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
              kid, sources, degraded, revoked_at, revocation_reason
), current AS (
    SELECT uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
           kid, sources, degraded, revoked_at, revocation_reason, true AS created
      FROM inserted
    UNION ALL
    SELECT uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
           kid, sources, degraded, revoked_at, revocation_reason, false AS created
      FROM certificates
     WHERE person_key = $2 AND basis_fingerprint = $3 AND revoked_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM inserted)
    LIMIT 1
), audited AS (
    -- The audit row goes with the answer, in the same statement: a certificate is never
    -- handed out without it. No caller ($12 NULL): no row (the store's own tests).
    INSERT INTO audit_log (at, action, caller, role, request_id, method, uvci)
    SELECT $11, 'issue', $12, $13, $14, 'Issue', uvci FROM current WHERE $12::text IS NOT NULL
)
SELECT * FROM current
"""

_FIND_CURRENT: Final = """
SELECT uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
       kid, sources, degraded, revoked_at, revocation_reason
  FROM certificates
 WHERE person_key = $1 AND basis_fingerprint = $2 AND revoked_at IS NULL
"""

# record()'s second chance (see there), audited like the first.
_FIND_CURRENT_AUDITED: Final = """
WITH current AS (
    SELECT uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
           kid, sources, degraded, revoked_at, revocation_reason
      FROM certificates
     WHERE person_key = $1 AND basis_fingerprint = $2 AND revoked_at IS NULL
), audited AS (
    INSERT INTO audit_log (at, action, caller, role, request_id, method, uvci)
    SELECT $3, 'issue', $4, $5, $6, 'Issue', uvci FROM current WHERE $4::text IS NOT NULL
)
SELECT * FROM current
"""

_GET: Final = """
SELECT uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
       kid, sources, degraded, revoked_at, revocation_reason
  FROM certificates
 WHERE uvci = $1
"""

# One statement, always touching the row: under concurrent revocations the UPDATE waits
# for the other one and re-evaluates on the newest row version, so the first revocation's
# time and reason are kept and RETURNING shows them. The NOTIFY (sent at commit) tells
# every server process's revocation cache to reload.
_REVOKE: Final = """
WITH revoked AS (
    UPDATE certificates
       SET revoked_at = COALESCE(revoked_at, $2),
           revocation_reason = CASE WHEN revoked_at IS NULL THEN $3 ELSE revocation_reason END
     WHERE uvci = $1
    RETURNING uvci, person_key, basis_fingerprint, kind, valid_from, valid_until, issued_at,
              kid, sources, degraded, revoked_at, revocation_reason
), audited AS (
    -- Every revocation asked for, the first and any repeat, with who asked.
    INSERT INTO audit_log (at, action, caller, role, request_id, method, uvci)
    SELECT $2, 'revoke', $5, $6, $7, 'Revoke', uvci FROM revoked WHERE $5::text IS NOT NULL
)
SELECT revoked.*, pg_notify($4, '') FROM revoked
"""

_REVOKED: Final = """
SELECT uvci, revoked_at FROM certificates WHERE revoked_at IS NOT NULL
"""

# The first 16 bytes of SHA-256 over the UVCI's UTF-8 text: what offline verifiers look up.
_REVOKED_HASHES: Final = """
SELECT substring(sha256(convert_to(uvci, 'UTF8')) FROM 1 FOR 16) AS hash
  FROM certificates
 WHERE revoked_at IS NOT NULL AND valid_until > $1
 ORDER BY 1
"""

# Live (unrevoked) certificates by kind and the registries their basis came from (stored
# sorted, so one set of registries is one group), issued within an optional window.
_ISSUED_COUNTS: Final = """
SELECT kind, sources, count(*) AS total
  FROM certificates
 WHERE revoked_at IS NULL
   AND ($1::timestamptz IS NULL OR issued_at >= $1)
   AND ($2::timestamptz IS NULL OR issued_at < $2)
 GROUP BY 1, 2
"""

_COUNT_DENIAL: Final = """
INSERT INTO denials (reason, day, count) VALUES ($1, $2, $3)
ON CONFLICT (reason, day) DO UPDATE SET count = denials.count + EXCLUDED.count
"""

_DENIAL_COUNTS: Final = """
SELECT reason, sum(count)::bigint AS total FROM denials
 WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day <= $2)
 GROUP BY reason
"""


class DuplicateUvciError(StoreUnavailable):
    """A candidate's UVCI is already taken by another certificate (a fresh UVCI would do)."""


def certificate_from_row(row: asyncpg.Record, prefix: str = "") -> CertificateRecord:
    """A certificate from a row of ``certificates``' columns, each named ``prefix`` + its
    column name (a join aliases them)."""
    return CertificateRecord(
        uvci=row[prefix + "uvci"],
        person_key=bytes(row[prefix + "person_key"]),
        basis_fingerprint=bytes(row[prefix + "basis_fingerprint"]),
        kind=CertificateKind(row[prefix + "kind"]),
        valid_from=row[prefix + "valid_from"],
        valid_until=row[prefix + "valid_until"],
        issued_at=row[prefix + "issued_at"],
        kid=bytes(row[prefix + "kid"]),
        sources=frozenset(Registry(source) for source in row[prefix + "sources"]),
        degraded=row[prefix + "degraded"],
        revoked_at=row[prefix + "revoked_at"],
        revocation_reason=row[prefix + "revocation_reason"],
    )


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    """The store's translation, and a taken UVCI told apart (a fresh UVCI would do)."""
    with translated("certificate store", operation):
        try:
            yield
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "certificates_pkey":
                raise
            raise DuplicateUvciError(f"certificate store: {operation}: UVCI already taken") from exc


def _outage(exc: StoreUnavailable) -> bool:
    """Whether a failure says the database is unreachable or too slow (what the breaker
    counts), rather than that it refused one statement (a constraint, a missing table)."""
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return not deadlines.expired()  # our own bound ran out, not the caller's time
    return cause is None or link_failure(cause)


class CertificateStore:
    """Certificates and denial counters in the service's own PostgreSQL."""

    def __init__(
        self,
        pool: BoundedPool | asyncpg.Pool,
        *,
        breaker: CircuitBreaker | None = None,
        on_recorded: Callable[[CertificateRecord], None] | None = None,
    ) -> None:
        """``on_recorded`` hears each new certificate (the metrics)."""
        self._pool = bounded(pool)
        self._breaker = breaker
        self._on_recorded = on_recorded

    @contextlib.contextmanager
    def _guarded(self, operation: str) -> Iterator[None]:
        """The breaker's leave for one operation, its outcome reported, its failures
        translated."""
        permit = self._breaker.permit() if self._breaker is not None else UNGUARDED
        if permit is None:
            raise StoreUnavailable(f"certificate store: {operation}: unavailable (circuit open)")
        try:
            with _translated(operation):
                yield
        except StoreUnavailable as exc:
            if _outage(exc):
                permit.failed()
            elif isinstance(exc.__cause__, TimeoutError):
                permit.abandoned()
            else:
                permit.succeeded()  # the database answered, if not as hoped
            raise
        except BaseException:
            permit.abandoned()
            raise
        else:
            permit.succeeded()

    async def record(
        self, candidate: CertificateRecord, actor: Actor | None = None, at: datetime | None = None
    ) -> CertificateRecord:
        """Record ``candidate`` unless the person already holds a live certificate on the same
        basis; return whichever is current (the existing one keeps its UVCI, issued-at, key id).

        Concurrent identical calls create one row: the partial unique index on
        ``(person_key, basis_fingerprint) WHERE revoked_at IS NULL`` arbitrates. With an
        ``actor``, the audit row of this answer is written in the same statement (``at``
        defaults to the candidate's issued-at).
        """
        if candidate.revoked_at is not None or candidate.revocation_reason is not None:
            raise ValueError("a certificate is recorded unrevoked")
        stamp = (
            at or candidate.issued_at,
            actor.caller if actor else None,
            actor.role if actor else None,
            actor.request_id if actor else None,
        )
        with self._guarded("record"):
            for _ in range(_RECORD_ATTEMPTS):
                row = await self._pool.fetchrow(
                    _RECORD,
                    candidate.uvci,
                    candidate.person_key,
                    candidate.basis_fingerprint,
                    candidate.kind.value,
                    candidate.valid_from,
                    candidate.valid_until,
                    candidate.issued_at,
                    candidate.kid,
                    sorted(source.value for source in candidate.sources),
                    candidate.degraded,
                    *stamp,
                )
                if row is not None:
                    record = certificate_from_row(row)
                    if row["created"] and self._on_recorded is not None:
                        self._on_recorded(record)
                    return record
                # Nothing returned: our INSERT hit the unique index on a row a concurrent
                # transaction committed after this statement's snapshot was taken (the INSERT
                # waited for it, then did nothing), and the fallback SELECT of the same
                # statement still reads that older snapshot, so it cannot see the row. A new
                # statement takes a new snapshot (READ COMMITTED, autocommit) and sees it.
                row = await self._pool.fetchrow(
                    _FIND_CURRENT_AUDITED,
                    candidate.person_key,
                    candidate.basis_fingerprint,
                    *stamp,
                )
                if row is not None:
                    return certificate_from_row(row)
                # That row was revoked in between: try inserting again. Each round needs a
                # fresh concurrent issue-and-revoke to fail, so a few rounds always suffice.
        raise StoreUnavailable(
            "certificate store: record did not settle under concurrent revocations"
        )

    async def find_current(
        self, person_key: bytes, basis_fingerprint: bytes
    ) -> CertificateRecord | None:
        """The live (unrevoked) certificate of this person on this basis, if any."""
        with self._guarded("find_current"):
            row = await self._pool.fetchrow(_FIND_CURRENT, person_key, basis_fingerprint)
        return None if row is None else certificate_from_row(row)

    async def get(self, uvci: str) -> CertificateRecord | None:
        """The certificate with this UVCI, revoked or not; None if unknown."""
        with self._guarded("get"):
            row = await self._pool.fetchrow(_GET, uvci)
        return None if row is None else certificate_from_row(row)

    async def revoke(
        self, uvci: str, reason: str, at: datetime, actor: Actor | None = None
    ) -> CertificateRecord | None:
        """Revoke the certificate at ``at`` for ``reason``; a second revocation keeps the
        first one's time and reason. Returns the certificate, None if the UVCI is unknown.
        With an ``actor``, the audit row is written in the same statement."""
        require_aware("at", at)
        with self._guarded("revoke"):
            row = await self._pool.fetchrow(
                _REVOKE,
                uvci,
                at,
                reason,
                REVOCATIONS_CHANNEL,
                actor.caller if actor else None,
                actor.role if actor else None,
                actor.request_id if actor else None,
            )
        return None if row is None else certificate_from_row(row)

    async def revoked(self) -> dict[str, datetime]:
        """Every revoked certificate's UVCI and revocation time (revocations are rare)."""
        with self._guarded("revoked"):
            rows = await self._pool.fetch(_REVOKED)
        return {row["uvci"]: row["revoked_at"] for row in rows}

    async def revoked_uvci_hashes(self, now: datetime) -> list[bytes]:
        """Truncated SHA-256 hashes of the UVCIs revoked and not yet expired at ``now``."""
        require_aware("now", now)
        with self._guarded("revoked_uvci_hashes"):
            rows = await self._pool.fetch(_REVOKED_HASHES, now)
        return [bytes(row["hash"]) for row in rows]

    async def issued_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> IssuedCounts:
        """Live certificates by kind and the registries their basis came from, issued
        within ``since`` (inclusive) .. ``until`` (exclusive), each open if None."""
        with self._guarded("issued_counts"):
            rows = await self._pool.fetch(_ISSUED_COUNTS, since, until)
        return {
            (
                CertificateKind(row["kind"]),
                frozenset(Registry(source) for source in row["sources"]),
            ): int(row["total"])
            for row in rows
        }

    async def count_denial(self, reason: DenialReason, day: date, count: int = 1) -> None:
        """Add ``count`` denials for ``reason`` on ``day`` (a Moscow date)."""
        with self._guarded("count_denial"):
            # Not retried on a lost connection: the first attempt may have committed.
            await self._pool.execute(_COUNT_DENIAL, reason.value, day, count, retry=False)

    async def denial_counts(
        self, *, since: date | None = None, until: date | None = None
    ) -> dict[DenialReason, int]:
        """Denials by reason over the days ``since``..``until`` (inclusive; open if None).
        Reasons this version does not know (written by a newer one) are left out."""
        with self._guarded("denial_counts"):
            rows = await self._pool.fetch(_DENIAL_COUNTS, since, until)
        known = {reason.value: reason for reason in DenialReason}
        return {known[row["reason"]]: int(row["total"]) for row in rows if row["reason"] in known}
