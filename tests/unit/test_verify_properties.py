"""Property tests: whatever is scanned, verify_hc1 returns a verdict and never raises."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regfed.hcert.trust import TrustList, trusted_key_from_certificate
from regfed.hcert.verify import INTERNAL_ERROR, Verdict, Verification, verify_hc1
from tests.hc1_reference import B45_ALPHABET, b45encode, cwt_payload, new_partner, partner_hcert

AT = datetime(2021, 7, 1, 12, tzinfo=UTC)
PARTNER = new_partner("ES256", name="Property partner")
TRUST = TrustList([trusted_key_from_certificate(PARTNER.certificate, own=False)])
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verdict(text: str) -> Verification:
    """Verify ``text``; the result must come from the decoder, not the last-resort guard."""
    result = verify_hc1(text, TRUST, AT)
    assert isinstance(result, Verification)
    assert result.detail != INTERNAL_ERROR
    return result


def _hc1(data: bytes) -> str:
    return "HC1:" + b45encode(zlib.compress(data))


# CBOR values of every major type, nested, plus the tags an HCERT may carry.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=40)
    | st.sampled_from([-7, -37, 1, 4, 6, -260, PARTNER.kid])
)
_keys = st.integers(min_value=-300, max_value=300) | st.text(max_size=5) | st.binary(max_size=8)
cbor_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(_keys, inner, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 18, 61, 258, 1000]), inner)
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    """Any text at all gets a verdict."""
    _verdict(text)


@SETTINGS
@given(st.text(alphabet=B45_ALPHABET))
def test_arbitrary_base45_alphabet_text(body: str) -> None:
    """Any text of base45 characters behind the prefix gets a verdict, never VALID."""
    assert _verdict("HC1:" + body).verdict is Verdict.MALFORMED


@SETTINGS
@given(st.binary())
def test_arbitrary_bytes_behind_the_prefix(data: bytes) -> None:
    """Arbitrary bytes, base45-encoded behind HC1:, get a verdict, never VALID."""
    assert _verdict("HC1:" + b45encode(data)).verdict is not Verdict.VALID


@SETTINGS
@given(st.binary())
def test_arbitrary_compressed_bytes(data: bytes) -> None:
    """Arbitrary bytes, zlib-compressed and base45-encoded, get a verdict, never VALID."""
    assert _verdict(_hc1(data)).verdict is not Verdict.VALID


@SETTINGS
@given(cbor_values)
def test_arbitrary_cbor(value: Any) -> None:
    """Arbitrary CBOR structures, compressed behind HC1:, get a verdict, never VALID."""
    assert _verdict(_hc1(cbor2.dumps(value))).verdict is not Verdict.VALID


@SETTINGS
@given(
    protected=st.dictionaries(_keys, cbor_values, max_size=4),
    unprotected=st.dictionaries(_keys, cbor_values, max_size=4),
    payload=st.binary(max_size=60),
    signature=st.binary(max_size=80),
    tag=st.sampled_from([(), (18,), (61,), (61, 18)]),
)
def test_arbitrary_cose_shapes(
    protected: dict[Any, Any],
    unprotected: dict[Any, Any],
    payload: bytes,
    signature: bytes,
    tag: tuple[int, ...],
) -> None:
    """A COSE_Sign1 with arbitrary headers, payload and signature is never VALID."""
    item: Any = [cbor2.dumps(protected), unprotected, payload, signature]
    for number in reversed(tag):
        item = cbor2.CBORTag(number, item)
    assert _verdict(_hc1(cbor2.dumps(item))).verdict is not Verdict.VALID


@SETTINGS
@given(
    claims=st.dictionaries(
        st.sampled_from([1, 4, 6, -260, 7]) | _keys,
        cbor_values | st.builds(lambda kind: {1: partner_hcert(kind)}, st.sampled_from("vtr")),
        max_size=6,
    )
)
def test_arbitrary_claims_under_a_good_signature(claims: dict[Any, Any]) -> None:
    """Arbitrary CWT claims, genuinely signed by a trusted key, get a verdict."""
    result = _verdict(PARTNER.code(cbor2.dumps(claims)))
    assert result.verdict in {
        Verdict.VALID,
        Verdict.EXPIRED,
        Verdict.NOT_YET_VALID,
        Verdict.MALFORMED,
        Verdict.SIGNATURE_INVALID,
    }
    if result.verdict is Verdict.SIGNATURE_INVALID:
        # The signature held: only an iat past the certificate's not_after refuses it.
        assert "after its signing certificate" in result.detail
    if result.verdict in {Verdict.MALFORMED, Verdict.SIGNATURE_INVALID}:
        assert result.holder_name is None


def test_a_real_partner_code_is_valid() -> None:
    """The properties' trust list is not empty-handed: a real partner code verifies."""
    code = PARTNER.code(cwt_payload(partner_hcert(), iat=int(AT.timestamp()), exp=2**31))
    assert _verdict(code).verdict is Verdict.VALID
