"""Signing keys on disk: generation, loading, permissions, selection, kid, repr."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from regfed.errors import KeyFileError
from regfed.hcert.keys import SigningKey, kid_of, select_signer
from regfed.keystore.signing import generate_signing_key, load_certificates, load_signing_keys

T0 = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 0, so only the mode passed at creation can keep a file private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_generate_then_load_round_trip(tmp_path: Path) -> None:
    """A generated pair loads back as the same key, certificate and kid."""
    made = generate_signing_key(tmp_path, "dev", now=T0)
    (loaded,) = load_signing_keys(tmp_path)
    assert loaded == made
    assert loaded.name == "dev"
    assert loaded.certificate == made.certificate
    assert loaded.private_key.private_numbers() == made.private_key.private_numbers()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.crt.pem", "dev.key.pem"]


def test_generated_key_is_pkcs8_p256(tmp_path: Path) -> None:
    """The key file is an unencrypted PKCS#8 PEM holding an EC P-256 key."""
    generate_signing_key(tmp_path, "dev", now=T0)
    pem = (tmp_path / "dev.key.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN " + b"PRIVATE KEY-----")  # PKCS#8, not "EC PRIVATE KEY"
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)


def test_generated_certificate_is_self_signed_without_eku(tmp_path: Path) -> None:
    """The certificate is self-signed, valid for the asked days, not a CA, and has no EKU."""
    key = generate_signing_key(
        tmp_path, "dev", subject_cn="Test signer", country="RU", valid_days=30, now=T0
    )
    cert = key.certificate
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
    )  # raises if the self-signature is wrong
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=Test signer,C=RU"
    assert cert.not_valid_before_utc == T0
    assert cert.not_valid_after_utc == T0 + timedelta(days=30)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_key_file_is_created_owner_only(tmp_path: Path) -> None:
    """The key file is 0600 even with umask 0: the mode is set at creation, not after."""
    generate_signing_key(tmp_path, "dev", now=T0)
    assert stat.S_IMODE((tmp_path / "dev.key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "dev.crt.pem").stat().st_mode) == 0o644


def test_generate_never_overwrites(tmp_path: Path) -> None:
    """Generating under an existing name fails and leaves the existing key untouched."""
    generate_signing_key(tmp_path, "dev", now=T0)
    before = (tmp_path / "dev.key.pem").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        generate_signing_key(tmp_path, "dev", now=T0)
    assert (tmp_path / "dev.key.pem").read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A key file group or world may access is refused, naming the file, not its content."""
    generate_signing_key(tmp_path, "dev", now=T0)
    key_path = tmp_path / "dev.key.pem"
    key_path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_signing_keys(tmp_path)
    message = str(caught.value)
    assert str(key_path) in message
    assert "chmod 600" in message
    assert "PRIVATE KEY" not in message
    body = key_path.read_text().splitlines()[1]
    assert body not in message


def test_key_without_certificate_is_refused(tmp_path: Path) -> None:
    """A key with no certificate beside it is an error, not silently skipped."""
    generate_signing_key(tmp_path, "dev", now=T0)
    (tmp_path / "dev.crt.pem").unlink()
    with pytest.raises(KeyFileError, match=r"dev\.crt\.pem"):
        load_signing_keys(tmp_path)


def test_certificate_of_another_key_is_refused(tmp_path: Path) -> None:
    """A certificate that does not hold the key's public key is refused."""
    generate_signing_key(tmp_path, "one", now=T0)
    generate_signing_key(tmp_path, "two", now=T0)
    (tmp_path / "one.crt.pem").write_bytes((tmp_path / "two.crt.pem").read_bytes())
    with pytest.raises(KeyFileError, match="does not certify"):
        load_signing_keys(tmp_path)


def test_garbage_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """An unparsable key file raises KeyFileError whose message holds none of the file."""
    generate_signing_key(tmp_path, "dev", now=T0)
    key_path = tmp_path / "dev.key.pem"
    # Armour around garbage, assembled so no key-shaped block sits in the repository.
    label = "PRIVATE" + " KEY"
    key_path.write_text(f"-----BEGIN {label}-----\nU0VDUkVUU0VDUkVU\n-----END {label}-----\n")
    with pytest.raises(KeyFileError) as caught:
        load_signing_keys(tmp_path)
    assert "U0VDUkVU" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_lone_certificate_is_trusted_but_does_not_sign(tmp_path: Path) -> None:
    """A .crt.pem without a key is listed as a certificate, not as a signing key."""
    own = generate_signing_key(tmp_path / "own", "own", now=T0)
    partner = generate_signing_key(tmp_path / "partner", "partner", now=T0)
    (tmp_path / "own" / "partner.crt.pem").write_bytes(
        (tmp_path / "partner" / "partner.crt.pem").read_bytes()
    )
    assert [key.name for key in load_signing_keys(tmp_path / "own")] == ["own"]
    assert load_certificates(tmp_path / "own") == [own.certificate, partner.certificate]


def test_kid_is_first_8_bytes_of_sha256_over_der(tmp_path: Path) -> None:
    """kid = SHA-256(certificate DER)[:8], as HCERT defines it."""
    key = generate_signing_key(tmp_path, "dev", now=T0)
    der = key.certificate.public_bytes(serialization.Encoding.DER)
    assert key.kid == hashlib.sha256(der).digest()[:8]
    assert kid_of(key.certificate) == key.kid
    assert len(key.kid) == 8


def test_repr_shows_no_key_material(tmp_path: Path) -> None:
    """Neither repr nor str of a SigningKey reveal the private key."""
    key = generate_signing_key(tmp_path, "dev", now=T0)
    secret = key.private_key.private_numbers().private_value
    for text in (repr(key), str(key), repr([key])):
        assert "private" not in text.lower()
        assert str(secret) not in text
        assert format(secret, "x") not in text
        assert key.kid.hex() in text


def _keys(tmp_path: Path) -> dict[str, SigningKey]:
    """Three keys: one expired by T0, one current since a year before, one since T0."""
    return {
        "old": generate_signing_key(tmp_path, "old", valid_days=365, now=T0 - timedelta(days=400)),
        "current": generate_signing_key(
            tmp_path, "current", valid_days=730, now=T0 - timedelta(days=300)
        ),
        "new": generate_signing_key(tmp_path, "new", valid_days=730, now=T0),
    }


def test_newest_valid_key_is_selected(tmp_path: Path) -> None:
    """Of several valid keys, the one with the latest not_before signs."""
    keys = _keys(tmp_path)
    assert select_signer(keys.values(), T0).name == "new"
    assert select_signer(load_signing_keys(tmp_path), T0 + timedelta(days=1)).name == "new"


def test_not_yet_valid_and_expired_keys_are_skipped(tmp_path: Path) -> None:
    """A key before its not_before or at/after its not_after is never selected."""
    keys = _keys(tmp_path)
    just_before = T0 - timedelta(seconds=1)
    assert select_signer(keys.values(), just_before).name == "current"
    expired_at = keys["old"].not_after
    assert select_signer([keys["old"], keys["current"]], expired_at).name == "current"
    with pytest.raises(KeyFileError, match="no signing key is valid"):
        select_signer([keys["old"]], expired_at)


def test_no_keys_means_no_signer() -> None:
    """An empty key set raises KeyFileError rather than signing with nothing."""
    with pytest.raises(KeyFileError):
        select_signer([], T0)
