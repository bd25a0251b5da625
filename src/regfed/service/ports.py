"""The ports the use cases depend on, and the records that cross them.

Each port is a small ``typing.Protocol``: ``app.py`` wires the real adapters (PostgreSQL,
the HCERT signer, the trust folder), the unit tests wire fakes. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
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

    async def issued_counts(self) -> IssuedCounts:
        """Live certificates by kind and sources."""
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
