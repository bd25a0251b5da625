"""COSE_Sign1 (RFC 9052) with ES256, as HCERT uses it.

The structure is CBOR tag 18 around ``[protected, unprotected, payload, signature]``:
the protected header ``{1: -7, 4: kid}`` as a byte string, an empty unprotected map,
the CWT claims as a byte string, and the signature as 64 bytes ``r || s`` (COSE's raw
form, not the DER an X.509 library produces).

Signing is deterministic (RFC 6979): the same payload and key always give the same
bytes. The service relies on it to hand back a byte-identical code on an idempotent
re-issue without storing the payload, which holds personal data.
"""

from __future__ import annotations

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from regfed.hcert.keys import SigningKey
from regfed.hcert.labels import ALGORITHM_IDS, COSE_SIGN1_TAG, ES256, HEADER_ALG, HEADER_KID

# P-256 scalars are 32 bytes; r and s are each left-padded to that width.
_P256_SCALAR_BYTES = 32


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes actually signed (RFC 9052, section 4.4): no external AAD in HCERT.

    The verifier builds it from the protected header and payload exactly as received.
    """
    return cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)


def protected_header(kid: bytes) -> bytes:
    """The encoded protected header ``{1: -7, 4: kid}`` (ES256, key identifier)."""
    return cbor2.dumps({HEADER_ALG: ALGORITHM_IDS[ES256], HEADER_KID: kid}, canonical=True)


def sign1(payload: bytes, key: SigningKey) -> bytes:
    """A tagged COSE_Sign1 message over ``payload``, signed with ES256 by ``key``."""
    protected = protected_header(key.kid)
    der = key.private_key.sign(
        sig_structure(protected, payload),
        ec.ECDSA(hashes.SHA256(), deterministic_signing=True),
    )
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(_P256_SCALAR_BYTES, "big") + s.to_bytes(_P256_SCALAR_BYTES, "big")
    message = cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature])
    return cbor2.dumps(message, canonical=True)
