"""HCERT signing end to end, checked by the independent decoder in tests/hc1_reference.py."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature

# No stubs ship for jsonschema and adding types-jsonschema for one test is not worth it.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from regfed.domain.model import (
    MOSCOW,
    CertificateKind,
    Confirmation,
    Event,
    IllnessEpisode,
    LabMethod,
    LabResult,
    Registry,
    Vaccination,
    moscow_midnight,
)
from regfed.domain.policy import BasisKind, Grant
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.hcert.keys import SigningKey
from regfed.hcert.payload import Hcert, build_hcert, cwt_claims, new_uvci, uvci_checksum_ok
from regfed.hcert.signer import HcertSigner, SignedCode
from regfed.keystore.signing import generate_signing_key
from tests.hc1_reference import B45_ALPHABET, dcc_validator, decode_and_verify

ISSUER = "Moscow Department of Health"
KEY_DAY = datetime(2021, 1, 1, tzinfo=UTC)
NOW = datetime(2021, 7, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def dcc_schema() -> Draft202012Validator:
    """The EU DCC JSON schema 1.3.3 (a copy in tests/data), checking formats."""
    return dcc_validator()


# --- grants of every kind -------------------------------------------------------------------


def _grant(basis_kind: BasisKind, start: datetime, length: timedelta, *basis: Event) -> Grant:
    kind = {
        BasisKind.VACCINATION: CertificateKind.VACCINATION,
        BasisKind.PCR_TEST: CertificateKind.TEST,
    }.get(basis_kind, CertificateKind.RECOVERY)
    product = DEFAULT_VACCINES["Gam-COVID-Vac"] if kind is CertificateKind.VACCINATION else None
    return Grant(kind, basis_kind, start, start + length, basis, product)


def _vaccination() -> Grant:
    """Sputnik V, doses on 1 and 22 April 2021 (the second from the federal registry)."""
    return _grant(
        BasisKind.VACCINATION,
        moscow_midnight(date(2021, 4, 22)),
        timedelta(days=365),
        Vaccination("Gam-COVID-Vac", 1, date(2021, 4, 1), Registry.CITY),
        Vaccination("Gam-COVID-Vac", 2, date(2021, 4, 22), Registry.FEDERAL),
    )


def _recovery() -> Grant:
    """Ill from 1 March 2021 (PCR), recovered on 20 March."""
    episode = IllnessEpisode(date(2021, 3, 1), Confirmation.PCR, date(2021, 3, 20), Registry.CITY)
    return _grant(
        BasisKind.RECOVERY, moscow_midnight(date(2021, 3, 20)), timedelta(days=180), episode
    )


def _antibodies() -> Grant:
    """IgG found in a sample of 22:30 UTC on 9 May, which is 10 May in Moscow."""
    sampled = datetime(2021, 5, 9, 22, 30, tzinfo=UTC)
    result = LabResult(LabMethod.ELISA_IGG, True, sampled, "LAB-77-001", Registry.FEDERAL)
    return _grant(
        BasisKind.ANTIBODIES, moscow_midnight(date(2021, 5, 10)), timedelta(days=180), result
    )


def _test() -> Grant:
    """A negative PCR sampled at 08:15:30.123456 Moscow time on 1 July 2021."""
    sampled = datetime(2021, 7, 1, 8, 15, 30, 123456, tzinfo=MOSCOW)
    result = LabResult(LabMethod.PCR, False, sampled, "CDL-Moscow-12", Registry.CITY)
    return _grant(BasisKind.PCR_TEST, sampled, timedelta(hours=72), result)


GRANTS = {
    "vaccination": _vaccination,
    "recovery": _recovery,
    "antibodies": _antibodies,
    "test": _test,
}


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """A signing key generated for this run (no key ever lives in the repository)."""
    return generate_signing_key(tmp_path_factory.mktemp("keys"), "test", now=KEY_DAY)


@pytest.fixture(scope="module")
def signer(key: SigningKey) -> HcertSigner:
    """A signer holding the one test key."""
    return HcertSigner([key], ISSUER)


def _hcert(grant: Grant, uvci: str = "U") -> Hcert:
    """The hcert map of ``grant`` for Anna Shchukina-Elkina, born 14 March 1985."""
    return build_hcert(
        grant,
        last_name="Щукина-Ёлкина",
        first_name="Анна",
        birth_date=date(1985, 3, 14),
        uvci=uvci,
        issuer_name=ISSUER,
    )


def _sign(signer: HcertSigner, grant: Grant, uvci: str) -> SignedCode:
    return signer.sign(_hcert(grant, uvci), NOW, grant.valid_until)


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRANTS))
def test_signed_code_decodes_and_verifies(name: str, key: SigningKey, signer: HcertSigner) -> None:
    """Each kind signs into a COSE_Sign1 that an independent decoder verifies with the cert."""
    grant = GRANTS[name]()
    uvci = new_uvci()
    code = _sign(signer, grant, uvci)
    assert code.kid == key.kid
    assert set(code.text[4:]) <= set(B45_ALPHABET)

    decoded = decode_and_verify(code.text, key.certificate)
    assert decoded.protected == {1: -7, 4: key.kid}
    assert decoded.unprotected == {}
    assert decoded.claims == {
        1: "RU",
        6: int(NOW.timestamp()),
        4: int(grant.valid_until.timestamp()),
        -260: {1: decoded.hcert},
    }
    # The payload is canonical CBOR: re-encoding canonically changes no byte.
    assert cbor2.dumps(cbor2.loads(decoded.payload), canonical=True) == decoded.payload
    hcert = decoded.hcert
    assert hcert["ver"] == "1.3.0"
    assert hcert["dob"] == "1985-03-14"
    assert hcert["nam"] == {
        "fn": "Щукина-Ёлкина",
        "gn": "Анна",
        "fnt": "SHCHUKINA<ELKINA",
        "gnt": "ANNA",
    }
    (group,) = set(hcert) - {"ver", "nam", "dob"}
    (entry,) = hcert[group]
    assert entry["tg"] == "840539006"
    assert entry["co"] == "RU"
    assert entry["is"] == ISSUER
    assert entry["ci"] == uvci


@pytest.mark.parametrize("name", sorted(GRANTS))
def test_hcert_validates_against_the_dcc_schema(
    name: str, key: SigningKey, signer: HcertSigner, dcc_schema: Draft202012Validator
) -> None:
    """The decoded hcert map of each kind is valid under the EU DCC JSON schema."""
    code = _sign(signer, GRANTS[name](), new_uvci())
    hcert = decode_and_verify(code.text, key.certificate).hcert
    errors = [error.message for error in dcc_schema.iter_errors(hcert)]
    assert errors == []


def test_schema_check_is_not_toothless(dcc_schema: Draft202012Validator) -> None:
    """The validator rejects a bad pattern, a bad date and a date-time without a zone."""
    test, vaccination = _hcert(_test()), _hcert(_vaccination())
    assert dcc_schema.is_valid(test)
    test["t"][0]["sc"] = "2021-07-01T08:15:30"
    vaccination["v"][0]["dt"] = "2021-02-30"
    misspelt = _hcert(_recovery())
    misspelt["nam"]["fnt"] = "Anna"
    for broken in (test, vaccination, misspelt):
        assert not dcc_schema.is_valid(broken)


def test_vaccination_entry() -> None:
    """A complete Sputnik V series: product codes, dn/sd, and the last dose's day."""
    (entry,) = _hcert(_vaccination())["v"]
    assert entry == {
        "tg": "840539006",
        "vp": "J07BX03",
        "mp": "Sputnik-V",
        "ma": "Gamaleya-Research-Institute",
        "dn": 2,
        "sd": 2,
        "dt": "2021-04-22",
        "co": "RU",
        "is": ISSUER,
        "ci": "U",
    }


def test_recovery_entry() -> None:
    """A recovery: fr is the diagnosis day, df/du the first and last valid Moscow days."""
    (entry,) = _hcert(_recovery())["r"]
    assert entry == {
        "tg": "840539006",
        "fr": "2021-03-01",
        "df": "2021-03-20",
        # valid_until is 00:00 on 16 September (exclusive): the last valid day is the 15th.
        "du": "2021-09-15",
        "co": "RU",
        "is": ISSUER,
        "ci": "U",
    }


def test_antibodies_entry_uses_moscow_dates() -> None:
    """Antibodies give a recovery entry whose fr is the sample's Moscow date."""
    (entry,) = _hcert(_antibodies())["r"]
    assert entry["fr"] == "2021-05-10"
    assert entry["df"] == "2021-05-10"
    assert entry["du"] == "2021-11-05"


def test_test_entry() -> None:
    """A negative PCR: NAAT type, 'not detected', sample instant in UTC with Z, laboratory."""
    (entry,) = _hcert(_test())["t"]
    assert entry == {
        "tg": "840539006",
        "tt": "LP6464-4",
        "sc": "2021-07-01T05:15:30Z",
        "tr": "260415000",
        "tc": "CDL-Moscow-12",
        "co": "RU",
        "is": ISSUER,
        "ci": "U",
    }


def test_grant_whose_basis_does_not_fit_is_refused() -> None:
    """A test grant resting on a positive PCR is a bug upstream: nothing is built."""
    positive = LabResult(LabMethod.PCR, True, NOW, "", Registry.CITY)
    with pytest.raises(ValueError, match="negative PCR"):
        _hcert(_grant(BasisKind.PCR_TEST, NOW, timedelta(hours=72), positive))


def test_signing_is_deterministic(key: SigningKey, signer: HcertSigner) -> None:
    """The same content and key give a byte-identical HC1 text (idempotent re-issue)."""
    uvci = new_uvci()
    first = _sign(signer, _vaccination(), uvci)
    second = _sign(HcertSigner([key], ISSUER), _vaccination(), uvci)
    assert first == second


def test_different_uvci_gives_a_different_code(signer: HcertSigner) -> None:
    """Two certificates with the same basis but different UVCIs differ."""
    assert (
        _sign(signer, _vaccination(), new_uvci()).text
        != _sign(signer, _vaccination(), new_uvci()).text
    )


def test_reissue_uses_the_named_older_key(tmp_path: Path, key: SigningKey) -> None:
    """With a newer key present, a kid names the old key; without one the newest signs."""
    newer = generate_signing_key(tmp_path, "newer", now=KEY_DAY + timedelta(days=30))
    signer = HcertSigner([key, newer], ISSUER)
    hcert = _hcert(_vaccination(), new_uvci())
    until = _vaccination().valid_until
    assert signer.sign(hcert, NOW, until).kid == newer.kid
    old = signer.sign(hcert, NOW, until, kid=key.kid)
    assert old.kid == key.kid
    decode_and_verify(old.text, key.certificate)
    assert signer.sign(hcert, NOW, until, kid=b"\x00" * 8).kid == newer.kid  # unknown kid


def test_current_key_follows_the_clock(tmp_path: Path, key: SigningKey) -> None:
    """The current key is chosen when asked, so a newer key takes over without a restart."""
    newer = generate_signing_key(tmp_path, "newer", now=NOW + timedelta(days=1))
    times = iter([NOW, NOW + timedelta(days=2)])
    signer = HcertSigner([key, newer], ISSUER, clock=lambda: next(times))
    assert signer.current_kid == key.kid
    assert signer.current_kid == newer.kid


def test_signature_fails_under_another_key(tmp_path: Path, signer: HcertSigner) -> None:
    """The independent verifier is not a rubber stamp: another certificate fails it."""
    other = generate_signing_key(tmp_path, "other", now=KEY_DAY)
    code = _sign(signer, _recovery(), new_uvci())
    with pytest.raises(InvalidSignature):
        decode_and_verify(code.text, other.certificate)


def test_cwt_needs_aware_instants_and_exp_after_iat() -> None:
    """Naive datetimes and an expiry not after issuance are refused."""
    with pytest.raises(ValueError, match="aware"):
        cwt_claims({}, issued_at=datetime(2021, 7, 1), expires_at=NOW)
    with pytest.raises(ValueError, match="expire after"):
        cwt_claims({}, issued_at=NOW, expires_at=NOW)


def test_uvci_format() -> None:
    """A UVCI is URN:UVCI:01:RU: + 26 opaque characters + '#' + a Luhn mod N character."""
    uvcis = {new_uvci() for _ in range(200)}
    assert len(uvcis) == 200
    for uvci in uvcis:
        assert re.fullmatch(r"URN:UVCI:01:RU:[A-Z0-9]{26}#[A-Z0-9/:]", uvci)
        assert len(uvci) <= 80
        assert uvci_checksum_ok(uvci)
    uvci = uvcis.pop()
    typo = "B" if uvci[20] == "A" else "A"
    assert not uvci_checksum_ok(uvci[:20] + typo + uvci[21:])  # any one-character typo
