"""Signing keys as operators provision them in ``REGFED_KEYS_DIR``.

For each key a pair of files: ``NAME.key.pem`` (PKCS#8 EC P-256 private key, readable by
the service user only) and ``NAME.crt.pem`` (its X.509 certificate). A ``.crt.pem`` with
no key beside it is a certificate to trust, not to sign with. The newest valid key signs;
older ones stay so that codes they signed still verify.

Files are created with mode 0600 from the first instant, and no error message quotes a
file's content.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from regfed.errors import KeyFileError
from regfed.hcert.keys import SigningKey, kid_of

KEY_SUFFIX = ".key.pem"
CERT_SUFFIX = ".crt.pem"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start; never overwrite an existing file.

    Passing the mode to open(2) means the file never exists with wider permissions, not
    even between a write and a chmod; the umask can only narrow it further.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_signing_key(
    folder: Path,
    name: str,
    *,
    subject_cn: str = "regfed development signer",
    country: str = "RU",
    valid_days: int = 730,
    now: datetime | None = None,
) -> SigningKey:
    """Write a new EC P-256 key and a self-signed certificate as ``NAME.key.pem``/``.crt.pem``.

    The certificate carries no extended key usage: HCERT reads a certificate without the
    HCERT EKU OIDs as allowed to sign every kind of certificate.
    Raises ``KeyFileError`` if either file already exists.
    """
    if not name or "/" in name or name.startswith("."):
        raise KeyFileError(f"invalid key name {name!r}")
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, cert_path = folder / f"{name}{KEY_SUFFIX}", folder / f"{name}{CERT_SUFFIX}"
    for path in (key_path, cert_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; choose another key name")

    private_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
        ]
    )
    public_key = private_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(issued + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(key_path, key_pem, 0o600)
    try:
        _write_new(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    except OSError:
        key_path.unlink()  # a key without its certificate would stop the next start-up
        raise
    return SigningKey(name, private_key, certificate, kid_of(certificate))


def _check_private(path: Path) -> None:
    """Refuse a key file that anyone but its owner may read or change."""
    if os.name != "posix":  # Windows has no mode bits to check; ACLs are the operator's job
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(
            f"{path} has mode {mode:04o}: a private key must be accessible by its owner "
            f"only (chmod 600 {path})"
        )


def _load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file (the leaf, by PEM bundle convention)."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        raise KeyFileError(f"{path}: not a readable PEM X.509 certificate") from None
    return certificates[0]


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    _check_private(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        # `from None`: the parser's own error text is of no use here and stays out of logs.
        raise KeyFileError(f"{path}: not a readable unencrypted PKCS#8 PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"{path}: not an EC P-256 key (ES256 needs P-256)")
    return key


def _same_public_key(key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, spki) == certificate.public_key().public_bytes(
        der, spki
    )


def load_signing_keys(folder: Path) -> list[SigningKey]:
    """Every ``NAME.key.pem`` in ``folder`` with its ``NAME.crt.pem``, sorted by name.

    Raises ``KeyFileError`` for a key file readable by group or others, a key without
    its certificate, a certificate holding another public key, or an unparsable file.
    """
    keys: list[SigningKey] = []
    for key_path in sorted(folder.glob(f"*{KEY_SUFFIX}")):
        name = key_path.name.removesuffix(KEY_SUFFIX)
        private_key = _load_private_key(key_path)
        cert_path = folder / f"{name}{CERT_SUFFIX}"
        if not cert_path.is_file():
            raise KeyFileError(f"{key_path} has no certificate {cert_path.name} beside it")
        certificate = _load_certificate(cert_path)
        if not _same_public_key(private_key, certificate):
            raise KeyFileError(f"{cert_path} does not certify the key in {key_path.name}")
        keys.append(SigningKey(name, private_key, certificate, kid_of(certificate)))
    return keys


def load_certificates(folder: Path) -> list[x509.Certificate]:
    """Every certificate in ``folder`` (``*.crt.pem``), with or without a key beside it."""
    return [_load_certificate(path) for path in sorted(folder.glob(f"*{CERT_SUFFIX}"))]
