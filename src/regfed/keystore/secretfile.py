"""Secrets kept in files readable by their owner only (the person-key HMAC secret, the
operators' token). The development default creates them; a configured one must exist."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from regfed.errors import ConfigError

log = logging.getLogger(__name__)


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only, from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def read_secret(path: Path, *, setting: str, create: bool) -> str:
    """The hex secret in ``path``; with ``create``, a new random one when the file is missing.

    Errors name the setting and the file, never the content.
    """
    if not path.exists():
        if not create:
            raise ConfigError(f"{setting}: {path} does not exist")
        log.info("creating a development secret for %s in %s", setting, path)
        _write_private(path, secrets.token_hex(32).encode("ascii"))
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigError(f"{setting}: {path} must not be readable by group or others")
    try:
        text = path.read_text(encoding="ascii").strip()
        bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"{setting}: {path} must hold a hex secret") from None
    if len(text) < 64:
        raise ConfigError(f"{setting}: {path} must hold at least 32 bytes (64 hex digits)")
    return text
