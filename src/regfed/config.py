"""Settings: read once at start-up, validated, frozen; secrets wrapped so they never print.

Precedence, lowest first: defaults, the TOML config file (``--config`` or ``REGFED_CONFIG``),
``REGFED_*`` environment variables, command-line flags.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from regfed.domain.model import Confirmation
from regfed.domain.policy import PolicyConfig
from regfed.domain.vaccines import VaccineProduct
from regfed.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to start. Field names match ``REGFED_<NAME>`` variables."""

    listen: str = "127.0.0.1:50051"
    # None: use the embedded PostgreSQL under ``home`` (development and demo).
    store_dsn: str | None = field(default=None, repr=False)
    city_dsn: str | None = field(default=None, repr=False)
    federal_dsn: str | None = field(default=None, repr=False)
    home: Path = Path(".regfed")
    keys_dir: Path | None = None  # default: <home>/keys
    trust_dir: Path | None = None
    person_key_file: Path | None = None  # HMAC secret keying people; default: <home>/person.key
    operator_token_file: Path | None = None  # the operators' bearer token; <home>/operator.token
    issuer_name: str = "Moscow Department of Health"
    issuer_country: str = "RU"
    registry_timeout: float = 2.0  # seconds, each registry, inside the caller's deadline
    clock_skew: float = 300.0  # seconds a verifier tolerates around a code's iat and exp
    registry_pool_size: int = 4
    store_pool_size: int = 4
    grace: float = 5.0  # seconds in-flight calls get on shutdown
    # Calls in flight per process; beyond it callers get RESOURCE_EXHAUSTED at once instead
    # of queueing until their deadlines pass.
    max_concurrent_rpcs: int = 1000
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    @property
    def embedded(self) -> bool:
        """True when any database is left to the embedded PostgreSQL."""
        return None in (self.store_dsn, self.city_dsn, self.federal_dsn)

    @property
    def signing_keys_dir(self) -> Path:
        """Where signing keys live."""
        return self.keys_dir if self.keys_dir is not None else self.home / "keys"

    @property
    def partner_trust_dir(self) -> Path:
        """Where partner issuers' certificates live."""
        return self.trust_dir if self.trust_dir is not None else self.home / "trust"

    @property
    def operator_token_path(self) -> Path:
        """Where the operators' bearer token lives."""
        if self.operator_token_file is not None:
            return self.operator_token_file
        return self.home / "operator.token"

    @property
    def person_key_path(self) -> Path:
        """Where the secret that keys people lives."""
        return (
            self.person_key_file if self.person_key_file is not None else self.home / "person.key"
        )


_SCALARS = frozenset(f.name for f in fields(Settings) if f.name != "policy")
_PATHS = {"home", "keys_dir", "trust_dir", "person_key_file", "operator_token_file"}
_FLOATS = {"registry_timeout", "grace", "clock_skew"}
_INTS = {"registry_pool_size", "store_pool_size", "max_concurrent_rpcs"}


def _coerce(name: str, value: Any) -> Any:
    """Turn a raw value from a file, the environment or a flag into the field's type."""
    if value is None or value == "":
        return None
    try:
        if name in _PATHS:
            return Path(str(value))
        if name in _FLOATS:
            number = float(value)
            if number <= 0:
                raise ValueError("must be positive")
            return number
        if name in _INTS:
            count = int(value)
            if count < 1:
                raise ValueError("must be at least 1")
            return count
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return str(value)


def _policy_from(table: Mapping[str, Any]) -> PolicyConfig:
    """The ``[policy]`` table of the config file: windows, confirmations, the vaccine list."""
    base = PolicyConfig()
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key == "vaccines":
            try:
                changes["vaccines"] = {
                    code: VaccineProduct(code=code, **spec) for code, spec in value.items()
                }
            except TypeError as exc:
                raise ConfigError(f"policy.vaccines: {exc}") from None
        elif key == "recovery_confirmations":
            try:
                changes[key] = frozenset(Confirmation(v) for v in value)
            except ValueError as exc:
                raise ConfigError(f"policy.recovery_confirmations: {exc}") from None
        elif hasattr(base, key) and isinstance(value, int) and value > 0:
            changes[key] = value
        else:
            raise ConfigError(f"policy.{key}: unknown setting or not a positive number")
    return replace(base, **changes)


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Settings from defaults < config file < environment < flags (a None flag is unset)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    policy = PolicyConfig()
    path = config_file or (Path(env["REGFED_CONFIG"]) if env.get("REGFED_CONFIG") else None)
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        policy = _policy_from(document.pop("policy", {}))
        for key, value in document.items():
            if key not in _SCALARS:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, value)
    for name in _SCALARS:
        raw = env.get("REGFED_" + name.upper())
        if raw:
            values[name] = _coerce(name, raw)
    for name, value in flags.items():
        if name not in _SCALARS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, value)
    return Settings(policy=policy, **values)
