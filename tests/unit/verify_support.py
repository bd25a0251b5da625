"""Shared keys, codes and helpers of the verify_hc1 tests (no fixtures: plain values).

Keys are made once per test run, at import: an RSA-2048 key takes a noticeable moment,
and every test here only reads them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from regfed.domain.policy import Grant
from regfed.hcert.keys import SigningKey, kid_of
from regfed.hcert.payload import Hcert, build_hcert, new_uvci
from regfed.hcert.signer import HcertSigner
from regfed.hcert.trust import TrustedKey, TrustList, trusted_key_from_certificate
from regfed.hcert.verify import INTERNAL_ERROR, Verification, verify_hc1
from tests.hc1_reference import Partner, cwt_payload, new_partner, partner_hcert
from tests.hc1_reference import self_signed_certificate as _certificate
from tests.unit.test_hcert import GRANTS, ISSUER

NOW = datetime(2021, 7, 1, 9, 30, tzinfo=UTC)
IAT = int(NOW.timestamp())
EXP = IAT + 30 * 86400
AT = NOW + timedelta(hours=1)


def _own_key() -> SigningKey:
    """Our signing key, held in memory only (no key file ever lands in the repository)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(private_key, name="regfed test signer")
    return SigningKey("own", private_key, certificate, kid_of(certificate))


OWN_KEY = _own_key()
SIGNER = HcertSigner([OWN_KEY], ISSUER)
ES256 = new_partner("ES256", name="Partner ES256")
PS256 = new_partner("PS256", name="Partner PS256")
TEST_ONLY = new_partner("ES256", eku=("test",), name="Partner test lab")


def trusted(partner: Partner) -> TrustedKey:
    """A partner's certificate as a trust-list entry."""
    return trusted_key_from_certificate(partner.certificate, own=False, source="partner.pem")


TRUST = TrustList(
    [
        trusted_key_from_certificate(OWN_KEY.certificate, own=True, source="keys"),
        trusted(ES256),
        trusted(PS256),
        trusted(TEST_ONLY),
    ]
)


def regfed_hcert(grant: Grant, uvci: str) -> Hcert:
    """regfed's hcert map of ``grant`` for Anna Shchukina-Elkina, born 14 March 1985."""
    return build_hcert(
        grant,
        last_name="Щукина-Ёлкина",
        first_name="Анна",
        birth_date=date(1985, 3, 14),
        uvci=uvci,
        issuer_name=ISSUER,
    )


def _real_code() -> str:
    grant = GRANTS["vaccination"]()
    return SIGNER.sign(regfed_hcert(grant, new_uvci()), NOW, grant.valid_until).text


REAL_CODE = _real_code()  # a vaccination code signed by regfed's own signer


def partner_code(partner: Partner, kind: str = "v", **options: Any) -> str:
    """A code of ``kind`` by ``partner`` (``iat``/``exp`` and ``Partner.code`` options)."""
    iat, exp = options.pop("iat", IAT), options.pop("exp", EXP)
    return partner.code(cwt_payload(partner_hcert(kind), iat=iat, exp=exp), **options)


def check(text: str, trust: TrustList, at: datetime = AT, **options: Any) -> Verification:
    """verify_hc1, asserting the answer came from the rules, not the last-resort guard."""
    result = verify_hc1(text, trust, at, **options)
    assert result.detail != INTERNAL_ERROR
    return result


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with one bit inverted."""
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)
