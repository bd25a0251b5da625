"""An independent HC1 decoder and the EU DCC schema, for tests.

The decoding path here (base45, zlib, CBOR, COSE, ECDSA) uses none of regfed's own helpers,
so an encoder bug cannot hide behind a matching decoder bug.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

# No stubs ship for jsonschema and adding types-jsonschema for tests is not worth it.
from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]

SCHEMA_PATH = Path(__file__).parent / "data" / "DCC.combined-schema.json"

B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _b45decode(text: str) -> bytes:
    """RFC 9285, section 4.2, written out again (not strict: only our own output comes in)."""
    out = bytearray()
    for i in range(0, len(text), 3):
        chunk = [B45_ALPHABET.index(c) for c in text[i : i + 3]]
        n = sum(v * 45**k for k, v in enumerate(chunk))
        out += n.to_bytes(2 if len(chunk) == 3 else 1, "big")
    return bytes(out)


@dataclass
class Decoded:
    """What a verifier learns from an HC1 text."""

    protected: dict[int, Any]
    unprotected: dict[int, Any]
    claims: dict[int, Any]
    payload: bytes

    @property
    def hcert(self) -> dict[str, Any]:
        hcert: dict[str, Any] = self.claims[-260][1]
        return hcert

    @property
    def kid(self) -> bytes:
        kid: bytes = self.protected[4]
        return kid

    @property
    def issuer(self) -> str:
        return str(self.claims[1])

    @property
    def expires_at(self) -> int:
        return int(self.claims[4])


def decode_and_verify(text: str, certificate: x509.Certificate) -> Decoded:
    """Decode an HC1 text and verify its ES256 signature against ``certificate``."""
    assert text.startswith("HC1:")
    cose = zlib.decompress(_b45decode(text[4:]))
    message = cbor2.loads(cose)
    assert isinstance(message, cbor2.CBORTag)
    assert message.tag == 18
    protected_bytes, unprotected, payload, signature = message.value
    assert isinstance(protected_bytes, bytes)
    assert isinstance(payload, bytes)
    assert len(signature) == 64
    sig_structure = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    der_signature = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der_signature, sig_structure, ec.ECDSA(hashes.SHA256()))
    return Decoded(cbor2.loads(protected_bytes), unprotected, cbor2.loads(payload), payload)


# --- the DCC schema -----------------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)
_FORMATS = FormatChecker()


def _is_rfc3339(value: object) -> bool:
    """jsonschema checks date-time only with an optional package; check it here instead."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


_FORMATS.checks("date-time", raises=ValueError)(_is_rfc3339)


def dcc_validator() -> Draft202012Validator:
    """The EU DCC JSON schema 1.3.3 (a copy in tests/data), checking formats."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_FORMATS)
