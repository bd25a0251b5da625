"""The trust list: PEM bundles, the trust folder, EKU, broken certificates, kid collisions."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from regfed.domain.model import CertificateKind
from regfed.hcert.trust import (
    TrustedKey,
    TrustError,
    TrustList,
    load_pem_bundle,
    trusted_key_from_certificate,
    trusted_key_from_der,
)
from regfed.keystore.trustdir import add_to_trust_dir, load_trust_dir
from tests.hc1_reference import (
    EKU_OIDS,
    EKU_OIDS_ALTERNATE,
    Partner,
    new_partner,
    self_signed_certificate,
)


@pytest.fixture(scope="module")
def es256() -> Partner:
    """An EC P-256 partner issuer without EKU."""
    return new_partner("ES256", name="Partner EC")


@pytest.fixture(scope="module")
def ps256() -> Partner:
    """An RSA-2048 partner issuer without EKU."""
    return new_partner("PS256", name="Partner RSA")


@pytest.fixture(scope="module")
def test_only() -> Partner:
    """A partner issuer whose certificate may sign test certificates only."""
    return new_partner("ES256", eku=("test",), name="Partner tests")


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _corrupt_eku_value(der: bytes) -> bytes:
    """The DER with the EKU's SEQUENCE tag turned into SET: same lengths, refused value."""
    value = x509.ExtendedKeyUsage([x509.ObjectIdentifier(EKU_OIDS["test"])]).public_bytes()
    at = der.index(value)
    return der[:at] + b"\x31" + der[at + 1 :]


def _corrupt_extension_structure(der: bytes) -> bytes:
    """The DER with the EKU Extension's own SEQUENCE tag turned into SET: load fails."""
    oid = b"\x06\x03\x55\x1d\x25"  # id-ce-extKeyUsage
    at = der.index(oid) - 2  # the Extension SEQUENCE's tag and one-byte length
    assert der[at] == 0x30
    return der[:at] + b"\x31" + der[at + 1 :]


# --- single certificates ---------------------------------------------------------------


def test_ec_certificate_becomes_an_es256_key(es256: Partner) -> None:
    """An EC P-256 certificate gives an ES256 key with kid, validity, subject, no EKU."""
    key = trusted_key_from_der(es256.der, own=False, source="partner.pem")
    assert key.kid == hashlib.sha256(es256.der).digest()[:8] == es256.kid
    assert key.algorithm == "ES256"
    assert key.der == es256.der
    assert key.not_before == es256.certificate.not_valid_before_utc
    assert key.not_after == es256.certificate.not_valid_after_utc
    assert "CN=Partner EC" in key.subject
    assert key.allowed_kinds is None
    assert key.source == "partner.pem"
    assert not key.own


def test_rsa_certificate_becomes_a_ps256_key(ps256: Partner) -> None:
    """An RSA-2048 certificate gives a PS256 key."""
    key = trusted_key_from_certificate(ps256.certificate, own=True)
    assert key.algorithm == "PS256"
    assert key.own
    assert key.kid == ps256.kid


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (("test",), {CertificateKind.TEST}),
        (("vaccination", "recovery"), {CertificateKind.VACCINATION, CertificateKind.RECOVERY}),
        (("test", "1.3.6.1.5.5.7.3.2"), {CertificateKind.TEST}),
        (("1.3.6.1.5.5.7.3.2",), None),  # clientAuth only: none of HCERT's, so unrestricted
        ((EKU_OIDS_ALTERNATE["test"],), {CertificateKind.TEST}),
        ((EKU_OIDS_ALTERNATE["vaccination"],), {CertificateKind.VACCINATION}),
        ((EKU_OIDS_ALTERNATE["recovery"],), {CertificateKind.RECOVERY}),
        # One OID of each family: the kinds add up, as within one family.
        (
            ("test", EKU_OIDS_ALTERNATE["recovery"]),
            {CertificateKind.TEST, CertificateKind.RECOVERY},
        ),
    ],
)
def test_extended_key_usage_restricts_kinds(
    kinds: tuple[str, ...], expected: set[CertificateKind] | None
) -> None:
    """HCERT EKU OIDs of either family restrict the kinds a key may sign; without any,
    every kind."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    key = trusted_key_from_der(_der(self_signed_certificate(private_key, eku=kinds)), own=False)
    assert key.allowed_kinds == (None if expected is None else frozenset(expected))
    for kind in CertificateKind:
        assert key.may_sign(kind) == (expected is None or kind in expected)


def test_unreadable_extension_still_gives_an_unrestricted_key(test_only: Partner) -> None:
    """A certificate whose EKU a strict parser refuses still works, as an unrestricted key."""
    der = _corrupt_eku_value(test_only.der)
    certificate = x509.load_der_x509_certificate(der)
    with pytest.raises(ValueError, match="parsing"):
        _ = certificate.extensions
    key = trusted_key_from_der(der, own=False)
    assert key.allowed_kinds is None
    assert key.kid == hashlib.sha256(der).digest()[:8]
    assert key.not_after == test_only.certificate.not_valid_after_utc
    assert "CN=Partner tests" in key.subject
    assert _spki(key) == _spki_of_partner(test_only)


def test_unparsable_certificate_still_gives_its_public_key(test_only: Partner) -> None:
    """When X.509 parsing fails outright, the public key is dug out of the DER directly."""
    der = _corrupt_extension_structure(test_only.der)
    with pytest.raises(ValueError, match="parsing"):
        x509.load_der_x509_certificate(der)
    key = trusted_key_from_der(der, own=False)
    assert key.algorithm == "ES256"
    assert key.kid == hashlib.sha256(der).digest()[:8]
    assert (key.not_before, key.not_after, key.subject) == (None, None, "")
    assert key.allowed_kinds is None
    assert _spki(key) == _spki_of_partner(test_only)
    # Usable: it verifies a signature the partner's private key made.
    private_key = test_only.private_key
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    signature = private_key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    key.public_key.verify(signature, b"data", ec.ECDSA(hashes.SHA256()))


def _spki(key: TrustedKey) -> bytes:
    return key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _spki_of_partner(partner: Partner) -> bytes:
    return partner.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("curve", "algorithm"), [(ec.SECP384R1(), "ES384"), (ec.SECP521R1(), "ES512")]
)
def test_p384_and_p521_keys_become_es384_and_es512_keys(
    curve: ec.EllipticCurve, algorithm: str
) -> None:
    """A partner certificate on P-384 / P-521 is kept as an ES384 / ES512 key, not skipped."""
    certificate = self_signed_certificate(ec.generate_private_key(curve))
    (key,) = load_pem_bundle(
        certificate.public_bytes(serialization.Encoding.PEM), own=False, source="p.pem"
    )
    assert key.algorithm == algorithm
    assert key.kid == hashlib.sha256(_der(certificate)).digest()[:8]


def test_other_curves_are_refused() -> None:
    """An EC key on a curve no COSE ECDSA algorithm of HCERT names (secp256k1) is refused."""
    certificate = self_signed_certificate(ec.generate_private_key(ec.SECP256K1()))
    with pytest.raises(TrustError, match=r"secp256k1.*P-256.*P-384.*P-521"):
        trusted_key_from_der(_der(certificate), own=False)


def test_rsa_1024_key_is_refused() -> None:
    """An RSA key under 2048 bits is refused."""
    partner = new_partner("PS256", rsa_bits=1024)
    with pytest.raises(TrustError, match=r"1024 bits.*2048"):
        trusted_key_from_der(partner.der, own=False)


def test_ed25519_key_is_refused() -> None:
    """A key of another type (Ed25519) is refused: only ECDSA and RSA-PSS are accepted."""
    private_key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ed")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2021, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2023, 1, 1, tzinfo=UTC))
        .sign(private_key, None)
    )
    with pytest.raises(TrustError, match=r"only EC \(P-256, P-384, P-521\) and RSA"):
        trusted_key_from_der(_der(certificate), own=False)


@pytest.mark.parametrize("cut", [0, 1, 2, 10, 100, -1])
def test_garbage_and_truncated_der_is_a_trust_error(es256: Partner, cut: int) -> None:
    """Garbage or a truncated certificate is a TrustError, never another exception."""
    with pytest.raises(TrustError):
        trusted_key_from_der(es256.der[:cut], own=False)
    with pytest.raises(TrustError):
        trusted_key_from_der(b"\x30\x82\xff\xff" + b"\x00" * 10, own=False)


def test_repr_is_short(ps256: Partner) -> None:
    """A trusted key's repr names it without dumping the DER or the key."""
    text = repr(trusted_key_from_der(ps256.der, own=False, source="p.pem"))
    assert ps256.kid.hex() in text
    assert "PS256" in text
    assert len(text) < 200


# --- PEM bundles and the trust folder -------------------------------------------------------


def test_pem_bundle_with_several_certificates(es256: Partner, ps256: Partner) -> None:
    """Every certificate of a PEM bundle is loaded, in order, with the file as source."""
    bundle = b"leading text\n" + es256.pem + ps256.pem + b"\n" + es256.pem
    keys = load_pem_bundle(bundle, own=False, source="bundle.pem")
    assert [key.kid for key in keys] == [es256.kid, ps256.kid, es256.kid]
    assert [key.algorithm for key in keys] == ["ES256", "PS256", "ES256"]
    assert {key.source for key in keys} == {"bundle.pem"}


def test_bundle_with_a_bad_certificate_is_refused_whole(es256: Partner) -> None:
    """One unusable certificate in a bundle refuses the file, naming its position."""
    k256 = self_signed_certificate(ec.generate_private_key(ec.SECP256K1()))
    bundle = es256.pem + k256.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(TrustError, match=r"certificate 2: .*P-256"):
        load_pem_bundle(bundle, own=False, source="b.pem")
    with pytest.raises(TrustError, match="no PEM CERTIFICATE"):
        load_pem_bundle(b"nothing here", own=False, source="b.pem")


def test_trust_dir_reports_and_skips_bad_files(
    tmp_path: Path, es256: Partner, ps256: Partner
) -> None:
    """Good files load; each bad file is one problem naming it, without its content."""
    secret = b"PRIVATE-CONTENT-MARKER"
    (tmp_path / "a-good.pem").write_bytes(es256.pem + ps256.pem)
    (tmp_path / "b-der.crt").write_bytes(_corrupt_eku_value(new_partner(eku=("test",)).der))
    (tmp_path / "c-bad-base64.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\n" + secret + b"!!\n-----END CERTIFICATE-----\n"
    )
    (tmp_path / "d-garbage.crt").write_bytes(secret)
    (tmp_path / "e-key.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "f-dir.pem").mkdir()
    (tmp_path / "notes.txt").write_bytes(secret)

    loaded = load_trust_dir(tmp_path)
    assert [key.source for key in loaded.keys] == ["a-good.pem", "a-good.pem", "b-der.crt"]
    assert [problem.split(":")[0] for problem in loaded.problems] == [
        "c-bad-base64.pem",
        "d-garbage.crt",
        "e-key.pem",
        "f-dir.pem",
    ]
    assert not any("MARKER" in problem or "PRIVATE" in problem for problem in loaded.problems)


def test_missing_trust_dir_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    """A missing folder yields no keys and one problem."""
    loaded = load_trust_dir(tmp_path / "absent")
    assert loaded.keys == []
    assert len(loaded.problems) == 1
    assert "does not exist" in loaded.problems[0]


def test_add_to_trust_dir_writes_only_certificates(tmp_path: Path, es256: Partner) -> None:
    """``trust add`` stores just the certificates; re-adding is a no-op, a clash an error."""
    private_pem = es256.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    folder = tmp_path / "trust"
    added = add_to_trust_dir(folder, private_pem + es256.pem, source="partner x.crt")
    assert [key.kid for key in added] == [es256.kid]
    assert [path.name for path in folder.iterdir()] == ["partner_x.pem"]
    stored = (folder / "partner_x.pem").read_bytes()
    assert b"PRIVATE" not in stored
    assert [key.kid for key in load_trust_dir(folder).keys] == [es256.kid]
    assert add_to_trust_dir(folder, es256.pem, source="partner x.crt")[0].kid == es256.kid
    with pytest.raises(TrustError, match="already exists"):
        add_to_trust_dir(folder, new_partner().pem, source="partner x.crt")
    with pytest.raises(TrustError):
        add_to_trust_dir(folder, b"junk", source="junk.pem")
    assert [path.name for path in folder.iterdir()] == ["partner_x.pem"]


# --- the trust list -------------------------------------------------------------------------


def test_colliding_kids_keep_every_key_own_first(es256: Partner, ps256: Partner) -> None:
    """Two keys with one kid are both kept under it, our own key first."""
    partner = trusted_key_from_der(es256.der, own=False)
    ours = replace(trusted_key_from_der(ps256.der, own=True), kid=partner.kid)
    trust = TrustList([partner, ours])
    assert trust.by_kid(partner.kid) == (ours, partner)
    assert trust.keys == (ours, partner)
    assert trust.by_kid(b"\x00" * 8) == ()


def test_duplicate_certificates_collapse_and_own_wins(es256: Partner) -> None:
    """The same certificate from two places counts once, marked own if either copy is."""
    partner_copy = trusted_key_from_der(es256.der, own=False, source="x.pem")
    own_copy = trusted_key_from_der(es256.der, own=True, source="keys")
    trust = TrustList([partner_copy, own_copy, partner_copy])
    assert len(trust) == 1
    (key,) = trust.by_kid(es256.kid)
    assert key.own
