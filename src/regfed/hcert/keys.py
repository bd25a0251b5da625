"""The service's signing keys in memory: a private key, its certificate and its kid.

Private key material never leaves these objects: no repr, log line or exception message
shows it. Reading and writing key files is ``regfed.keystore.signing``'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from regfed.errors import KeyFileError


def kid_of_der(der: bytes) -> bytes:
    """The HCERT key identifier: the first 8 bytes of SHA-256 over the certificate DER."""
    return hashlib.sha256(der).digest()[:8]


def kid_of(certificate: x509.Certificate) -> bytes:
    """The HCERT key identifier of a parsed certificate."""
    return kid_of_der(certificate.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key the service signs with, its certificate and its kid."""

    name: str
    # Excluded from repr and comparison: a key must not end up in a log line by way of a
    # debug print of its holder, and the kid already identifies it.
    private_key: ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    certificate: x509.Certificate = field(compare=False)
    kid: bytes

    def __repr__(self) -> str:
        return (
            f"SigningKey(name={self.name!r}, kid={self.kid.hex()}, "
            f"not_before={self.not_before.isoformat()}, "
            f"not_after={self.not_after.isoformat()})"
        )

    @property
    def not_before(self) -> datetime:
        """The first instant the certificate is valid (aware, UTC)."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        """The instant the certificate stops being valid (aware, UTC)."""
        return self.certificate.not_valid_after_utc

    def valid_at(self, now: datetime) -> bool:
        """Whether the certificate is valid at ``now`` (not_before <= now < not_after)."""
        return self.not_before <= now < self.not_after


def select_signer(keys: Iterable[SigningKey], now: datetime) -> SigningKey:
    """The key to sign with at ``now``: valid then, and the latest ``not_before``.

    Ties go to the greater name, so every process of a deployment picks the same key.
    """
    valid = [key for key in keys if key.valid_at(now)]
    if not valid:
        raise KeyFileError(f"no signing key is valid at {now.isoformat()}")
    return max(valid, key=lambda key: (key.not_before, key.name))
