"""verify_hc1: round trips, partner issuers, tampering and the strict decoding layers."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from regfed.domain.model import CertificateKind
from regfed.hcert.payload import new_uvci
from regfed.hcert.trust import TrustList, trusted_key_from_certificate
from regfed.hcert.verify import Verdict
from regfed.keystore.trustdir import load_trust_dir
from tests.hc1_reference import (
    Partner,
    b45encode,
    cose_of,
    cwt_payload,
    hc1_text,
    partner_hcert,
    sign1_bytes,
    split_hc1,
)
from tests.unit.test_hcert import GRANTS
from tests.unit.verify_support import (
    ES256,
    EXP,
    IAT,
    NOW,
    OWN_KEY,
    PS256,
    REAL_CODE,
    SIGNER,
    TRUST,
    check,
    flip,
    partner_code,
    regfed_hcert,
    trusted,
)

KINDS = {
    "vaccination": CertificateKind.VACCINATION,
    "recovery": CertificateKind.RECOVERY,
    "antibodies": CertificateKind.RECOVERY,
    "test": CertificateKind.TEST,
}


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRANTS))
def test_every_kind_signed_by_regfed_is_valid(name: str) -> None:
    """Each kind regfed signs verifies VALID with every field filled from the code."""
    grant, uvci = GRANTS[name](), new_uvci()
    code = SIGNER.sign(regfed_hcert(grant, uvci), NOW, grant.valid_until)
    result = check(code.text, TRUST, at=NOW)
    assert result.verdict is Verdict.VALID
    assert result.detail == ""
    assert result.kid == OWN_KEY.kid
    assert result.key is not None
    assert result.key.own
    assert result.issuer == "RU"
    assert result.issued_at == NOW
    # The validity the certificate states (dt, df, sc), as Issue gives it; not the iat.
    assert result.valid_from == grant.valid_from.replace(microsecond=0)
    assert result.valid_from != result.issued_at
    assert result.expires_at == grant.valid_until.replace(microsecond=0)
    assert result.kind is KINDS[name]
    assert result.uvci == uvci
    assert result.holder_name == "SHCHUKINA ELKINA ANNA"
    assert result.holder_birth_date == "1985-03-14"


@pytest.mark.parametrize("partner", [ES256, PS256], ids=["ES256", "PS256"])
def test_partner_issuer_is_unknown_until_trusted(partner: Partner) -> None:
    """A partner's own code is UNKNOWN_KEY without its certificate, VALID with it."""
    code = partner_code(partner, "r")
    ours_only = TrustList([trusted_key_from_certificate(OWN_KEY.certificate, own=True)])
    unknown = check(code, ours_only)
    assert unknown.verdict is Verdict.UNKNOWN_KEY
    assert unknown.kid is None
    assert unknown.holder_name is None
    result = check(code, TrustList([*ours_only.keys, trusted(partner)]))
    assert result.verdict is Verdict.VALID
    assert result.key is not None
    assert result.key.algorithm == partner.algorithm
    assert not result.key.own
    assert result.kid == partner.kid
    assert (result.kind, result.issuer) == (CertificateKind.RECOVERY, "XX")
    assert result.holder_name == "MUELLER LUEDENSCHEIDT JOERG"
    assert result.holder_birth_date == "1970-12-31"


# --- tampering ------------------------------------------------------------------------------


def test_no_single_bit_flip_of_signature_or_payload_is_valid() -> None:
    """Every one-bit change of the signature, protected header or payload is never VALID."""
    protected, unprotected, payload, signature = split_hc1(REAL_CODE)
    intact = hc1_text(sign1_bytes(protected, unprotected, payload, signature))
    assert check(intact, TRUST).verdict is Verdict.VALID
    for bit in range(len(signature) * 8):
        text = hc1_text(sign1_bytes(protected, unprotected, payload, flip(signature, bit)))
        assert check(text, TRUST).verdict is Verdict.SIGNATURE_INVALID, bit
    for bit in range(len(payload) * 8):
        text = hc1_text(sign1_bytes(protected, unprotected, flip(payload, bit), signature))
        assert check(text, TRUST).verdict is Verdict.SIGNATURE_INVALID, bit
    for bit in range(len(protected) * 8):
        text = hc1_text(sign1_bytes(flip(protected, bit), unprotected, payload, signature))
        assert check(text, TRUST).verdict is not Verdict.VALID, bit


def test_every_truncation_is_never_valid() -> None:
    """The text cut at every length gets a verdict, never VALID, never an exception."""
    assert check(REAL_CODE, TRUST).verdict is Verdict.VALID
    for length in range(len(REAL_CODE)):
        assert check(REAL_CODE[:length], TRUST).verdict is Verdict.MALFORMED, length


def test_trailing_garbage_at_every_layer_is_malformed() -> None:
    """Extra data after the base45, the zlib stream, the COSE item or the claims is refused."""
    cose = cose_of(REAL_CODE)
    texts = {
        "a dangling base45 character": REAL_CODE + "A",
        "base45 of two more bytes": REAL_CODE + "000",
        "after the zlib stream": "HC1:" + b45encode(zlib.compress(cose) + b"\x00"),
        "after the COSE item": hc1_text(cose + b"\x00"),
        "a whitespace after the text": REAL_CODE + " ",
    }
    for where, text in texts.items():
        assert check(text, TRUST).verdict is Verdict.MALFORMED, where
    # Trailing bytes after the claims, even under a good signature, are not believed.
    payload = cwt_payload(partner_hcert(), iat=IAT, exp=EXP) + b"\x00"
    result = check(ES256.code(payload), TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert "trailing" in result.detail
    assert result.kid == ES256.kid
    assert result.holder_name is None


@pytest.mark.parametrize(
    "prefix", ["HC2:", "hc1:", "", "HC1", " HC1:", "HC1: ", "\ufeffHC1:", "HC1:HC1:"]
)
def test_wrong_prefix_is_malformed(prefix: str) -> None:
    """Only the exact, case-sensitive 'HC1:' prefix is accepted."""
    result = check(prefix + REAL_CODE[4:], TRUST)
    assert result.verdict is Verdict.MALFORMED


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_one_trailing_line_end_is_tolerated(end: str) -> None:
    """A single line end (what keyboard-wedge scanners append) is dropped; two are not."""
    assert check(REAL_CODE + end, TRUST).verdict is Verdict.VALID
    assert check(REAL_CODE + end + end, TRUST).verdict is Verdict.MALFORMED


def test_lower_case_base45_is_malformed() -> None:
    """Base45 is upper case only; a lower-cased body is refused."""
    lowered = "HC1:" + REAL_CODE[4:].lower()
    assert lowered != REAL_CODE
    result = check(lowered, TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert "base45" in result.detail


def test_uncompressed_cose_is_malformed() -> None:
    """zlib is required: a base45 COSE message without it is MALFORMED."""
    cose = cose_of(REAL_CODE)
    result = check("HC1:" + b45encode(cose), TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert "zlib" in result.detail


def test_compression_bomb_is_malformed() -> None:
    """50 MB of zeros behind HC1: is refused at the inflation cap."""
    compressor = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    bomb = b"".join(compressor.compress(chunk) for _ in range(50)) + compressor.flush()
    result = check("HC1:" + b45encode(bomb), TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert "more than 65536 bytes" in result.detail


def test_no_single_bit_flip_of_a_ps256_signature_is_valid() -> None:
    """Every one-bit change of an RSA-PSS signature is SIGNATURE_INVALID."""
    payload = cwt_payload(partner_hcert(), iat=IAT, exp=EXP)
    protected = PS256.protected()
    signature = PS256.sign(protected, payload)
    assert check(hc1_text(sign1_bytes(protected, {}, payload, signature)), TRUST).verdict is (
        Verdict.VALID
    )
    for bit in range(len(signature) * 8):
        text = hc1_text(sign1_bytes(protected, {}, payload, flip(signature, bit)))
        assert check(text, TRUST).verdict is Verdict.SIGNATURE_INVALID, bit


@pytest.mark.parametrize("tags", [(18,), (61, 18), (61,), ()])
def test_allowed_tag_wrappings_verify(tags: tuple[int, ...]) -> None:
    """COSE_Sign1 tag 18, the CWT tag 61 around it, 61 alone, or no tag all verify."""
    assert check(partner_code(ES256, tags=tags), TRUST).verdict is Verdict.VALID


@pytest.mark.parametrize("tags", [(18, 61), (98,), (17,), (61, 61, 18), (1,)])
def test_other_tag_wrappings_are_malformed(tags: tuple[int, ...]) -> None:
    """Any other tag arrangement is MALFORMED."""
    assert check(partner_code(ES256, tags=tags), TRUST).verdict is Verdict.MALFORMED


def test_partner_pem_round_trip_through_the_trust_folder(tmp_path: Path) -> None:
    """A partner's PEM dropped in the trust folder makes its codes verify."""
    (tmp_path / "partner.pem").write_bytes(
        PS256.certificate.public_bytes(serialization.Encoding.PEM)
    )
    loaded = load_trust_dir(tmp_path)
    assert loaded.problems == []
    trust = TrustList(loaded.keys)
    assert check(partner_code(PS256, "t"), trust).verdict is Verdict.VALID
