"""verify_hc1's rules: COSE headers, keys and curves, EKU, CWT claims, and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from regfed.domain.model import MOSCOW
from regfed.hcert.trust import TrustedKey, TrustList
from regfed.hcert.verify import Verdict, verify_hc1
from tests.hc1_reference import (
    EKU_OIDS_ALTERNATE,
    Partner,
    cwt_payload,
    hc1_text,
    new_partner,
    partner_hcert,
    sign1_bytes,
)
from tests.unit.verify_support import (
    AT,
    ES256,
    EXP,
    IAT,
    NOW,
    TEST_ONLY,
    TRUST,
    check,
    flip,
    partner_code,
    trusted,
)

# --- the COSE headers -----------------------------------------------------------------------


def test_alg_only_in_the_unprotected_header_is_signature_invalid() -> None:
    """An alg outside the signed header does not count: SIGNATURE_INVALID, not unsigned."""
    protected = cbor2.dumps({4: ES256.kid})
    result = check(partner_code(ES256, protected=protected, unprotected={1: -7}), TRUST)
    assert result.verdict is Verdict.SIGNATURE_INVALID
    assert "unprotected" in result.detail


@pytest.mark.parametrize(
    "header",
    [
        {},  # no alg at all
        {1: -35},  # ES384, but the kid is a P-256 key's
        {1: -8},  # EdDSA
        {1: "ES256"},  # a text alg
        {1: -7.0},  # a float that equals -7
        {1: 2**64 + 1},  # a bignum
        {True: -7},  # CBOR true is not label 1
    ],
)
def test_absent_or_unknown_alg_is_signature_invalid(header: dict[Any, Any]) -> None:
    """An absent or unknown algorithm is never read as 'no signature'."""
    protected = cbor2.dumps({**header, 4: ES256.kid})
    result = check(partner_code(ES256, protected=protected), TRUST)
    assert result.verdict is Verdict.SIGNATURE_INVALID


def test_kid_only_in_the_unprotected_header_verifies() -> None:
    """HCERT allows the kid in the unprotected header when the protected one has none."""
    protected = cbor2.dumps({1: -7})
    code = partner_code(ES256, protected=protected, unprotected={4: ES256.kid})
    assert check(code, TRUST).verdict is Verdict.VALID


def test_protected_kid_wins_over_the_unprotected_one() -> None:
    """A kid in the unprotected header cannot redirect to another key."""
    protected = cbor2.dumps({1: -7, 4: b"\x01" * 8})
    code = partner_code(ES256, protected=protected, unprotected={4: ES256.kid})
    assert check(code, TRUST).verdict is Verdict.UNKNOWN_KEY


def test_missing_or_odd_kid() -> None:
    """No kid is UNKNOWN_KEY; a kid that is not a byte string is MALFORMED."""
    no_kid = partner_code(ES256, protected=cbor2.dumps({1: -7}))
    assert check(no_kid, TRUST).verdict is Verdict.UNKNOWN_KEY
    text_kid = partner_code(ES256, protected=cbor2.dumps({1: -7, 4: "kid"}))
    assert check(text_kid, TRUST).verdict is Verdict.MALFORMED


def test_duplicate_header_label_is_malformed() -> None:
    """A protected header naming alg twice is refused: readers could disagree on it."""
    protected = b"\xa3\x01\x26\x01\x38\x24\x04\x48" + ES256.kid  # {1: -7, 1: -37, 4: kid}
    assert check(partner_code(ES256, protected=protected), TRUST).verdict is Verdict.MALFORMED


# --- keys: curves, lengths, collisions, EKU ---------------------------------------------------


def imposter_key(partner: Partner, kid: bytes) -> TrustedKey:
    """A TRUST entry holding ``partner``'s (non-P-256) key under a forced ``kid``."""
    return TrustedKey(
        kid=kid,
        public_key=partner.private_key.public_key(),
        algorithm="ES256",
        der=partner.der,
        not_before=None,
        not_after=None,
        subject="imposter",
        own=False,
        allowed_kinds=None,
        source="forced",
    )


def test_right_kid_on_the_wrong_curve_never_verifies() -> None:
    """A P-384 key placed under a P-256 key's kid never verifies an ES256 code."""
    p384 = new_partner("ES256", curve=ec.SECP384R1())
    imposter = imposter_key(p384, ES256.kid)
    code = p384.code(cwt_payload(partner_hcert(), iat=IAT, exp=EXP), protected=ES256.protected())
    assert check(code, TrustList([imposter])).verdict is Verdict.SIGNATURE_INVALID
    both = TrustList([imposter, trusted(ES256)])
    assert check(code, both).verdict is Verdict.SIGNATURE_INVALID
    # The genuine key under the same kid still verifies its own codes: every key is tried.
    assert check(partner_code(ES256), both).verdict is Verdict.VALID


def test_colliding_kid_tries_every_key() -> None:
    """Two P-256 keys sharing a kid: a code by either one verifies, with its own key."""
    other = new_partner("ES256", name="Colliding issuer")
    collider = TrustList([trusted(ES256), imposter_key(other, ES256.kid)])
    code = other.code(cwt_payload(partner_hcert(), iat=IAT, exp=EXP), protected=ES256.protected())
    result = check(code, collider)
    assert result.verdict is Verdict.VALID
    assert result.key is not None
    assert result.key.subject == "imposter"


def test_ecdsa_signature_of_the_wrong_length_is_signature_invalid() -> None:
    """ES256 takes exactly 64 bytes r || s; a DER signature or a cut one is refused."""
    payload = cwt_payload(partner_hcert(), iat=IAT, exp=EXP)
    protected = ES256.protected()
    signature = ES256.sign(protected, payload)
    for bad in (signature[:-1], signature + b"\x00", b"", b"\x30" + signature):
        text = hc1_text(sign1_bytes(protected, {}, payload, bad))
        assert check(text, TRUST).verdict is Verdict.SIGNATURE_INVALID


def test_algorithm_must_match_the_key() -> None:
    """A code claiming PS256 under an EC key's kid is SIGNATURE_INVALID."""
    code = partner_code(ES256, protected=ES256.protected(alg=-37))
    result = check(code, TRUST)
    assert result.verdict is Verdict.SIGNATURE_INVALID
    assert "PS256" in result.detail


@pytest.mark.parametrize("algorithm", ["ES384", "ES512"])
def test_p384_and_p521_partners_verify(algorithm: str) -> None:
    """A partner on P-384 / P-521 gets VALID for its ES384 / ES512 codes, not UNKNOWN_KEY."""
    partner = new_partner(algorithm, name=f"Partner {algorithm}")
    trust = TrustList([*TRUST.keys, trusted(partner)])
    result = check(partner_code(partner, "r"), trust)
    assert result.verdict is Verdict.VALID
    assert result.key is not None
    assert result.key.algorithm == algorithm
    assert result.holder_name == "MUELLER LUEDENSCHEIDT JOERG"
    # The signature is really checked: the same code without the partner is UNKNOWN_KEY,
    # and with one bit of the signature changed SIGNATURE_INVALID.
    assert check(partner_code(partner, "r"), TRUST).verdict is Verdict.UNKNOWN_KEY
    payload = cwt_payload(partner_hcert("r"), iat=IAT, exp=EXP)
    protected = partner.protected()
    signature = partner.sign(protected, payload)
    tampered = hc1_text(sign1_bytes(protected, {}, payload, flip(signature, 7)))
    assert check(tampered, trust).verdict is Verdict.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("algorithm", "claimed"),
    [("ES384", -7), ("ES384", -36), ("ES512", -7), ("ES512", -35), ("ES256", -35)],
)
def test_alg_must_match_the_keys_curve(algorithm: str, claimed: int) -> None:
    """An alg naming another curve than the key's is SIGNATURE_INVALID, never a fallback."""
    partner = new_partner(algorithm)
    trust = TrustList([trusted(partner)])
    result = check(partner_code(partner, protected=partner.protected(alg=claimed)), trust)
    assert result.verdict is Verdict.SIGNATURE_INVALID
    assert algorithm in result.detail
    assert result.holder_name is None


def test_es384_needs_sha384() -> None:
    """A P-384 key's signature made with SHA-256 under alg ES384 is SIGNATURE_INVALID."""
    partner = new_partner("ES256", curve=ec.SECP384R1())  # signs with SHA-256
    trust = TrustList([trusted(partner)])
    assert trust.keys[0].algorithm == "ES384"
    code = partner_code(partner, protected=partner.protected(alg=-35))
    assert check(code, trust).verdict is Verdict.SIGNATURE_INVALID


def test_eku_restricts_what_a_key_may_sign() -> None:
    """A test-only certificate signs test codes (VALID) but not vaccinations."""
    assert check(partner_code(TEST_ONLY, "t"), TRUST).verdict is Verdict.VALID
    result = check(partner_code(TEST_ONLY, "v"), TRUST)
    assert result.verdict is Verdict.SIGNATURE_INVALID
    assert "may not sign vaccination" in result.detail
    assert result.holder_name is None


_KIND_NAMES = {"t": "test", "v": "vaccination", "r": "recovery"}


@pytest.mark.parametrize("group", ["t", "v", "r"])
def test_alternate_eku_oids_restrict_each_kind(group: str) -> None:
    """A certificate naming one kind with the alternate OID family signs that kind only."""
    kind = _KIND_NAMES[group]
    partner = new_partner("ES256", eku=(EKU_OIDS_ALTERNATE[kind],), name=f"Partner {kind} only")
    trust = TrustList([trusted(partner)])
    assert check(partner_code(partner, group), trust).verdict is Verdict.VALID
    for other in sorted(set(_KIND_NAMES) - {group}):
        result = check(partner_code(partner, other), trust)
        # Not VALID: the restriction is the same whichever family states it.
        assert result.verdict is Verdict.SIGNATURE_INVALID, other
        assert f"may not sign {_KIND_NAMES[other]}" in result.detail
        assert result.holder_name is None


# --- earlier schema versions (hcert 1.0.x-1.2.x) -----------------------------------------


def _group(kind: str) -> dict[str, Any]:
    """``{kind: [entry]}``: the one group of a partner's schema-shaped hcert of ``kind``."""
    return {kind: partner_hcert(kind)[kind]}


def _older_code(hcert: dict[str, Any]) -> str:
    """A code by the ES256 partner around ``hcert`` as a 1.0.0 map."""
    return ES256.code(cwt_payload({**hcert, "ver": "1.0.0"}, iat=IAT, exp=EXP))


@pytest.mark.parametrize(
    ("group", "kind"), [("v", "vaccination"), ("t", "test"), ("r", "recovery")]
)
@pytest.mark.parametrize("absent", [None, []], ids=["null", "empty"])
def test_older_map_with_null_or_empty_groups_is_valid(group: str, kind: str, absent: Any) -> None:
    """A 1.0.x map carrying the groups that do not apply as null or [] is VALID, not MALFORMED."""
    others = {other: absent for other in "vtr" if other != group}
    result = check(_older_code({**partner_hcert(group), **others}), TRUST)
    assert result.verdict is Verdict.VALID
    assert result.kind is not None
    assert result.kind.value == kind
    assert result.uvci == "URN:UVCI:01:XX:PARTNER#1"


def test_older_map_with_three_vaccination_entries_counts_the_highest_dose() -> None:
    """Three doses listed, out of order: VALID, and the entry with the highest dn counts."""
    (entry,) = partner_hcert("v")["v"]
    doses = [
        {
            **entry,
            "dn": dose,
            "sd": 3,
            "dt": f"2021-0{dose + 2}-01",
            "ci": f"URN:UVCI:01:XX:D{dose}",
        }
        for dose in (1, 3, 2)
    ]
    hcert = {**partner_hcert("v"), "v": doses, "t": None, "r": None}
    result = check(_older_code(hcert), TRUST)
    assert result.verdict is Verdict.VALID
    assert result.uvci == "URN:UVCI:01:XX:D3"  # not D2, the last listed
    assert result.valid_from == datetime(2021, 5, 1, tzinfo=MOSCOW)  # dose 3's dt


def test_older_map_with_several_entries_of_a_test_counts_the_last() -> None:
    """Several test entries: VALID, and the last one listed counts."""
    (entry,) = partner_hcert("t")["t"]
    entries = [{**entry, "ci": "URN:UVCI:01:XX:T1"}, {**entry, "ci": "URN:UVCI:01:XX:T2"}]
    result = check(_older_code({**partner_hcert("t"), "t": entries, "v": []}), TRUST)
    assert result.verdict is Verdict.VALID
    assert result.uvci == "URN:UVCI:01:XX:T2"


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ({**_group("v"), **_group("r"), "t": None}, "found v and r"),  # two non-empty groups
        ({"v": None, "t": [], "r": None}, "found none"),
        ({"v": {"0": {}}, "t": None}, "'v' is not an array"),
        ({"v": [partner_hcert("v")["v"][0], "dose 2"]}, "entry is not a map"),
        (
            {"v": [{**partner_hcert("v")["v"][0], "dn": dn} for dn in (1, True)]},
            "dose number",
        ),
        ({"v": [{**partner_hcert("v")["v"][0], "dn": 1}, {"ci": "URN:UVCI:01:XX:D2"}]}, "dose"),
    ],
)
def test_older_map_that_cannot_be_read_one_way_is_malformed(
    groups: dict[str, Any], words: str
) -> None:
    """Two non-empty groups, none, or entries that cannot be ordered stay MALFORMED, not VALID."""
    hcert = {key: value for key, value in partner_hcert("v").items() if key != "v"}
    result = check(_older_code({**hcert, **groups}), TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert words in result.detail
    assert result.holder_name is None


# --- the claims -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({4: EXP, 6: IAT, -260: {1: partner_hcert()}}, "issuer"),
        ({1: "XX", 4: "soon", 6: IAT, -260: {1: partner_hcert()}}, "expiry"),
        ({1: "XX", 4: EXP, 6: float("nan"), -260: {1: partner_hcert()}}, "issued at"),
        ({1: "XX", 4: 10**30, 6: IAT, -260: {1: partner_hcert()}}, "out of range"),
        ({1: "XX", 4: EXP, 6: IAT}, "-260"),
        (
            {1: "XX", 4: EXP, 6: IAT, -260: {1: {**partner_hcert("v"), **_group("t")}}},
            "exactly one non-empty group of v, t, r (found v and t)",
        ),
        ({1: "XX", 4: EXP, 6: IAT, -260: {1: {"ver": "1.3.0", "dob": "1970"}}}, "exactly one"),
        ([1, 2, 3], "not a map"),
    ],
)
def test_malformed_claims_under_a_good_signature(claims: Any, words: str) -> None:
    """Wrong or missing CWT claims are MALFORMED, saying which, with the key but no holder."""
    result = check(ES256.code(cbor2.dumps(claims)), TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert words in result.detail
    assert result.kid == ES256.kid
    assert result.uvci is None


# --- time -------------------------------------------------------------------------------------


def test_expired_and_not_yet_valid() -> None:
    """Past exp is EXPIRED and before iat NOT_YET_VALID, both with the holder's fields."""
    code = partner_code(ES256)
    expired = check(code, TRUST, at=NOW + timedelta(days=60))
    assert expired.verdict is Verdict.EXPIRED
    assert expired.holder_name == "MUELLER LUEDENSCHEIDT JOERG"
    assert expired.expires_at == datetime.fromtimestamp(EXP, UTC)
    early = check(code, TRUST, at=NOW - timedelta(days=1))
    assert early.verdict is Verdict.NOT_YET_VALID
    assert early.uvci is not None


@pytest.mark.parametrize("skew", [timedelta(0), timedelta(minutes=5), timedelta(hours=1)])
def test_exact_boundaries_with_skew(skew: timedelta) -> None:
    """Valid on [iat - skew, exp + skew): both edges exact to the microsecond."""
    code = partner_code(ES256)
    iat, exp = datetime.fromtimestamp(IAT, UTC), datetime.fromtimestamp(EXP, UTC)
    tick = timedelta(microseconds=1)
    expectations = {
        iat - skew - tick: Verdict.NOT_YET_VALID,
        iat - skew: Verdict.VALID,
        exp + skew - tick: Verdict.VALID,
        exp + skew: Verdict.EXPIRED,
    }
    for at, verdict in expectations.items():
        assert check(code, TRUST, at=at, clock_skew=skew).verdict is verdict, at


def test_default_skew_is_five_minutes() -> None:
    """Without a clock_skew argument, five minutes either way are forgiven."""
    code = partner_code(ES256)
    exp = datetime.fromtimestamp(EXP, UTC)
    assert check(code, TRUST, at=exp + timedelta(minutes=4)).verdict is Verdict.VALID
    assert check(code, TRUST, at=exp + timedelta(minutes=5)).verdict is Verdict.EXPIRED


def test_float_times_and_other_zones() -> None:
    """Float iat/exp are read, and ``at`` may be in any zone."""
    code = partner_code(ES256, iat=IAT + 0.5, exp=EXP + 0.5)
    result = check(code, TRUST, at=AT.astimezone(MOSCOW))
    assert result.verdict is Verdict.VALID
    assert result.issued_at == datetime.fromtimestamp(IAT + 0.5, UTC)


# --- valid_from: the validity the certificate states -----------------------------------


@pytest.mark.parametrize(
    ("group", "valid_from"),
    [
        ("v", datetime(2021, 5, 1, tzinfo=MOSCOW)),  # dt 2021-05-01
        ("r", datetime(2021, 3, 20, tzinfo=MOSCOW)),  # df 2021-03-20
        ("t", datetime(2021, 7, 1, 6, tzinfo=UTC)),  # sc 2021-07-01T06:00:00Z
    ],
)
def test_valid_from_is_what_the_certificate_states(group: str, valid_from: datetime) -> None:
    """valid_from is dt / df / sc (a date from 00:00 Moscow), never the code's issued-at."""
    result = check(partner_code(ES256, group), TRUST)
    assert result.verdict is Verdict.VALID
    assert result.valid_from == valid_from
    assert result.issued_at == NOW
    assert result.valid_from != result.issued_at


@pytest.mark.parametrize(
    ("group", "key", "value", "valid_from"),
    [
        ("t", "sc", "2021-07-01T08:00:00+02:00", datetime(2021, 7, 1, 6, tzinfo=UTC)),
        ("t", "sc", "2021-07-01T08:00:00+0200", datetime(2021, 7, 1, 6, tzinfo=UTC)),
        ("t", "sc", "2021-07-01T06:00:00.5z", datetime(2021, 7, 1, 6, 0, 0, 500000, tzinfo=UTC)),
        ("t", "sc", "2021-07-01T06:00", datetime(2021, 7, 1, 6, tzinfo=UTC)),  # no offset: UTC
        ("v", "dt", "2021-05-01T23:30:00-05:00", datetime(2021, 5, 1, tzinfo=MOSCOW)),
    ],
)
def test_valid_from_read_from_the_forms_issuers_wrote(
    group: str, key: str, value: str, valid_from: datetime
) -> None:
    """Offsets with or without a colon, fractions, no offset, a date-time for a date."""
    (entry,) = partner_hcert(group)[group]
    hcert = {**partner_hcert(group), group: [{**entry, key: value}]}
    result = check(ES256.code(cwt_payload(hcert, iat=IAT, exp=EXP)), TRUST)
    assert result.verdict is Verdict.VALID
    assert result.valid_from == valid_from


@pytest.mark.parametrize(
    ("group", "key", "value"),
    [
        ("v", "dt", None),
        ("v", "dt", 20210501),
        ("v", "dt", "01.05.2021"),
        ("v", "dt", "2021-13-01"),
        ("r", "df", "2021-03-20 "),
        ("r", "df", "２０２１-03-20"),
        ("t", "sc", "2021-07-01T25:00:00Z"),
        ("t", "sc", "2021-07-01T06:00:00+24:00"),
        ("t", "sc", "2021-07-01T06:00:00Zjunk"),
    ],
)
def test_unreadable_validity_is_malformed(group: str, key: str, value: Any) -> None:
    """A missing or unreadable dt / df / sc is MALFORMED (the schema requires it), not VALID."""
    (entry,) = partner_hcert(group)[group]
    fields = {name: field for name, field in entry.items() if name != key}
    if value is not None:
        fields[key] = value
    hcert = {**partner_hcert(group), group: [fields]}
    result = check(ES256.code(cwt_payload(hcert, iat=IAT, exp=EXP)), TRUST)
    assert result.verdict is Verdict.MALFORMED
    assert repr(key) in result.detail
    assert result.valid_from is None


# --- the signing certificate's own validity --------------------------------------------------


def test_code_issued_after_its_certificate_expired_is_signature_invalid() -> None:
    """A code whose iat is past its certificate's not_after is SIGNATURE_INVALID, not VALID."""
    retired = new_partner("ES256", not_before=NOW - timedelta(days=400), days=365)
    not_after = retired.certificate.not_valid_after_utc
    trust = TrustList([trusted(retired)])
    result = check(partner_code(retired), trust)
    assert result.verdict is Verdict.SIGNATURE_INVALID
    assert "after its signing certificate" in result.detail
    assert not_after.isoformat() in result.detail
    assert result.holder_name is None
    assert result.uvci is None
    # The boundary: not_after itself is inside the validity (RFC 5280: inclusive).
    last = int(not_after.timestamp())
    assert check(
        partner_code(retired, iat=last, exp=last + 86400), trust, at=not_after
    ).verdict is (Verdict.VALID)
    late = partner_code(retired, iat=last + 1, exp=last + 86400)
    assert check(late, trust, at=not_after).verdict is Verdict.SIGNATURE_INVALID


def test_certificate_expired_since_still_verifies_what_it_signed() -> None:
    """A certificate that expired after the code was issued still gives VALID, then EXPIRED."""
    lapsed = new_partner("ES256", not_before=NOW - timedelta(days=100), days=110)
    assert lapsed.certificate.not_valid_after_utc < AT + timedelta(days=20)
    trust = TrustList([trusted(lapsed)])
    code = partner_code(lapsed)
    assert check(code, trust, at=AT + timedelta(days=20)).verdict is Verdict.VALID
    assert check(code, trust, at=AT + timedelta(days=60)).verdict is Verdict.EXPIRED


def test_code_issued_before_its_certificates_not_before_stays_valid() -> None:
    """A code whose iat precedes its certificate's not_before is VALID, not SIGNATURE_INVALID."""
    early = new_partner("ES256", not_before=NOW + timedelta(days=10))
    result = check(partner_code(early), TrustList([trusted(early)]))
    assert result.verdict is Verdict.VALID
    assert result.detail == ""


def test_naive_instant_is_a_caller_error() -> None:
    """A naive ``at`` is a bug in the caller: ValueError, not a verdict."""
    with pytest.raises(ValueError, match="aware"):
        verify_hc1(partner_code(ES256), TRUST, datetime(2021, 7, 1))
