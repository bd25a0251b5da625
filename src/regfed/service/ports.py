"""The ports the use cases depend on, and the records that cross them.

Each port is a small ``typing.Protocol``: ``app.py`` wires the real adapters (PostgreSQL,
the HCERT signer, the trust folder), the unit tests wire fakes. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from regfed.domain.model import CertificateKind, DenialReason, PersonQuery, Registry
from regfed.federation.fanout import FederatedLookup
from regfed.hcert.payload import Hcert
from regfed.hcert.signer import SignedCode
from regfed.hcert.trust import TrustList
from regfed.service.audit import Actor

Clock = Callable[[], datetime]

KEY_BYTES = 32  # a person key and a basis fingerprint are HMAC-SHA256 digests
KID_BYTES = 8  # an HCERT kid: the first 8 bytes of SHA-256 over the certificate


def utc_now() -> datetime:
    """The current instant, aware: the clock the service runs on."""
    return datetime.now(UTC)


def require_aware(name: str, value: datetime | None) -> None:
    """Refuse a naive datetime: every instant regfed keeps is aware."""
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """One issued certificate as stored: no personal data, only keyed hashes."""

    uvci: str
    person_key: bytes
    basis_fingerprint: bytes
    kind: CertificateKind
    valid_from: datetime
    valid_until: datetime
    issued_at: datetime
    kid: bytes  # the signing key's 8-byte kid
    sources: frozenset[Registry]
    degraded: bool
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def __post_init__(self) -> None:
        if len(self.person_key) != KEY_BYTES or len(self.basis_fingerprint) != KEY_BYTES:
            raise ValueError("person_key and basis_fingerprint are 32-byte keyed hashes")
        if len(self.kid) != KID_BYTES:
            raise ValueError("kid is 8 bytes")
        for name in ("valid_from", "valid_until", "issued_at", "revoked_at"):
            require_aware(name, getattr(self, name))
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if not self.sources:
            raise ValueError("a certificate rests on at least one registry")

    @property
    def revoked(self) -> bool:
        """Whether the certificate has been revoked."""
        return self.revoked_at is not None


# Live certificates counted by what they certify and the registries their basis came from.
IssuedCounts = dict[tuple[CertificateKind, frozenset[Registry]], int]


class Lookup(Protocol):
    """The federation: every registry asked at once, their records merged."""

    async def lookup(self, query: PersonQuery, remaining: float | None = None) -> FederatedLookup:
        """What the registries know of ``query``; ``remaining`` is the caller's time left."""
        ...


class CertificateStore(Protocol):
    """Issued certificates and their revocations, and the counts statistics need."""

    async def record(
        self, candidate: CertificateRecord, actor: Actor | None = None, at: datetime | None = None
    ) -> CertificateRecord:
        """``candidate``, or the live certificate already held on the same person and basis;
        with an ``actor``, the answer's audit row is written with it, atomically."""
        ...

    async def revoke(
        self, uvci: str, reason: str, at: datetime, actor: Actor | None = None
    ) -> CertificateRecord | None:
        """Revoke ``uvci`` (the first revocation's time and reason stand); None if unknown.
        With an ``actor``, the audit row is written with it, atomically."""
        ...

    async def revoked_uvci_hashes(self, now: datetime) -> list[bytes]:
        """Truncated SHA-256 hashes of the UVCIs revoked and not expired at ``now``."""
        ...

    async def issued_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> IssuedCounts:
        """Live certificates by kind and sources, issued within ``since``..``until``."""
        ...

    async def denial_counts(
        self, *, since: date | None = None, until: date | None = None
    ) -> dict[DenialReason, int]:
        """Denials by reason over the Moscow days ``since``..``until``."""
        ...


class RevocationList(Protocol):
    """Revocations as this process knows them, without a round trip."""

    def revoked_at(self, uvci: str) -> datetime | None:
        """When ``uvci`` was revoked, or None."""
        ...

    def note(self, uvci: str, revoked_at: datetime) -> None:
        """A revocation this process made, applied at once."""
        ...


class Signer(Protocol):
    """The holder of the signing keys."""

    @property
    def issuer_name(self) -> str:
        """The ``is`` of every certificate entry."""
        ...

    @property
    def issuer_country(self) -> str:
        """The issuer's country: the CWT issuer, every entry's ``co``, the UVCI's country."""
        ...

    @property
    def current_kid(self) -> bytes:
        """The kid of the key that signs new certificates now."""
        ...

    def sign(
        self, hcert: Hcert, issued_at: datetime, expires_at: datetime, kid: bytes | None = None
    ) -> SignedCode:
        """The ``HC1:`` code of ``hcert``, by the key ``kid`` when it is still held."""
        ...


class DenialTally(Protocol):
    """Denials counted for statistics."""

    def add(self, reason: DenialReason, day: date) -> None:
        """Count one denial on a Moscow ``day``."""
        ...


class TrustSource(Protocol):
    """Every key a code may be verified with, ours and the partners'."""

    def current(self) -> TrustList:
        """The trust list as it stands now."""
        ...


# --- applications ------------------------------------------------------------------------


class ApplicationStatus(enum.Enum):
    """Where an application stands: open (PENDING) or closed (ISSUED, EXPIRED)."""

    PENDING = "pending"
    ISSUED = "issued"
    EXPIRED = "expired"


class ApplicationCategory(enum.Enum):
    """What the person could not find."""

    VACCINATION_NOT_FOUND = "vaccination_not_found"
    ILLNESS_NOT_FOUND = "illness_not_found"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    """One application as stored: the person only as a keyed hash and sealed bytes.

    The invariants below are the database's CHECK constraints too: an open application
    has its sealed person and a next check; a closed one has neither; an issued one has
    its certificate (the UVCI and the sealed code); an expired one its last denial.
    """

    id: uuid.UUID
    person_key: bytes
    category: ApplicationCategory
    status: ApplicationStatus
    submitted_at: datetime
    checks: int = 0
    checked_at: datetime | None = None
    next_check_at: datetime | None = None
    denial: DenialReason | None = None
    closed_at: datetime | None = None
    uvci: str | None = None
    # AES-GCM ciphertexts (service/sealing.py), bound to ``id``.
    sealed_person: bytes | None = None
    sealed_certificate: bytes | None = None
    # The certificate row the UVCI names, when read back with it.
    certificate: CertificateRecord | None = None

    def __post_init__(self) -> None:
        if len(self.person_key) != KEY_BYTES:
            raise ValueError("person_key is a 32-byte keyed hash")
        if self.checks < 0:
            raise ValueError("checks cannot be negative")
        for name in ("submitted_at", "checked_at", "next_check_at", "closed_at"):
            require_aware(name, getattr(self, name))
        open_ = self.status is ApplicationStatus.PENDING
        if open_ != (self.closed_at is None):
            raise ValueError("an application has a closing time exactly when it is closed")
        if open_ != (self.sealed_person is not None) or open_ != (self.next_check_at is not None):
            raise ValueError("only an open application keeps its person and a next check")
        issued = self.status is ApplicationStatus.ISSUED
        if issued != (self.uvci is not None and self.sealed_certificate is not None):
            raise ValueError("an issued application, and only one, has its certificate")
        if self.status is ApplicationStatus.EXPIRED and self.denial is None:
            raise ValueError("an expired application keeps its last denial")

    @property
    def is_open(self) -> bool:
        """True while the application is pending."""
        return self.status is ApplicationStatus.PENDING


# Applications counted by category and status.
ApplicationCounts = dict[tuple[ApplicationCategory, ApplicationStatus], int]


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on some applications by one reconciler: ``token`` proves it, until ``until``."""

    token: bytes
    until: datetime


class ApplicationStore(Protocol):
    """Applications: one open per person, claimed by reconcilers under a lease."""

    async def open_for(self, person_key: bytes) -> ApplicationRecord | None:
        """The person's open application, if any."""
        ...

    async def submit(self, application: ApplicationRecord) -> ApplicationRecord:
        """Store ``application``; when it is open and the person already has an open one,
        store nothing and return that one (the database arbitrates, not a read first)."""
        ...

    async def get(self, application_id: uuid.UUID) -> ApplicationRecord | None:
        """The application with its certificate row; None if unknown."""
        ...

    async def next_due(self) -> datetime | None:
        """The earliest next check of any open application; None when none is open."""
        ...

    async def claim(
        self, *, due_by: datetime, now: datetime, lease: Lease, limit: int
    ) -> list[ApplicationRecord]:
        """Lease up to ``limit`` open applications due by ``due_by`` that nobody holds at
        ``now``, oldest next check first; concurrent claimers never get the same one."""
        ...

    async def settle(self, application: ApplicationRecord, lease: Lease) -> bool:
        """Write a check's outcome (one more check; closed: the sealed person erased) and
        end the lease, in one statement; False when the lease was lost to another claim."""
        ...

    async def release(
        self, ids: Sequence[uuid.UUID], lease: Lease, next_check_at: datetime | None = None
    ) -> None:
        """End the lease on ``ids`` without counting a check; ``next_check_at`` postpones."""
        ...

    async def application_counts(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> ApplicationCounts:
        """Applications submitted within ``since``..``until``, by category and status."""
        ...

    async def median_time_to_code(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[timedelta | None, int]:
        """The median time from submission to certificate of the applications submitted
        within ``since``..``until`` that got one, and how many did."""
        ...
