"""From an hcert map to the ``HC1:`` text a QR code carries.

``HcertSigner`` holds the service's signing keys (the only object that does) and signs
with the newest valid one, or with a named older one to re-issue a certificate
byte-for-byte: CWT claims are canonical CBOR, ECDSA is deterministic (RFC 6979) and zlib
at a fixed level is deterministic, so equal inputs give an equal code.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from regfed.hcert.base45 import b45encode
from regfed.hcert.cose import sign1
from regfed.hcert.keys import SigningKey, select_signer
from regfed.hcert.labels import HC1_PREFIX
from regfed.hcert.payload import COUNTRY, MAX_TEXT, Hcert, cwt_claims

ZLIB_LEVEL = 9  # the QR's size is what matters; compression time is negligible


def encode_hc1(cose: bytes) -> str:
    """``"HC1:"`` + base45(zlib(COSE_Sign1)): the text to put in the QR code."""
    return HC1_PREFIX + b45encode(zlib.compress(cose, ZLIB_LEVEL))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SignedCode:
    """A signed code: the ``HC1:`` text and the key that signed it."""

    text: str
    kid: bytes


class HcertSigner:
    """Signs hcert maps as HCERT codes with the service's keys.

    ``issuer_name`` is the ``is`` of every entry (e.g. "Moscow Department of Health");
    ``issuer_country`` the CWT issuer claim. ``clock`` tells which key is current: it is
    read on every call rather than once at start-up, so a key provisioned with a future
    ``not_before`` takes over, and an expired one stops signing, without a restart.
    """

    def __init__(
        self,
        keys: Iterable[SigningKey],
        issuer_name: str,
        *,
        issuer_country: str = COUNTRY,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._keys = {key.kid: key for key in keys}
        if not self._keys:
            raise ValueError("an HcertSigner needs at least one signing key")
        if not issuer_name or len(issuer_name) > MAX_TEXT:
            raise ValueError("the issuer name must be 1 to 80 characters")
        self.issuer_name = issuer_name
        self.issuer_country = issuer_country
        self._clock = clock

    def __repr__(self) -> str:
        kids = ", ".join(kid.hex() for kid in self._keys)
        return f"HcertSigner(issuer_name={self.issuer_name!r}, kids=[{kids}])"

    def signer_at(self, now: datetime, kid: bytes | None = None) -> SigningKey:
        """The key ``sign`` would use: the one with ``kid`` if present, else the newest
        valid at ``now`` (raises ``KeyFileError`` when there is none)."""
        if kid is not None and kid in self._keys:
            return self._keys[kid]
        return select_signer(self._keys.values(), now)

    @property
    def current_kid(self) -> bytes:
        """The kid of the key that signs new certificates now."""
        return self.signer_at(self._clock()).kid

    def sign(
        self,
        hcert: Hcert,
        issued_at: datetime,
        expires_at: datetime,
        kid: bytes | None = None,
    ) -> SignedCode:
        """Sign ``hcert`` into an ``HC1:`` code issued at ``issued_at``, expiring at
        ``expires_at`` (the certificate's ``valid_until``).

        ``kid``: the key that signed the original, for a re-issue; used if still here.
        A byte-identical re-issue also needs the original ``issued_at`` (whole seconds
        are what the CWT keeps). Without ``kid`` the key valid at ``issued_at`` with the
        latest ``not_before`` signs, so ``iat`` falls inside the certificate's validity.
        """
        key = self.signer_at(issued_at, kid)
        claims = cwt_claims(
            hcert,
            issuer_country=self.issuer_country,
            issued_at=issued_at,
            expires_at=expires_at,
        )
        text = encode_hc1(sign1(claims, key))
        return SignedCode(text=text, kid=key.kid)
