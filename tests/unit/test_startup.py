"""The server refuses to start without usable secrets outside the development default.

Secrets are loaded before any database opens, so these need no PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from regfed.app import Application
from regfed.config import Settings
from regfed.errors import ConfigError, KeyFileError
from regfed.keystore.signing import generate_signing_key

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def production(tmp_path: Path, **changes: object) -> Settings:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    person_key = tmp_path / "person.key"
    if not person_key.exists():
        person_key.write_text("ab" * 32)
        person_key.chmod(0o600)
    token = tmp_path / "operator.token"
    if not token.exists():
        token.write_text("cd" * 32)
        token.chmod(0o600)
    application_key = tmp_path / "application.key"
    if not application_key.exists():
        application_key.write_text("ef" * 32)
        application_key.chmod(0o600)
    values: dict[str, object] = {
        "store_dsn": UNREACHABLE,
        "city_dsn": UNREACHABLE,
        "federal_dsn": UNREACHABLE,
        "home": tmp_path,
        "keys_dir": keys,
        "person_key_file": person_key,
        "operator_token_file": token,
        "application_key_file": application_key,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


async def test_configured_keys_folder_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    """An explicitly configured, empty keys folder is an error, not a new dev key."""
    with pytest.raises(ConfigError, match="keys_dir"):
        await Application(production(tmp_path)).start()
    assert not list((tmp_path / "keys").iterdir())


async def test_group_readable_signing_key_refuses_to_start(tmp_path: Path) -> None:
    """A private key others can read stops the start, naming the file."""
    key = generate_signing_key(tmp_path / "keys", "loose")
    (tmp_path / "keys" / f"{key.name}.key.pem").chmod(0o640)
    with pytest.raises(KeyFileError, match="loose"):
        await Application(production(tmp_path)).start()


@pytest.mark.parametrize(
    "setting", ["person_key_file", "operator_token_file", "application_key_file"]
)
async def test_configured_secret_file_missing_refuses_to_start(
    tmp_path: Path, setting: str
) -> None:
    """A configured secret file that is not there is an error naming the setting."""
    generate_signing_key(tmp_path / "keys", "signer")
    settings = production(tmp_path, **{setting: tmp_path / "absent"})
    with pytest.raises(ConfigError, match=setting):
        await Application(settings).start()


async def test_world_readable_secret_refuses_to_start(tmp_path: Path) -> None:
    """A person-key secret readable by others stops the start."""
    generate_signing_key(tmp_path / "keys", "signer")
    settings = production(tmp_path)
    (tmp_path / "person.key").chmod(0o644)
    with pytest.raises(ConfigError, match="person_key_file"):
        await Application(settings).start()


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051"])
async def test_plaintext_beyond_loopback_refuses_to_start(tmp_path: Path, listen: str) -> None:
    """Without TLS, only loopback: any other address stops the start, naming the remedy."""
    generate_signing_key(tmp_path / "keys", "signer")
    with pytest.raises(ConfigError, match="--insecure"):
        await Application(production(tmp_path, listen=listen)).start()


def test_insecure_allows_plaintext_but_not_open_access(tmp_path: Path) -> None:
    """--insecure lifts the transport rule; callers beyond loopback still need credentials."""
    from regfed.app import build_authenticator, check_transport

    settings = production(tmp_path, listen="0.0.0.0:50051", insecure=True)
    check_transport(settings)
    with pytest.raises(ConfigError, match=r"auth: .*credentials"):
        build_authenticator(settings, None, "ab" * 32)


def test_loopback_without_auth_is_open(tmp_path: Path) -> None:
    """The demo: loopback, no [auth] table, every caller an operator (no authenticator)."""
    from regfed.app import build_authenticator

    assert build_authenticator(production(tmp_path), None, "ab" * 32) is None


async def test_production_without_an_application_key_refuses_to_start(tmp_path: Path) -> None:
    """With all three DSNs set, no application key is made up: it must be configured (a
    new one each start would leave the open applications unreadable)."""
    generate_signing_key(tmp_path / "keys", "signer")
    settings = production(tmp_path, application_key_file=None)
    with pytest.raises(ConfigError, match="application_key_file: must be set"):
        await Application(settings).start()


@pytest.mark.parametrize("content", ["ab" * 31, "ab" * 33, "zz" * 32])
async def test_an_application_key_of_the_wrong_size_refuses_to_start(
    tmp_path: Path, content: str
) -> None:
    """AES-256 needs exactly 32 bytes: 64 hex digits, no more, no fewer."""
    generate_signing_key(tmp_path / "keys", "signer")
    key = tmp_path / "short.key"
    key.write_text(content)
    key.chmod(0o600)
    with pytest.raises(ConfigError, match="application_key_file"):
        await Application(production(tmp_path, application_key_file=key)).start()


async def test_group_readable_application_key_refuses_to_start(tmp_path: Path) -> None:
    """An application key others can read stops the start."""
    generate_signing_key(tmp_path / "keys", "signer")
    settings = production(tmp_path)
    (tmp_path / "application.key").chmod(0o640)
    with pytest.raises(ConfigError, match="application_key_file"):
        await Application(settings).start()
