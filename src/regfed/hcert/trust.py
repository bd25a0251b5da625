"""The trust list: every public key a code may be verified with, ours and partners'.

A trusted key is an X.509 certificate (a Document Signer Certificate in HCERT terms) as
the operator provisioned it: our own signing certificates, and partner issuers'
certificates imported as PEM files into ``REGFED_TRUST_DIR``. Its kid is the first 8
bytes of SHA-256 over the certificate's DER, exactly as the signer computes it.

Two lessons of the deployed systems shape this module:

- Kids are 8 bytes, so they collide across issuers (by accident, or by a forger who
  grinds certificates until one does): a kid names a *set* of keys, and every key in it
  is tried. Nothing is keyed by kid alone.
- Partner certificates are not always well-formed X.509: deployed issuers published
  certificates whose extensions strict parsers refuse. A verifier that drops those keys
  rejects valid codes of a whole country, so an unreadable extension makes the key
  unrestricted, and an unparsable certificate is read for its public key alone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from regfed.domain.model import CertificateKind
from regfed.hcert.keys import kid_of_der
from regfed.hcert.labels import ES256, ES384, ES512, PS256

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# RFC 9053, section 2.1: each ECDSA algorithm belongs to one curve. HCERT signers use
# P-256; some partner issuers' certificates hold P-384 or P-521 keys (DESIGN.md).
EC_ALGORITHMS: dict[type[ec.EllipticCurve], str] = {
    ec.SECP256R1: ES256,
    ec.SECP384R1: ES384,
    ec.SECP521R1: ES512,
}
MIN_RSA_BITS = 2048  # SOG-IS / the HCERT spec: RSA below 2048 bits is not acceptable

# HCERT spec, section 5.1.1 ("Extended key usage"): a Document Signer Certificate
# carrying any of these may sign only the kinds they name; one carrying none of them
# may sign every kind. The spec names two families with the same meaning, and issuers
# used both: honouring one only would let a certificate restricted with the other
# vouch for every kind.
EKU_TEST = x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.1")
EKU_VACCINATION = x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.2")
EKU_RECOVERY = x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.3")
EKU_TEST_ALTERNATE = x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.1")
EKU_VACCINATION_ALTERNATE = x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.2")
EKU_RECOVERY_ALTERNATE = x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.3")
_EKU_KINDS = {
    EKU_TEST: CertificateKind.TEST,
    EKU_VACCINATION: CertificateKind.VACCINATION,
    EKU_RECOVERY: CertificateKind.RECOVERY,
    EKU_TEST_ALTERNATE: CertificateKind.TEST,
    EKU_VACCINATION_ALTERNATE: CertificateKind.VACCINATION,
    EKU_RECOVERY_ALTERNATE: CertificateKind.RECOVERY,
}

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL
)


class TrustError(ValueError):
    """A certificate cannot serve as a trusted key. Messages never quote file content."""


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One trusted signing certificate, reduced to what a verifier needs."""

    kid: bytes
    # Key objects are not meant to be compared; the DER identifies the key exactly.
    public_key: PublicKey = field(compare=False)
    algorithm: str
    der: bytes
    not_before: datetime | None
    not_after: datetime | None
    subject: str
    own: bool
    allowed_kinds: frozenset[CertificateKind] | None  # None: may sign every kind
    source: str = ""

    def __repr__(self) -> str:
        # Short on purpose: trust lists end up in logs, and a DER dump helps nobody there.
        kinds = "any" if self.allowed_kinds is None else sorted(k.value for k in self.allowed_kinds)
        return (
            f"TrustedKey(kid={self.kid.hex()}, {self.algorithm}, subject={self.subject!r}, "
            f"own={self.own}, kinds={kinds}, source={self.source!r})"
        )

    def may_sign(self, kind: CertificateKind) -> bool:
        """Whether this key's extended key usage allows it to sign ``kind``."""
        return self.allowed_kinds is None or kind in self.allowed_kinds


# --- a minimal DER walker, for certificates the X.509 parser refuses ---------------------


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise TrustError("certificate DER is truncated")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise TrustError("certificate DER uses a multi-byte tag")  # never in X.509 paths
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise TrustError("certificate DER has an invalid length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise TrustError("certificate DER is truncated")
    return tag, start, end


def _spki_of(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of a certificate, read without an X.509 parser.

    RFC 5280, section 4.1: Certificate = SEQUENCE { tbsCertificate, ... }, and
    tbsCertificate = SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
    validity, subject, subjectPublicKeyInfo, ... }.
    """
    sequence = 0x30
    tag, cert_start, _ = _tlv(der, 0)
    if tag != sequence:
        raise TrustError("not a DER certificate")
    tag, offset, tbs_end = _tlv(der, cert_start)
    if tag != sequence:
        raise TrustError("certificate has no tbsCertificate")
    tag, _, end = _tlv(der, offset)
    if tag == 0xA0:  # explicit [0] version
        offset = end
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, offset = _tlv(der, offset)
    tag, _, end = _tlv(der, offset)
    if tag != sequence or end > tbs_end:
        raise TrustError("certificate has no subjectPublicKeyInfo where RFC 5280 puts it")
    return der[offset:end]


# --- building trusted keys -----------------------------------------------------------------


def _checked_key(key: object) -> tuple[PublicKey, str]:
    """The key and its COSE algorithm, or ``TrustError`` for a key HCERT does not allow."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = EC_ALGORITHMS.get(type(key.curve))
        if algorithm is None:
            raise TrustError(
                f"EC key on curve {key.curve.name}: only P-256 (ES256), P-384 (ES384) and "
                "P-521 (ES512) keys are accepted"
            )
        return key, algorithm
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise TrustError(
                f"RSA key of {key.key_size} bits: at least {MIN_RSA_BITS} bits are required"
            )
        return key, PS256
    raise TrustError(
        f"{type(key).__name__}: only EC (P-256, P-384, P-521) and RSA keys are accepted"
    )


def _allowed_kinds(certificate: x509.Certificate) -> frozenset[CertificateKind] | None:
    """The kinds the certificate's EKU allows, or None when it may sign every kind."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        # A strict parser refused some extension: deployed partner certificates do this,
        # and their codes must still verify. Unrestricted is the HCERT reading of "no EKU".
        return None
    kinds = frozenset(_EKU_KINDS[oid] for oid in usage if oid in _EKU_KINDS)
    return kinds or None


def trusted_key_from_der(der: bytes, *, own: bool, source: str = "") -> TrustedKey:
    """A trusted key from a certificate's DER; ``TrustError`` when it cannot be one.

    Falls back to reading only the public key when the X.509 parser refuses the
    certificate: validity is then None, the subject "", and the key unrestricted.
    """
    der = bytes(der)
    certificate: x509.Certificate | None
    try:
        certificate = x509.load_der_x509_certificate(der)
        raw_key: object = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        certificate = None
        try:
            raw_key = serialization.load_der_public_key(_spki_of(der))
        except (ValueError, UnsupportedAlgorithm) as error:
            if isinstance(error, TrustError):
                raise
            raise TrustError("certificate holds no readable public key") from None
    public_key, algorithm = _checked_key(raw_key)
    not_before = not_after = None
    subject = ""
    allowed: frozenset[CertificateKind] | None = None
    if certificate is not None:
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        try:
            subject = certificate.subject.rfc4514_string()
        except ValueError:
            subject = ""
        allowed = _allowed_kinds(certificate)
    return TrustedKey(
        kid=kid_of_der(der),
        public_key=public_key,
        algorithm=algorithm,
        der=der,
        not_before=not_before,
        not_after=not_after,
        subject=subject,
        own=own,
        allowed_kinds=allowed,
        source=source,
    )


def trusted_key_from_certificate(
    certificate: x509.Certificate, *, own: bool, source: str = ""
) -> TrustedKey:
    """A trusted key from a parsed certificate (e.g. one of our signing certificates)."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return trusted_key_from_der(der, own=own, source=source)


def load_pem_bundle(data: bytes, *, own: bool, source: str) -> list[TrustedKey]:
    """Every certificate of a PEM file (one or many ``CERTIFICATE`` blocks).

    All or nothing: one bad certificate makes the whole file a ``TrustError`` naming
    its position, since a half-imported bundle would fail in ways nobody sees.
    PEM blocks are cut out here rather than by cryptography's bundle loader, which would
    refuse a bundle holding one certificate its X.509 parser cannot read.
    """
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise TrustError("no PEM CERTIFICATE block found")
    keys: list[TrustedKey] = []
    for number, block in enumerate(blocks, start=1):
        try:
            der = base64.b64decode(b"".join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            raise TrustError(f"certificate {number}: invalid base64 in the PEM block") from None
        try:
            keys.append(trusted_key_from_der(der, own=own, source=source))
        except TrustError as error:
            raise TrustError(f"certificate {number}: {error}") from None
    return keys


def load_certificate_data(data: bytes, *, own: bool, source: str) -> list[TrustedKey]:
    """The certificates of a file's bytes: a PEM bundle, or else one DER certificate."""
    if b"-----BEGIN" not in data:
        return [trusted_key_from_der(data, own=own, source=source)]
    return load_pem_bundle(data, own=own, source=source)


class TrustList:
    """The keys a code may be verified with, looked up by kid.

    The same certificate twice (same DER) counts once, marked ``own`` if either copy was.
    """

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        unique: dict[bytes, TrustedKey] = {}
        for key in keys:
            seen = unique.get(key.der)
            if seen is None or (key.own and not seen.own):
                unique[key.der] = key
        # Own keys first: among colliding kids, our own key is the likeliest signer.
        self._keys = tuple(sorted(unique.values(), key=lambda key: not key.own))
        by_kid: dict[bytes, list[TrustedKey]] = {}
        for key in self._keys:
            by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {kid: tuple(keys) for kid, keys in by_kid.items()}

    def __repr__(self) -> str:
        own = sum(key.own for key in self._keys)
        return f"TrustList({len(self._keys)} keys, {own} own)"

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> tuple[TrustedKey, ...]:
        """Every trusted key, own keys first."""
        return self._keys

    def by_kid(self, kid: bytes) -> tuple[TrustedKey, ...]:
        """Every key with ``kid`` (kids collide across issuers), own keys first."""
        return self._by_kid.get(kid, ())
