"""Fakes of the use cases' ports: small in-memory implementations, not mocks.

Each keeps the one property of the real adapter the use cases rely on — the store's
"one live certificate per person and basis" above all — and nothing else.
"""

from __future__ import annotations

import hashlib
import statistics
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from regfed.domain.model import DenialReason, PersonQuery, PersonRecord, Registry
from regfed.federation.fanout import FederatedLookup, SourceOutcome, SourceStatus
from regfed.federation.merge import merge
from regfed.hcert.keys import SigningKey, kid_of
from regfed.hcert.signer import HcertSigner
from regfed.hcert.trust import TrustList, trusted_key_from_certificate
from regfed.service.audit import Actor
from regfed.service.ports import (
    ApplicationCounts,
    ApplicationRecord,
    ApplicationStatus,
    CertificateRecord,
    IssuedCounts,
    Lease,
)
from tests.hc1_reference import self_signed_certificate

NOW = datetime.fromisoformat("2026-12-02T09:30:00+03:00")


class FixedClock:
    """A clock that stands still until moved."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock on."""
        self.now += delta


@dataclass
class FakeFederation:
    """Registries that answer what they are told: a record, None, or a failure status."""

    answers: dict[Registry, PersonRecord | SourceStatus] = field(default_factory=dict)
    asked: int = 0

    async def lookup(self, query: PersonQuery, remaining: float | None = None) -> FederatedLookup:
        self.asked += 1
        outcomes = []
        for registry in (Registry.CITY, Registry.FEDERAL):
            answer = self.answers.get(registry)
            if isinstance(answer, SourceStatus):
                outcomes.append(SourceOutcome(registry, answer, 0.001))
            elif answer is None:
                outcomes.append(SourceOutcome(registry, SourceStatus.NOT_FOUND, 0.001))
            else:
                outcomes.append(SourceOutcome(registry, SourceStatus.MATCHED, 0.001, answer))
        records = [o.record for o in outcomes if o.record is not None]
        return FederatedLookup(tuple(outcomes), merge(records))


class FakeStore:
    """Certificates in a list; at most one live certificate per person and basis."""

    def __init__(self) -> None:
        self.rows: list[CertificateRecord] = []
        self.denials: Counter[DenialReason] = Counter()
        self.audit: list[tuple[str, str, Actor]] = []  # (action, uvci, actor)

    async def record(
        self, candidate: CertificateRecord, actor: Actor | None = None, at: datetime | None = None
    ) -> CertificateRecord:
        found = self._current(candidate)
        if actor is not None:
            self.audit.append(("issue", found.uvci, actor))
        return found

    def _current(self, candidate: CertificateRecord) -> CertificateRecord:
        for row in self.rows:
            if (row.person_key, row.basis_fingerprint, row.revoked_at) == (
                candidate.person_key,
                candidate.basis_fingerprint,
                None,
            ):
                return row
        self.rows.append(candidate)
        return candidate

    async def revoke(
        self, uvci: str, reason: str, at: datetime, actor: Actor | None = None
    ) -> CertificateRecord | None:
        for index, row in enumerate(self.rows):
            if row.uvci == uvci:
                if row.revoked_at is None:
                    self.rows[index] = row = replace(row, revoked_at=at, revocation_reason=reason)
                if actor is not None:
                    self.audit.append(("revoke", uvci, actor))
                return row
        return None

    async def revoked_uvci_hashes(self, now: datetime) -> list[bytes]:
        return sorted(
            hashlib.sha256(row.uvci.encode()).digest()[:16]
            for row in self.rows
            if row.revoked_at is not None and row.valid_until > now
        )

    async def issued_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> IssuedCounts:
        counts: Counter[tuple[object, frozenset[Registry]]] = Counter(
            (row.kind, row.sources)
            for row in self.rows
            if row.revoked_at is None and _within(row.issued_at, since, until)
        )
        return dict(counts)  # type: ignore[arg-type]

    async def denial_counts(
        self, *, since: date | None = None, until: date | None = None
    ) -> dict[DenialReason, int]:
        return dict(self.denials)


def _within(instant: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or instant >= since) and (until is None or instant < until)


@dataclass
class _Held:
    """An application row and the lease on it, as the fake keeps them."""

    record: ApplicationRecord
    lease: Lease | None = None


class FakeApplicationStore:
    """Applications in a dict, with the real store's guarantees the use cases rely on: one
    open application per person, a leased row never claimed twice, a settlement only under
    its own lease, the sealed person gone once closed."""

    def __init__(self, certificates: FakeStore | None = None) -> None:
        self.held: dict[uuid.UUID, _Held] = {}
        self._certificates = certificates
        self.settled = 0

    def __getitem__(self, application_id: uuid.UUID) -> ApplicationRecord:
        return self.held[application_id].record

    def _with_certificate(self, record: ApplicationRecord) -> ApplicationRecord:
        if record.uvci is None or self._certificates is None:
            return record
        rows = [row for row in self._certificates.rows if row.uvci == record.uvci]
        return replace(record, certificate=rows[0] if rows else None)

    async def open_for(self, person_key: bytes) -> ApplicationRecord | None:
        for held in self.held.values():
            if held.record.person_key == person_key and held.record.is_open:
                return held.record
        return None

    async def submit(self, application: ApplicationRecord) -> ApplicationRecord:
        if application.is_open:
            existing = await self.open_for(application.person_key)
            if existing is not None:
                return existing
        self.held[application.id] = _Held(replace(application, certificate=None))
        return application

    async def get(self, application_id: uuid.UUID) -> ApplicationRecord | None:
        held = self.held.get(application_id)
        return None if held is None else self._with_certificate(held.record)

    async def next_due(self) -> datetime | None:
        due = [h.record.next_check_at for h in self.held.values() if h.record.is_open]
        return min((d for d in due if d is not None), default=None)

    async def claim(
        self, *, due_by: datetime, now: datetime, lease: Lease, limit: int
    ) -> list[ApplicationRecord]:
        due = [
            held
            for held in self.held.values()
            if held.record.is_open
            and held.record.next_check_at is not None
            and held.record.next_check_at <= due_by
            and (held.lease is None or held.lease.until <= now)
        ]
        due.sort(key=lambda h: (h.record.next_check_at, h.record.submitted_at))
        for held in due[:limit]:
            held.lease = lease
        return [held.record for held in due[:limit]]

    async def settle(self, application: ApplicationRecord, lease: Lease) -> bool:
        held = self.held.get(application.id)
        if held is None or held.lease is None or held.lease.token != lease.token:
            return False
        if not held.record.is_open:
            return False
        sealed_person = held.record.sealed_person if application.is_open else None
        held.record = replace(
            application,
            checks=held.record.checks + 1,
            sealed_person=sealed_person,
            certificate=None,
        )
        held.lease = None
        self.settled += 1
        return True

    async def release(
        self, ids: Sequence[uuid.UUID], lease: Lease, next_check_at: datetime | None = None
    ) -> None:
        for application_id in ids:
            held = self.held[application_id]
            if held.lease is not None and held.lease.token == lease.token:
                held.lease = None
                if next_check_at is not None and held.record.is_open:
                    held.record = replace(held.record, next_check_at=next_check_at)

    async def application_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> ApplicationCounts:
        return dict(
            Counter(
                (h.record.category, h.record.status)
                for h in self.held.values()
                if _within(h.record.submitted_at, since, until)
            )
        )

    async def median_time_to_code(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[timedelta | None, int]:
        waits = [
            h.record.closed_at - h.record.submitted_at
            for h in self.held.values()
            if h.record.status is ApplicationStatus.ISSUED
            and h.record.closed_at is not None
            and _within(h.record.submitted_at, since, until)
        ]
        if not waits:
            return None, 0
        seconds = statistics.median(w.total_seconds() for w in waits)
        return timedelta(seconds=seconds), len(waits)


class FakeRevocations:
    """The revocations this process knows."""

    def __init__(self) -> None:
        self.revoked: dict[str, datetime] = {}

    def revoked_at(self, uvci: str) -> datetime | None:
        return self.revoked.get(uvci)

    def note(self, uvci: str, revoked_at: datetime) -> None:
        self.revoked.setdefault(uvci, revoked_at)


class FakeTally:
    """Denials counted by reason."""

    def __init__(self) -> None:
        self.counted: Counter[DenialReason] = Counter()

    def add(self, reason: DenialReason, day: date) -> None:
        self.counted[reason] += 1


def signing_key(now: datetime = NOW) -> SigningKey:
    """A signing key held in memory, valid around ``now``."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_certificate(
        private_key, name="regfed unit signer", not_before=now - timedelta(days=1)
    )
    return SigningKey("unit", private_key, certificate, kid_of(certificate))


def signer(key: SigningKey, clock: FixedClock) -> HcertSigner:
    """The real signer: pure CPU, so no fake is needed."""
    return HcertSigner([key], "Moscow Department of Health", clock=clock)


class StaticTrust:
    """A trust list that never changes."""

    def __init__(self, *keys: SigningKey) -> None:
        self._list = TrustList(
            trusted_key_from_certificate(k.certificate, own=True, source="keys") for k in keys
        )

    def current(self) -> TrustList:
        return self._list
