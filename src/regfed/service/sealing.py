"""Personal data an application must keep, sealed with AES-256-GCM.

Re-checking a pending application needs the person's identifiers, names and birth date,
and support needs the contact: the store keeps them only as ciphertext, under a key that
lives in a file (``REGFED_APPLICATION_KEY_FILE``), never in the database. Each ciphertext is
bound to what it belongs to through the associated data (its purpose and the application's
id), so a ciphertext copied onto another row, or from one purpose to another, does not open.

Layout: one version byte, a 12-byte random nonce, then the ciphertext and its 16-byte tag.
The version byte leaves room for a key rotation that tells old ciphertexts from new ones.
"""

from __future__ import annotations

import enum
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from regfed.errors import SealedDataError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce: random, so at most ~2**32 seals per key is safe
TAG_BYTES = 16
VERSION = b"\x01"


class Purpose(enum.Enum):
    """What a sealed value is; part of its associated data."""

    PERSON = "person"  # identifiers, names, birth date and contact of an open application
    CERTIFICATE = "certificate"  # the hcert map and basis of the code an application got


def _associated_data(purpose: Purpose, owner: uuid.UUID) -> bytes:
    return b"regfed/application/v1/" + purpose.value.encode("ascii") + b"/" + owner.bytes


class Sealer:
    """Seals and opens values with one AES-256-GCM key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("the application key must be bytes")
        if len(key) != KEY_BYTES:
            raise ValueError(f"the application key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(bytes(key))

    def __repr__(self) -> str:
        return "Sealer(key=<redacted>)"

    __str__ = __repr__

    def seal(self, purpose: Purpose, owner: uuid.UUID, plaintext: bytes) -> bytes:
        """``plaintext`` encrypted and authenticated, bound to ``purpose`` and ``owner``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _associated_data(purpose, owner))
        return VERSION + nonce + sealed

    def open(self, purpose: Purpose, owner: uuid.UUID, sealed: bytes) -> bytes:
        """The plaintext of ``sealed``; SealedDataError when it is not ours, not for this
        purpose and owner, or altered."""
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES or sealed[:1] != VERSION:
            raise SealedDataError(f"sealed {purpose.value} data has an unknown layout")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, _associated_data(purpose, owner))
        except InvalidTag:
            raise SealedDataError(
                f"sealed {purpose.value} data does not open with the application key"
            ) from None
