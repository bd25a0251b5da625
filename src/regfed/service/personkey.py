"""Keyed hashes that stand in for people and certificate bases in the store.

The store never sees a SNILS, OMS policy, passport number or name: a person is the
HMAC-SHA256 of their strongest identifier under a service secret, and a certificate's basis
is the HMAC-SHA256 of an unambiguous encoding of the events it rests on. Without the secret
neither can be reversed by enumerating the (small) identifier spaces.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_SECRET_BYTES = 32

# Separate subkeys for the two uses, so a person key can never equal a fingerprint.
_PERSON_CONTEXT = b"regfed/person-key/v1"
_BASIS_CONTEXT = b"regfed/basis-fingerprint/v1"

_SEPARATORS = str.maketrans("", "", " \t-")


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _identifier(kind: str, value: str | None) -> bytes | None:
    """``b"kind:digits"``, or None when ``value`` is absent or blank.

    Spaces and hyphens are dropped so "123-456-789 01" and "12345678901" key the same
    person; anything else but ASCII digits is refused rather than silently keyed.
    """
    if value is None:
        return None
    digits = value.translate(_SEPARATORS)
    if not digits:
        return None
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{kind} must consist of digits")
    return kind.encode("ascii") + b":" + digits.encode("ascii")


class PersonKeyer:
    """Derives person keys and basis fingerprints from a service secret (≥ 32 bytes)."""

    __slots__ = ("_basis_key", "_person_key")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray):
            raise TypeError("the person-key secret must be bytes")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the person-key secret must be at least {MIN_SECRET_BYTES} bytes")
        secret = bytes(secret)
        self._person_key = _hmac(secret, _PERSON_CONTEXT)
        self._basis_key = _hmac(secret, _BASIS_CONTEXT)

    def __repr__(self) -> str:
        return "PersonKeyer(secret=<redacted>)"

    __str__ = __repr__

    def person_key(
        self, *, snils: str | None, oms_policy: str | None, passport: str | None
    ) -> bytes:
        """The 32-byte key of a person: their strongest identifier (SNILS > OMS > passport),
        tagged by kind, under the secret. Blank identifiers count as absent."""
        for kind, value in (("snils", snils), ("oms", oms_policy), ("passport", passport)):
            encoded = _identifier(kind, value)
            if encoded is not None:
                return _hmac(self._person_key, encoded)
        raise ValueError("a person key needs a SNILS, an OMS policy or a passport number")

    def fingerprint(self, *parts: str) -> bytes:
        """The 32-byte fingerprint of ``parts``: each is length-prefixed, so no two distinct
        sequences of parts encode alike."""
        if not parts:
            raise ValueError("a fingerprint needs at least one part")
        encoded = bytearray(len(parts).to_bytes(4, "big"))
        for part in parts:
            data = part.encode("utf-8")
            encoded += len(data).to_bytes(8, "big")
            encoded += data
        return _hmac(self._basis_key, bytes(encoded))
