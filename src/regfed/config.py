"""Settings: read once at start-up, validated into typed values, frozen.

Precedence, lowest first: defaults, the TOML config file (``--config`` or ``REGFED_CONFIG``),
``REGFED_*`` environment variables, command-line flags. Every value goes through one
pydantic model: a bad one (a negative timeout, ``NaN``, ``true`` for a number, a key the
model does not know) stops the start with :class:`~regfed.errors.ConfigError` naming the
setting. Messages never show a value: DSNs hold passwords, and paths point at secrets.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    InstanceOf,
    ValidationError,
    model_validator,
)

from regfed.domain.model import Confirmation
from regfed.domain.policy import PolicyConfig
from regfed.domain.vaccines import VaccineProduct
from regfed.errors import ConfigError


def _no_bool(value: Any) -> Any:
    """``true`` is not a number, though Python's bool is an int."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def _finite(value: Any) -> Any:
    """NaN and infinities are refused by name, whether written in TOML or the environment."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value  # not a number at all: the type check says so
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return value


Seconds = Annotated[
    float,
    BeforeValidator(_no_bool),
    BeforeValidator(_finite),
    Field(gt=0, allow_inf_nan=False),
]
# Seconds that may be zero (a drain delay of 0: stop at once).
SecondsOrZero = Annotated[
    float,
    BeforeValidator(_no_bool),
    BeforeValidator(_finite),
    Field(ge=0, allow_inf_nan=False),
]
Count = Annotated[int, BeforeValidator(_no_bool), Field(ge=1)]
PerSecond = Seconds  # a positive, finite rate: validated like a duration


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VaccineSpec(_Model):
    """One ``[policy.vaccines.CODE]`` table."""

    name: str
    doses: Count
    recognised: bool
    mp: str
    ma: str


class PolicyFile(_Model):
    """The ``[policy]`` table: the eligibility windows and the vaccine catalogue."""

    illness_active_days: Count | None = None
    positive_pcr_block_days: Count | None = None
    vaccination_valid_days: Count | None = None
    recovery_valid_days: Count | None = None
    antibodies_valid_days: Count | None = None
    test_valid_hours: Count | None = None
    recovery_confirmations: list[Confirmation] | None = None
    vaccines: dict[str, VaccineSpec] | None = None

    def to_policy(self) -> PolicyConfig:
        """The domain's policy: the defaults, with what the file sets."""
        changes: dict[str, Any] = {
            name: value
            for name, value in self.model_dump(exclude_none=True).items()
            if name not in ("recovery_confirmations", "vaccines")
        }
        if self.recovery_confirmations is not None:
            changes["recovery_confirmations"] = frozenset(self.recovery_confirmations)
        if self.vaccines is not None:
            changes["vaccines"] = {
                code: VaccineProduct(code=code, **spec.model_dump())
                for code, spec in self.vaccines.items()
            }
        return PolicyConfig(**{**_policy_defaults(), **changes})


Role = Literal["portal", "partner", "operator"]
ROLES: tuple[Role, ...] = ("portal", "partner", "operator")
# What [auth.tokens] holds: the SHA-256 of a bearer token, never the token itself.
TokenHash = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class AuthFile(_Model):
    """The ``[auth]`` table: who a client certificate or a bearer token is.

    ``certificates`` maps a client certificate's SAN DNS name, SAN URI or subject CN to a
    role (used when a client CA is set); ``tokens`` maps a role to the SHA-256 hashes of the
    bearer tokens that carry it (used on a listener without a client CA).
    """

    certificates: dict[Annotated[str, Field(min_length=1, max_length=256)], Role] = Field(
        default_factory=dict
    )
    tokens: dict[Role, list[TokenHash]] = Field(default_factory=dict)


def _empty_is_unset(value: Any) -> Any:
    """``health_listen = ""`` means off, like leaving it out."""
    return None if value == "" else value


def _check_host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be host:port")
    return value


HostPort = Annotated[str, AfterValidator(_check_host_port)]
OptionalHostPort = Annotated[HostPort | None, BeforeValidator(_empty_is_unset)]
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_unset)]

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(listen: str) -> bool:
    """Whether ``host:port`` names a loopback address only (127.0.0.0/8, ::1, localhost)."""
    host = listen.rpartition(":")[0].strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere


def _policy_defaults() -> dict[str, Any]:
    default = PolicyConfig()
    return {name: getattr(default, name) for name in PolicyConfig.__dataclass_fields__}


class Settings(_Model):
    """Everything the service needs to start. Field names match ``REGFED_<NAME>`` variables."""

    listen: HostPort = "127.0.0.1:50051"
    # None: use the embedded PostgreSQL under ``home`` (development and demo).
    store_dsn: str | None = Field(default=None, repr=False)
    city_dsn: str | None = Field(default=None, repr=False)
    federal_dsn: str | None = Field(default=None, repr=False)
    home: Path = Path(".regfed")
    keys_dir: Path | None = None  # default: <home>/keys
    trust_dir: Path | None = None
    person_key_file: Path | None = None  # HMAC secret keying people; default: <home>/person.key
    operator_token_file: Path | None = None  # the operators' bearer token; <home>/operator.token
    issuer_name: str = Field(default="Moscow Department of Health", min_length=1, max_length=80)
    # ISO 3166-1 alpha-2: the CWT issuer, every entry's ``co`` and the UVCIs' country.
    issuer_country: str = Field(default="RU", pattern=r"^[A-Z]{2}$")
    registry_timeout: Seconds = 2.0  # each registry, inside the caller's deadline
    clock_skew: Seconds = 300.0  # a verifier's tolerance around a code's iat and exp
    registry_pool_size: Count = 4
    store_pool_size: Count = 4
    grace: Seconds = 5.0  # in-flight calls get this long on shutdown
    # Calls in flight per process; beyond it callers get RESOURCE_EXHAUSTED at once instead
    # of queueing until their deadlines pass. Health checks and reflection do not count.
    max_concurrent_rpcs: Count = 1000
    # AES-256 key (64 hex digits) sealing open applications' personal data; default
    # <home>/application.key, created for the embedded demo only: with all three DSNs set
    # (production) it must be configured.
    application_key_file: OptionalPath = None
    reconcile_interval: Seconds = 60.0  # seconds between the reconciler's passes
    # A pending application denied again and again waits longer between checks, up to this.
    reconcile_max_backoff: Seconds = 3600.0
    reconcile_concurrency: Count = 8  # checks in flight per process
    # Checks started per second per process at most, so a backlog leaves Issue its CPU.
    reconcile_rate: PerSecond = 300.0
    application_ttl_days: Count = 30  # a pending application expires after this many days
    # Transport security. Without a certificate the server listens in plaintext, on loopback
    # only unless ``insecure``. The files are re-read when they change.
    tls_cert_file: OptionalPath = None  # the server's certificate chain (PEM)
    tls_key_file: OptionalPath = None  # its private key (PEM)
    tls_client_ca_file: OptionalPath = None  # set: every client must present a certificate
    tls_client_denylist_file: OptionalPath = None  # SHA-256 fingerprints of refused clients
    insecure: bool = False  # allow plaintext on an address beyond loopback
    health_listen: OptionalHostPort = None  # plaintext grpc.health.v1 only (probes)
    metrics_listen: OptionalHostPort = None  # Prometheus ``GET /metrics``
    log_format: Literal["text", "json"] | None = None  # None: text on a terminal, else json
    # The per-call interceptor (log line, metrics, x-request-id back to the caller). Only
    # for measuring what it costs: production keeps it on.
    observe_calls: bool = True
    auth: AuthFile | None = None  # the [auth] table; None: no table (see README)
    # --- reliability: every wait bounded, dependencies that fail cut off ---
    store_timeout: Seconds = 2.0  # each statement on the store, inside the caller's deadline
    default_deadline: Seconds = 10.0  # the deadline of a call whose caller sent none
    breaker_failures: Count = 5  # consecutive failures that open a dependency's breaker
    breaker_reset: Seconds = 1.0  # an open breaker lets one probe through after this long
    health_interval: Seconds = 1.0  # how often the store is checked while it is up
    # On SIGTERM: NOT_SERVING at once, new calls still taken for this long (so load
    # balancers stop sending), then in-flight calls get ``grace`` to finish.
    drain_delay: SecondsOrZero = 1.0
    # A client connection is closed (GOAWAY; its calls in flight get ``grace``) after about
    # this long, so that a client reconnects and behind an L4 load balancer long-lived
    # connections spread over instances started since. 0: never (grpcio adds ±10 % jitter).
    max_connection_age: SecondsOrZero = 300.0
    # SO_REUSEPORT on the listener: only the ``--workers`` supervisor's processes share a
    # port; a single server refuses an address already in use.
    reuse_port: bool = False
    policy: InstanceOf[PolicyConfig] = Field(default_factory=PolicyConfig)

    @model_validator(mode="after")
    def _tls_files_together(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file: needs tls_cert_file and tls_key_file")
        if self.tls_client_denylist_file is not None and self.tls_client_ca_file is None:
            raise ValueError("tls_client_denylist_file: needs tls_client_ca_file")
        return self

    @property
    def tls(self) -> bool:
        """True when the main listener speaks TLS."""
        return self.tls_cert_file is not None

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

    @property
    def application_key_path(self) -> Path:
        """Where the key sealing applications' personal data lives."""
        if self.application_key_file is not None:
            return self.application_key_file
        return self.home / "application.key"

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated like everything else."""
        current = {name: getattr(self, name) for name in Settings.model_fields}
        return _validated(Settings, {**current, **changes})


# Every setting but the policy and auth tables can come from the environment or a flag.
SCALARS = frozenset(name for name in Settings.model_fields if name not in ("policy", "auth"))


def _describe(error: ValidationError, prefix: str = "") -> str:
    """Each problem as ``setting: what is wrong``, never quoting the value."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        where = prefix + ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        elif item["type"] == "string_pattern_mismatch" and "sha256" in item["msg"]:
            message = 'must be "sha256:" and 64 lower-case hex digits'
        elif item["type"] == "literal_error":
            message = message.replace("Input should be", "must be")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], values: Mapping[str, Any], prefix: str = "") -> M:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error, prefix)) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Settings from defaults < config file < environment < flags (a None flag is unset)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or (Path(env["REGFED_CONFIG"]) if env.get("REGFED_CONFIG") else None)
    if path is not None:
        document = _read_file(path)
        policy_table = document.pop("policy", {})
        if not isinstance(policy_table, dict):
            raise ConfigError("policy: must be a table")
        values["policy"] = _validated(PolicyFile, policy_table, "policy.").to_policy()
        if "auth" in document:
            auth_table = document.pop("auth")
            if not isinstance(auth_table, dict):
                raise ConfigError("auth: must be a table")
            values["auth"] = _validated(AuthFile, auth_table, "auth.")
        values.update(document)
    for name in SCALARS:
        raw = env.get("REGFED_" + name.upper())
        if raw:
            values[name] = raw
    for name, value in flags.items():
        if name not in SCALARS:
            raise ConfigError(f"{name}: unknown setting")
        if value is not None:
            values[name] = value
    return _validated(Settings, values)
