"""The policy stage of verification: who signed a code, what it says, and whether it holds.

``verify_hc1`` is a pure function of the scanned text, the trust list and an instant.
Its order is the point (the lessons of the deployed DCC verifiers):

1. take the container apart strictly (``decode``);
2. read ``alg`` from the protected header only: an ``alg`` in the unsigned header could
   be swapped by anyone, and an absent or unknown one is a failure, never "unsigned";
3. find every trusted key with the kid (kids collide across issuers) and check the
   signature over the bytes received, *before* anything in the payload is believed;
4. only then read the CWT claims and the hcert (``claims``), apply the signing
   certificate's extended key usage and its expiry (no code issued after it), and compare
   ``iat``/``exp`` with the instant, allowing a clock skew.

Whatever the text, a ``Verification`` comes back; nothing raises for any ``str``.
"""

from __future__ import annotations

import base64
import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from regfed.domain.model import CertificateKind
from regfed.hcert.claims import Claims, read_claims
from regfed.hcert.decode import Malformed, Sign1, decode_hc1, header_label
from regfed.hcert.labels import ALGORITHMS, ES256, ES384, ES512, HEADER_ALG, HEADER_KID, PS256
from regfed.hcert.trust import TrustedKey, TrustList

logger = logging.getLogger(__name__)

# RFC 9053, section 2.1: each ECDSA algorithm is one curve with one hash, never mixed.
_ECDSA: dict[str, tuple[type[ec.EllipticCurve], type[hashes.HashAlgorithm]]] = {
    ES256: (ec.SECP256R1, hashes.SHA256),
    ES384: (ec.SECP384R1, hashes.SHA384),
    ES512: (ec.SECP521R1, hashes.SHA512),
}
PSS_SALT_LENGTH = 32  # HCERT spec, section 3.3.2: PS256 salt = SHA-256 digest length

DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_MAX_INFLATED = 64 * 1024  # a real HCERT inflates to well under 2 KB
INTERNAL_ERROR = "the code could not be decoded (internal verifier error)"


class Verdict(enum.Enum):
    """What a checker is told about a code."""

    VALID = "valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"  # decided by the service from its store, after verify_hc1
    SIGNATURE_INVALID = "signature_invalid"
    UNKNOWN_KEY = "unknown_key"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict on a code, and what the code says when that could be trusted.

    ``kid`` and ``key`` are set only once a trusted key's signature held; the claims
    (issuer to birth date) only when, in addition, they were well-formed and the key
    was allowed to sign the code's kind, i.e. for VALID, EXPIRED and NOT_YET_VALID.
    """

    verdict: Verdict
    detail: str = ""
    kid: bytes | None = None
    key: TrustedKey | None = None
    issuer: str | None = None
    issued_at: datetime | None = None  # the CWT's iat: when the code was signed
    valid_from: datetime | None = None  # what the certificate states: see _valid_from
    expires_at: datetime | None = None
    kind: CertificateKind | None = None
    uvci: str | None = None
    holder_name: str | None = None
    holder_birth_date: str | None = None


def _kid_text(kid: bytes) -> str:
    """A kid as the API shows it (base64); an absurdly long one cut short for the detail."""
    shown = base64.b64encode(kid[:32]).decode("ascii")
    return shown if len(kid) <= 32 else f"{shown}... ({len(kid)} bytes)"


def _describe(value: object) -> str:
    """A header value in a detail: small integers shown, anything else only by type."""
    if type(value) is int and -(2**63) <= value < 2**64:
        return str(value)
    return f"a value of type {type(value).__name__}"


# --- the signature ---------------------------------------------------------------------


def _ecdsa_ok(algorithm: str, key: TrustedKey, signed: bytes, signature: bytes) -> bool:
    public_key = key.public_key
    curve, digest = _ECDSA[algorithm]
    # A key with the right kid on another curve never verifies: ES256 is P-256 only,
    # ES384 P-384 only, ES512 P-521 only.
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, curve
    ):
        return False
    # COSE carries r || s, each the curve's size (RFC 9053, section 2.1), not X.509's DER.
    size = (public_key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return False
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(digest()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _ps256_ok(key: TrustedKey, signed: bytes, signature: bytes) -> bool:
    public_key = key.public_key
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)
    try:
        public_key.verify(signature, signed, pss, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _signature_ok(algorithm: str, key: TrustedKey, signed: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``signed`` holds for ``key`` under ``algorithm``."""
    if algorithm == PS256:
        return _ps256_ok(key, signed, signature)
    return _ecdsa_ok(algorithm, key, signed, signature)


def _signers(sign1: Sign1, trust: TrustList) -> tuple[bytes, list[TrustedKey]] | Verification:
    """The kid and every trusted key whose signature holds, or the failed Verification."""
    alg = header_label(sign1.protected_header, HEADER_ALG)
    if alg is None:
        moved = header_label(sign1.unprotected_header, HEADER_ALG) is not None
        where = " (only the unprotected header has one, and it is not signed)" if moved else ""
        return Verification(
            Verdict.SIGNATURE_INVALID, f"no algorithm in the protected header{where}"
        )
    algorithm = ALGORITHMS.get(alg) if type(alg) is int else None
    if algorithm is None:
        return Verification(
            Verdict.SIGNATURE_INVALID,
            f"unsupported signature algorithm {_describe(alg)} "
            "(ES256, ES384, ES512 or PS256 expected)",
        )
    # COSE: the protected kid wins; the unprotected one is a fallback HCERT allows.
    kid = header_label(sign1.protected_header, HEADER_KID)
    if kid is None:
        kid = header_label(sign1.unprotected_header, HEADER_KID)
    if kid is None:
        return Verification(Verdict.UNKNOWN_KEY, "the code carries no key identifier (kid)")
    if not isinstance(kid, bytes):
        return Verification(Verdict.MALFORMED, "the key identifier (kid) is not a byte string")
    candidates = trust.by_kid(kid)
    if not candidates:
        return Verification(
            Verdict.UNKNOWN_KEY, f"no trusted key has the kid {_kid_text(kid)} of this code"
        )
    matching = [key for key in candidates if key.algorithm == algorithm]
    if not matching:
        return Verification(
            Verdict.SIGNATURE_INVALID,
            f"the code is signed with {algorithm}, but the trusted keys with kid "
            f"{_kid_text(kid)} are for {', '.join(sorted({k.algorithm for k in candidates}))}",
        )
    signed = sign1.sig_structure()
    # Every key with the kid is tried: a colliding kid must not hide the real signer.
    holding = [key for key in matching if _signature_ok(algorithm, key, signed, sign1.signature)]
    if not holding:
        return Verification(
            Verdict.SIGNATURE_INVALID,
            f"the {algorithm} signature does not verify with the trusted key(s) "
            f"with kid {_kid_text(kid)}",
        )
    return kid, holding


def _validity(claims: Claims, at: datetime, skew: timedelta) -> tuple[Verdict, str]:
    """The verdict of the instant ``at`` against ``iat``/``exp``, with ``skew`` either way.

    NOT_YET_VALID when ``at < iat - skew``; EXPIRED when ``at >= exp + skew``; VALID in
    ``[iat - skew, exp + skew)``. ``exp`` is exclusive, as the signer writes it (the
    certificate's ``valid_until``); the skew forgives a checker's or issuer's clock.
    """
    # Differences of two datetimes never overflow, unlike ``iat - skew`` near year 1.
    if claims.issued_at - at > skew:
        return Verdict.NOT_YET_VALID, f"issued for {claims.issued_at.isoformat()} onwards"
    if at - claims.expires_at >= skew:
        return Verdict.EXPIRED, f"expired at {claims.expires_at.isoformat()}"
    return Verdict.VALID, ""


def _verify(
    text: str, trust: TrustList, at: datetime, skew: timedelta, max_inflated: int
) -> Verification:
    try:
        sign1 = decode_hc1(text, max_inflated=max_inflated)
    except Malformed as error:
        return Verification(Verdict.MALFORMED, error.detail)
    found = _signers(sign1, trust)
    if isinstance(found, Verification):
        return found
    kid, holding = found
    try:
        claims = read_claims(sign1.payload)
    except Malformed as error:
        return Verification(Verdict.MALFORMED, error.detail, kid=kid, key=holding[0])
    # HCERT EKU: a key restricted to other kinds must not vouch for this one.
    allowed = [key for key in holding if key.may_sign(claims.kind)]
    if not allowed:
        return Verification(
            Verdict.SIGNATURE_INVALID,
            f"the signing key (kid {_kid_text(kid)}) may not sign {claims.kind.value} "
            "certificates (its extended key usage restricts it)",
            kid=kid,
            key=holding[0],
        )
    # A certificate vouches only for codes issued while it was valid: a retired key must
    # not sign new codes, and a stolen one must not be able to. One that has expired
    # since still vouches for what it signed before. ``not_before`` is not checked:
    # several issuers signed codes whose ``iat`` precedes their certificate's not_before.
    in_force = [
        key for key in allowed if key.not_after is None or claims.issued_at <= key.not_after
    ]
    if not in_force:
        not_after = max(key.not_after for key in allowed if key.not_after is not None)
        return Verification(
            Verdict.SIGNATURE_INVALID,
            f"the code was issued at {claims.issued_at.isoformat()}, after its signing "
            f"certificate (kid {_kid_text(kid)}) expired at {not_after.isoformat()}",
            kid=kid,
            key=allowed[0],
        )
    verdict, detail = _validity(claims, at, skew)
    return Verification(
        verdict,
        detail,
        kid=kid,
        key=in_force[0],
        issuer=claims.issuer,
        issued_at=claims.issued_at,
        valid_from=claims.valid_from,
        expires_at=claims.expires_at,
        kind=claims.kind,
        uvci=claims.uvci,
        holder_name=claims.holder_name,
        holder_birth_date=claims.holder_birth_date,
    )


def verify_hc1(
    text: str,
    trust: TrustList,
    at: datetime,
    *,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    max_inflated: int = DEFAULT_MAX_INFLATED,
) -> Verification:
    """Verify an ``HC1:`` text against ``trust`` as of the instant ``at``.

    ``at`` must be timezone-aware and ``clock_skew`` non-negative (``ValueError``
    otherwise: those are the caller's bugs, not the scanned text's). For any ``text``
    a ``Verification`` is returned; see ``_validity`` for the exact time boundaries.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verify_hc1 needs a timezone-aware instant")
    if clock_skew < timedelta(0) or max_inflated < 1:
        raise ValueError("clock_skew must be >= 0 and max_inflated >= 1")
    try:
        return _verify(text, trust, at, clock_skew, max_inflated)
    except Exception as error:
        # Last resort, never expected (the property tests look for this detail): a
        # checker's scan must get a verdict, not crash the service. The type only is
        # logged; the message could quote personal data from the code.
        logger.error("verify_hc1: unexpected %s", type(error).__name__)
        return Verification(Verdict.MALFORMED, INTERNAL_ERROR)
