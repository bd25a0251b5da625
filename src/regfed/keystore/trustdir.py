"""Partner issuers' certificates in ``REGFED_TRUST_DIR``, and the trust list they make
with our own signing certificates.

``regfed trust add`` writes a partner's certificates into the folder by rename; a running
server notices the folder's new mtime and reloads it, so no restart is needed. One
partner's broken file is reported and skipped, never fatal.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from regfed.hcert.trust import (
    TrustedKey,
    TrustError,
    TrustList,
    load_certificate_data,
    trusted_key_from_der,
)

log = logging.getLogger(__name__)

TRUST_FILE_PATTERNS = ("*.pem", "*.crt")


def pem_of(der: bytes) -> bytes:
    """A certificate in PEM (RFC 7468): base64 in lines of 64 characters."""
    text = base64.b64encode(der)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return b"\n".join([b"-----BEGIN CERTIFICATE-----", *lines, b"-----END CERTIFICATE-----", b""])


def _file_name(source: str) -> str:
    """A safe ``.pem`` name in the trust folder for a file called ``source``."""
    stem = Path(source).name.removesuffix(".pem").removesuffix(".crt")
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".") or "partner"
    return f"{stem}.pem"


def add_to_trust_dir(folder: Path, data: bytes, *, source: str) -> list[TrustedKey]:
    """Check the certificate(s) in ``data`` and write them to ``folder`` as ``SOURCE.pem``.

    Only the certificates are written (re-armoured from their DER), so nothing else in
    the operator's file, such as a private key pasted by mistake, lands in the folder.
    The file appears by rename: a running server's loader never sees it half-written,
    and the folder's mtime tells it to reload. Raises ``TrustError`` for unusable data
    or when another file of that name exists (adding the same content again is a no-op),
    and ``OSError`` when the folder cannot be written.
    """
    keys = load_certificate_data(data, own=False, source=source)
    pem = b"".join(pem_of(key.der) for key in keys)
    name = _file_name(source)
    target = folder / name
    keys = [replace(key, source=name) for key in keys]
    folder.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if target.read_bytes() == pem:
            return keys
        raise TrustError(f"{name} already exists in the trust folder with other content")
    temporary = folder / f".{name}.{os.getpid()}.tmp"  # matches neither *.pem nor *.crt
    try:
        temporary.write_bytes(pem)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return keys


@dataclass(frozen=True, slots=True)
class TrustLoad:
    """What ``load_trust_dir`` found: usable keys, and one line per file it skipped."""

    keys: list[TrustedKey]
    problems: list[str]


def load_trust_dir(folder: Path) -> TrustLoad:
    """Every ``*.pem`` / ``*.crt`` file of ``folder``, in name order; never raises.

    A bad file is reported (its name and what is wrong) and skipped: one partner's
    broken certificate must not stop the service, or the other partners' codes.
    A file without PEM armour is read as a single DER certificate.
    """
    if not folder.is_dir():
        return TrustLoad([], [f"{folder}: trust folder does not exist or is not a folder"])
    paths = sorted({p for pattern in TRUST_FILE_PATTERNS for p in folder.glob(pattern)})
    keys: list[TrustedKey] = []
    problems: list[str] = []
    for path in paths:
        try:
            keys.extend(load_certificate_data(path.read_bytes(), own=False, source=path.name))
        except OSError as error:
            problems.append(f"{path.name}: cannot be read ({error.strerror or 'I/O error'})")
        except TrustError as error:
            problems.append(f"{path.name}: {error}")
    return TrustLoad(keys, problems)


class PartnerTrust:
    """The trust list: our own signing certificates plus the partners' from the trust
    folder, re-read when the folder changes."""

    def __init__(self, own: Sequence[x509.Certificate], partner_dir: Path | None) -> None:
        # Our keys are loaded once at start (rotation is a restart); partners' may change.
        self._own = [
            trusted_key_from_der(c.public_bytes(Encoding.DER), own=True, source="keys") for c in own
        ]
        self._partner_dir = partner_dir
        self._partner_stamp: int | None = None
        self._list = TrustList(self._own)

    def _dir_stamp(self) -> int | None:
        try:
            return None if self._partner_dir is None else self._partner_dir.stat().st_mtime_ns
        except OSError:
            return None

    def current(self) -> TrustList:
        """The trust list now, rebuilt only when the partner folder changed.

        ``trust add`` writes a new file by rename, which changes the folder's mtime: one
        stat per call is the whole cost of noticing.
        """
        stamp = self._dir_stamp()
        if stamp != self._partner_stamp and self._partner_dir is not None:
            loaded = load_trust_dir(self._partner_dir)
            for problem in loaded.problems:
                log.warning("trust folder: %s", problem)
            self._list = TrustList([*self._own, *loaded.keys])
            self._partner_stamp = stamp
        return self._list
