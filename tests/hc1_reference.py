"""An independent HC1 decoder and encoder, and the EU DCC schema, for tests.

The decoding path here (base45, zlib, CBOR, COSE, ECDSA) uses none of regfed's own helpers,
so an encoder bug cannot hide behind a matching decoder bug. The encoder (at the end) plays
a partner issuer's software the same way: its own base45, zlib, CBOR and COSE_Sign1.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID

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


# --- an independent encoder, for partner issuers built inside tests ----------------------
#
# Like the decoder above, none of this uses regfed's helpers: a partner region runs its own
# software, and a test that signed with regfed's encoder would only prove regfed agrees
# with itself.

EKU_OIDS = {
    "test": "1.3.6.1.4.1.1847.2021.1.1",
    "vaccination": "1.3.6.1.4.1.1847.2021.1.2",
    "recovery": "1.3.6.1.4.1.1847.2021.1.3",
}
# The HCERT spec's second family, with the same meaning: issuers used either.
EKU_OIDS_ALTERNATE = {
    "test": "1.3.6.1.4.1.0.1847.2021.1.1",
    "vaccination": "1.3.6.1.4.1.0.1847.2021.1.2",
    "recovery": "1.3.6.1.4.1.0.1847.2021.1.3",
}
COSE_ALGS = {"ES256": -7, "ES384": -35, "ES512": -36, "PS256": -37}
# RFC 9053, section 2.1: the curve and hash each ECDSA algorithm stands for.
EC_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
EC_HASHES: dict[str, hashes.HashAlgorithm] = {
    "ES256": hashes.SHA256(),
    "ES384": hashes.SHA384(),
    "ES512": hashes.SHA512(),
}


def b45encode(data: bytes) -> str:
    """RFC 9285, section 4.1, written out again."""
    out = []
    for i in range(0, len(data), 2):
        chunk = data[i : i + 2]
        n = int.from_bytes(chunk, "big")
        digits = 3 if len(chunk) == 2 else 2
        for _ in range(digits):
            n, digit = divmod(n, 45)
            out.append(B45_ALPHABET[digit])
    return "".join(out)


def hc1_text(cose: bytes, *, prefix: str = "HC1:") -> str:
    """``prefix`` + base45(zlib(cose)): a QR text around any bytes."""
    return prefix + b45encode(zlib.compress(cose))


def self_signed_certificate(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    name: str = "Partner DSC",
    eku: tuple[str, ...] = (),
    not_before: datetime = datetime(2021, 1, 1, tzinfo=UTC),
    days: int = 730,
) -> x509.Certificate:
    """A self-signed X.509 certificate of ``private_key``; ``eku`` names HCERT kinds
    (first OID family) or holds OIDs verbatim."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
    )
    if eku:
        usages = [x509.ObjectIdentifier(EKU_OIDS.get(kind, kind)) for kind in eku]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(private_key, hashes.SHA256())


@dataclass
class Partner:
    """A partner issuer: its own key, its own certificate, its own COSE code."""

    algorithm: str  # "ES256", "ES384", "ES512" or "PS256"
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def kid(self) -> bytes:
        return hashlib.sha256(self.der).digest()[:8]

    def protected(self, *, alg: int | None = None, kid: bytes | None = None) -> bytes:
        """The encoded protected header ``{1: alg, 4: kid}`` (this partner's by default)."""
        header = {1: COSE_ALGS[self.algorithm] if alg is None else alg, 4: kid or self.kid}
        return cbor2.dumps(header)

    def sign(self, protected: bytes, payload: bytes) -> bytes:
        """The COSE signature over Sig_structure (RFC 9052, 4.4): r || s, or RSA-PSS."""
        to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return key.sign(to_be_signed, pss, hashes.SHA256())
        # The hash follows the algorithm, not the key: an imposter test signs "ES256"
        # with a P-384 key on purpose.
        r, s = decode_dss_signature(key.sign(to_be_signed, ec.ECDSA(EC_HASHES[self.algorithm])))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def code(
        self,
        payload: bytes,
        *,
        protected: bytes | None = None,
        unprotected: dict[int, Any] | None = None,
        tags: tuple[int, ...] = (18,),
    ) -> str:
        """A complete HC1 text of ``payload`` signed by this partner."""
        protected = self.protected() if protected is None else protected
        signature = self.sign(protected, payload)
        return hc1_text(sign1_bytes(protected, unprotected or {}, payload, signature, tags=tags))


def new_partner(
    algorithm: str = "ES256",
    *,
    eku: tuple[str, ...] = (),
    curve: ec.EllipticCurve | None = None,
    rsa_bits: int = 2048,
    name: str = "Partner DSC",
    not_before: datetime = datetime(2021, 1, 1, tzinfo=UTC),
    days: int = 730,
) -> Partner:
    """A fresh partner issuer with a self-signed certificate valid for ``days`` from
    ``not_before``; ``curve`` defaults to the algorithm's own."""
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "PS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    else:
        private_key = ec.generate_private_key(curve or EC_CURVES[algorithm])
    certificate = self_signed_certificate(
        private_key, name=name, eku=eku, not_before=not_before, days=days
    )
    return Partner(algorithm, private_key, certificate)


def sign1_bytes(
    protected: bytes,
    unprotected: dict[int, Any],
    payload: bytes,
    signature: bytes,
    *,
    tags: tuple[int, ...] = (18,),
) -> bytes:
    """A COSE_Sign1 array inside ``tags`` (outermost first): (18,), (61, 18), (61,), ()."""
    item: Any = [protected, unprotected, payload, signature]
    for tag in reversed(tags):
        item = cbor2.CBORTag(tag, item)
    return cbor2.dumps(item)


def cwt_payload(hcert: dict[str, Any], *, iat: int, exp: int, issuer: str = "XX") -> bytes:
    """CWT claims ``{1: iss, 4: exp, 6: iat, -260: {1: hcert}}`` (RFC 8392; HCERT 3.3.1)."""
    return cbor2.dumps({1: issuer, 4: exp, 6: iat, -260: {1: hcert}})


def partner_hcert(kind: str = "v", *, uvci: str = "URN:UVCI:01:XX:PARTNER#1") -> dict[str, Any]:
    """A minimal schema-shaped hcert of ``kind`` ("v", "t" or "r") for a partner's holder."""
    entry: dict[str, Any] = {"tg": "840539006", "co": "XX", "is": "Partner Ministry", "ci": uvci}
    groups: dict[str, dict[str, Any]] = {
        "v": {"vp": "J07BX03", "mp": "EU/1/20/1528", "ma": "ORG-100030215", "dn": 2, "sd": 2,
              "dt": "2021-05-01"},
        "t": {"tt": "LP6464-4", "sc": "2021-07-01T06:00:00Z", "tr": "260415000"},
        "r": {"fr": "2021-03-01", "df": "2021-03-20", "du": "2021-09-15"},
    }  # fmt: skip
    entry.update(groups[kind])
    return {
        "ver": "1.3.0",
        "nam": {"fn": "Müller-Lüdenscheidt", "gn": "Jörg", "fnt": "MUELLER<LUEDENSCHEIDT",
                "gnt": "JOERG"},
        "dob": "1970-12-31",
        kind: [entry],
    }  # fmt: skip


def split_hc1(text: str) -> tuple[bytes, dict[int, Any], bytes, bytes]:
    """(protected, unprotected, payload, signature) of an HC1 text with tag 18."""
    message = cbor2.loads(cose_of(text))
    assert isinstance(message, cbor2.CBORTag)
    assert message.tag == 18
    protected, unprotected, payload, signature = message.value
    return protected, dict(unprotected), payload, signature


def cose_of(text: str) -> bytes:
    """The COSE message bytes inside an HC1 text (base45, then zlib, undone)."""
    return zlib.decompress(_b45decode(text[4:]))
