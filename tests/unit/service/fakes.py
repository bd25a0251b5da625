"""Fakes of the use cases' ports: small in-memory implementations, not mocks.

Each keeps the one property of the real adapter the use cases rely on — the store's
"one live certificate per person and basis" above all — and nothing else.
"""

from __future__ import annotations

import hashlib
from collections import Counter
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
from regfed.service.ports import CertificateRecord, IssuedCounts
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

    async def issued_counts(self) -> IssuedCounts:
        counts: Counter[tuple[object, frozenset[Registry]]] = Counter(
            (row.kind, row.sources) for row in self.rows if row.revoked_at is None
        )
        return dict(counts)  # type: ignore[arg-type]

    async def denial_counts(
        self, *, since: date | None = None, until: date | None = None
    ) -> dict[DenialReason, int]:
        return dict(self.denials)


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
