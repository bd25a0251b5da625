"""Transport security: the server's certificate, the client CA and the denylist, reloaded
from their files without a restart.

grpcio's dynamic server credentials ask a fetcher for a new certificate configuration at
every new connection's handshake; ours compares the files' identity (inode, size,
modification time) with what it loaded last, and reads them again only when one changed.
A half-written rotation (a certificate that does not match its key, a file that does not
parse) is logged and ignored: the server keeps the last good configuration, and tries
again when the files change once more.

Mutual TLS: with a client CA, grpcio requires a client certificate chaining to it at the
handshake (an absent, expired or foreign certificate never gets a connection). grpcio
offers no hook into that verification from Python, so the denylist of certificate
fingerprints is enforced just after it: the access interceptor refuses every call on a
connection whose certificate is listed (:meth:`TlsFiles.denied`), including connections
opened before the certificate was listed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from regfed.config import Settings
from regfed.errors import ConfigError

log = logging.getLogger(__name__)

# A denylist line: a SHA-256 fingerprint in hex, colons allowed (as openssl prints it).
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
# How often a call may look at the denylist file for changes (seconds).
DENYLIST_RECHECK = 1.0

FileIdentity = tuple[tuple[int, int, int] | None, ...]


def _identity(paths: tuple[Path | None, ...]) -> FileIdentity:
    """What changes when a file is rewritten or replaced: inode, size, mtime."""
    identity: list[tuple[int, int, int] | None] = []
    for path in paths:
        if path is None:
            identity.append(None)
            continue
        try:
            stat = os.stat(path)
        except OSError:
            identity.append((-1, -1, -1))
        else:
            identity.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(identity)


@dataclass(frozen=True, slots=True)
class Material:
    """One consistent set of the files' contents."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        """What grpcio's dynamic credentials take."""
        return grpc.ssl_server_certificate_configuration(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca
        )


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: {path} cannot be read ({type(exc).__name__})") from None


def load_material(settings: Settings) -> Material:
    """Read and check the server certificate, its key and the client CA.

    Errors name the setting and the file, never the content (the key is a secret).
    """
    assert settings.tls_cert_file is not None
    assert settings.tls_key_file is not None
    chain = _read(settings.tls_cert_file, "tls_cert_file")
    key_pem = _read(settings.tls_key_file, "tls_key_file")
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise ConfigError(f"tls_cert_file: {settings.tls_cert_file} is not PEM") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"tls_key_file: {settings.tls_key_file} is not an unencrypted PEM private key"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificates[0].public_key().public_bytes(
        serialization.Encoding.DER, public
    ) != key.public_key().public_bytes(serialization.Encoding.DER, public):
        raise ConfigError("tls_key_file: the key does not belong to tls_cert_file's certificate")
    client_ca = None
    if settings.tls_client_ca_file is not None:
        client_ca = _read(settings.tls_client_ca_file, "tls_client_ca_file")
        try:
            x509.load_pem_x509_certificates(client_ca)
        except ValueError:
            raise ConfigError(
                f"tls_client_ca_file: {settings.tls_client_ca_file} is not PEM"
            ) from None
    return Material(chain, key_pem, client_ca)


def load_denylist(path: Path) -> frozenset[str]:
    """The fingerprints in ``path``: one per line, hex (colons and case ignored), ``#``
    comments and blank lines skipped."""
    text = _read(path, "tls_client_denylist_file").decode("ascii", errors="replace")
    found = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip().replace(":", "").lower()
        if not entry:
            continue
        if not _FINGERPRINT.match(entry):
            raise ConfigError(
                f"tls_client_denylist_file: line {number} is not a SHA-256 fingerprint"
            )
        found.add(entry)
    return frozenset(found)


def fingerprint(pem: bytes) -> str:
    """SHA-256 over a certificate's DER, lower-case hex."""
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class TlsFiles:
    """The TLS files as last loaded, reloaded when they change."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._paths = (
            settings.tls_cert_file,
            settings.tls_key_file,
            settings.tls_client_ca_file,
        )
        self._lock = threading.Lock()  # the fetcher runs on grpc's threads
        self.material = load_material(settings)
        self._identity = _identity(self._paths)
        self._rejected: FileIdentity | None = None
        self._denylist_path = settings.tls_client_denylist_file
        self._denylist = load_denylist(self._denylist_path) if self._denylist_path else frozenset()
        self._denylist_identity = _identity((self._denylist_path,))
        self._denylist_checked = time.monotonic()
        self.reloads = 0  # how many times new material was handed to grpc

    @property
    def mutual(self) -> bool:
        """True when clients must present a certificate."""
        return self._settings.tls_client_ca_file is not None

    def credentials(self) -> grpc.ServerCredentials:
        """grpcio's dynamic credentials, asking :meth:`fetch` at each handshake."""
        return grpc.dynamic_ssl_server_credentials(
            self.material.configuration(),
            self.fetch,  # type: ignore[arg-type]  # the stubs miss that None means "no change"
            require_client_authentication=self.mutual,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when the files changed and are usable, else None (keep)."""
        self._recheck_denylist(force=True)
        identity = _identity(self._paths)
        with self._lock:
            if identity in (self._identity, self._rejected):
                return None
            try:
                material = load_material(self._settings)
            except ConfigError as exc:
                self._rejected = identity
                log.warning("TLS files changed but are not usable, keeping the last: %s", exc)
                return None
            self.material, self._identity, self._rejected = material, identity, None
            self.reloads += 1
        log.info("TLS certificate, key and client CA reloaded")
        return material.configuration()

    def denied(self, fingerprint: str) -> bool:
        """Whether a client certificate with this SHA-256 fingerprint is on the denylist."""
        if self._denylist_path is not None:
            self._recheck_denylist(force=False)
        return fingerprint in self._denylist

    def _recheck_denylist(self, *, force: bool) -> None:
        path = self._denylist_path
        if path is None:
            return
        now = time.monotonic()
        if not force and now - self._denylist_checked < DENYLIST_RECHECK:
            return
        self._denylist_checked = now
        identity = _identity((path,))
        if identity == self._denylist_identity:
            return
        try:
            denylist = load_denylist(path)
        except ConfigError as exc:
            log.warning("the denylist changed but is not usable, keeping the last: %s", exc)
        else:
            self._denylist = denylist
            log.info("client certificate denylist reloaded: %d fingerprints", len(denylist))
        self._denylist_identity = identity
