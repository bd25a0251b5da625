"""The numbers and strings of the HCERT wire format, defined once.

HCERT spec (ehn-dcc-development/hcert-spec) with RFC 9052/9053 (COSE) and RFC 8392 (CWT):
the signer writes them, the verifier reads them, the API validates against them.
"""

from __future__ import annotations

HC1_PREFIX = "HC1:"  # context identifier of the QR text, then base45(zlib(COSE_Sign1))

COSE_SIGN1_TAG = 18  # RFC 9052, section 4.2
CWT_TAG = 61  # RFC 8392, section 6: a CWT may be tagged 61 around its COSE message

# COSE header labels (RFC 9052, section 3.1).
HEADER_ALG = 1
HEADER_KID = 4

# COSE algorithm identifiers (IANA "COSE Algorithms"): HCERT's ES256 and PS256, and the
# ECDSA ones of partner keys on P-384 / P-521 (DESIGN.md).
ES256, ES384, ES512, PS256 = "ES256", "ES384", "ES512", "PS256"
ALGORITHM_IDS = {ES256: -7, ES384: -35, ES512: -36, PS256: -37}
ALGORITHMS = {number: name for name, number in ALGORITHM_IDS.items()}

# CWT claim keys (RFC 8392, section 3.1) and the HCERT claim holding {1: hcert}.
CLAIM_ISSUER = 1
CLAIM_EXPIRY = 4
CLAIM_ISSUED_AT = 6
CLAIM_HCERT = -260
HCERT_V1 = 1

UVCI_PREFIX = "URN:UVCI:01:"  # then the issuing country, ":", the opaque part
