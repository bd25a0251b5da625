"""Settings: defaults, file < environment < flags, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from regfed.config import load_settings
from regfed.domain.model import Confirmation
from regfed.errors import ConfigError


def test_defaults_are_the_development_setup() -> None:
    """With nothing set, regfed listens on loopback and embeds its databases."""
    settings = load_settings(env={})
    assert settings.listen == "127.0.0.1:50051"
    assert settings.embedded
    assert settings.signing_keys_dir == Path(".regfed/keys")
    assert settings.policy.vaccination_valid_days == 365


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    """Each source overrides the one before it."""
    config = tmp_path / "regfed.toml"
    config.write_text('listen = "127.0.0.1:1"\nregistry_timeout = 0.5\nissuer_name = "file"\n')
    settings = load_settings(
        config,
        env={"REGFED_LISTEN": "127.0.0.1:2", "REGFED_ISSUER_NAME": "env"},
        issuer_name="flag",
        store_dsn=None,
    )
    assert settings.listen == "127.0.0.1:2"
    assert settings.registry_timeout == 0.5
    assert settings.issuer_name == "flag"


def test_all_three_dsns_set_means_nothing_embedded() -> None:
    """Production: with every DSN set, no embedded database starts."""
    env = {f"REGFED_{n}_DSN": "postgresql://db/x" for n in ("STORE", "CITY", "FEDERAL")}
    assert not load_settings(env=env).embedded


def test_policy_windows_and_vaccines_from_the_file(tmp_path: Path) -> None:
    """The [policy] table sets windows, confirmations and the vaccine list."""
    config = tmp_path / "regfed.toml"
    config.write_text(
        "[policy]\n"
        "test_valid_hours = 48\n"
        'recovery_confirmations = ["PCR", "ELISA"]\n'
        '[policy.vaccines.NewVac]\nname = "New"\ndoses = 2\nrecognised = true\n'
        'mp = "NewVac"\nma = "Maker"\n'
    )
    policy = load_settings(config, env={}).policy
    assert policy.test_valid_hours == 48
    assert policy.recovery_confirmations == {Confirmation.PCR, Confirmation.ELISA}
    assert list(policy.vaccines) == ["NewVac"]
    assert policy.vaccines["NewVac"].doses == 2


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("registry_timeout = -1\n", "registry_timeout"),
        ("registry_timeout = nan\n", "registry_timeout"),
        ("grace = inf\n", "grace"),
        ("max_concurrent_rpcs = true\n", "max_concurrent_rpcs"),
        ("store_pool_size = 2.5\n", "store_pool_size"),
        ('listen = "nowhere"\n', "listen"),
        ('issuer_country = "Russia"\n', "issuer_country"),
        ("[policy]\nvaccination_valid_days = true\n", "policy.vaccination_valid_days"),
        ("[policy.vaccines.X]\nname = 1\n", "policy.vaccines.X"),
        ("store_pool_size = 0\n", "store_pool_size"),
        ("no_such_setting = 1\n", "no_such_setting"),
        ("[policy]\ntest_valid_hours = -3\n", "policy.test_valid_hours"),
        ('[policy]\nrecovery_confirmations = ["XRAY"]\n', "policy.recovery_confirmations"),
    ],
)
def test_invalid_settings_are_named(tmp_path: Path, content: str, named: str) -> None:
    """A bad value is refused with the setting's name."""
    config = tmp_path / "regfed.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=named):
        load_settings(config, env={})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REGFED_REGISTRY_TIMEOUT", "NaN"),
        ("REGFED_GRACE", "-2"),
        ("REGFED_STORE_POOL_SIZE", "true"),
        ("REGFED_MAX_CONCURRENT_RPCS", "0"),
        ("REGFED_RECONCILE_INTERVAL", "0"),
        ("REGFED_RECONCILE_INTERVAL", "inf"),
        ("REGFED_RECONCILE_RATE", "-1"),
        ("REGFED_RECONCILE_CONCURRENCY", "0"),
        ("REGFED_RECONCILE_MAX_BACKOFF", "nan"),
        ("REGFED_APPLICATION_TTL_DAYS", "0"),
        ("REGFED_APPLICATION_TTL_DAYS", "1.5"),
    ],
)
def test_invalid_environment_values_are_named(variable: str, value: str) -> None:
    """Environment values are validated like the file's, named by their setting."""
    with pytest.raises(ConfigError, match=variable.removeprefix("REGFED_").lower()):
        load_settings(env={variable: value})


def test_errors_never_quote_the_value(tmp_path: Path) -> None:
    """A rejected value (a DSN holds a password) is never part of the message."""
    config = tmp_path / "regfed.toml"
    config.write_text('store_dsn = 7\nlisten = "postgresql://u:hunter2@db"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert "hunter2" not in str(caught.value)
    assert "store_dsn" in str(caught.value)
    assert "listen" in str(caught.value)


def test_with_changes_validates_too() -> None:
    """A copy with changes is checked like a fresh load."""
    settings = load_settings(env={})
    assert settings.with_changes(grace=1.5).grace == 1.5
    with pytest.raises(ConfigError, match="grace"):
        settings.with_changes(grace=-1)


def test_dsns_never_print() -> None:
    """DSNs (which may hold passwords) are kept out of the settings' repr."""
    settings = load_settings(env={"REGFED_STORE_DSN": "postgresql://u:hunter2@db/x"})
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('[auth.tokens]\nportal = ["sha256:abc"]\n', "auth.tokens.portal"),
        ('[auth.tokens]\nadmin = ["sha256:' + "a" * 64 + '"]\n', "auth.tokens"),
        ('[auth.certificates]\n"portal-1.example" = "root"\n', "auth.certificates"),
        ("[auth]\nusers = 1\n", "auth.users"),
        ('auth = "open"\n', "auth"),
        ('tls_cert_file = "/etc/regfed/tls.crt"\n', "tls_cert_file"),
        ('tls_client_denylist_file = "/etc/regfed/deny.txt"\n', "tls_client_denylist_file"),
        ('log_format = "xml"\n', "log_format"),
        ('metrics_listen = "9100"\n', "metrics_listen"),
        ("observe_calls = 3\n", "observe_calls"),
    ],
)
def test_invalid_auth_and_transport_settings_are_named(
    tmp_path: Path, content: str, named: str
) -> None:
    """The [auth] table and the TLS, health, metrics and log settings are checked too."""
    config = tmp_path / "regfed.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=named):
        load_settings(config, env={})


def test_auth_table_and_transport_settings_load(tmp_path: Path) -> None:
    """A production file: TLS files, listeners, JSON logs, roles and token hashes."""
    digest = "sha256:" + "0f" * 32
    config = tmp_path / "regfed.toml"
    config.write_text(
        'tls_cert_file = "/etc/regfed/tls.crt"\ntls_key_file = "/etc/regfed/tls.key"\n'
        'tls_client_ca_file = "/etc/regfed/clients-ca.pem"\n'
        'health_listen = "0.0.0.0:8081"\nmetrics_listen = ""\nlog_format = "json"\n'
        '[auth.certificates]\n"portal-1.city.example" = "portal"\n'
        '"spiffe://tver.example/verifier" = "partner"\n'
        f'[auth.tokens]\noperator = ["{digest}"]\n'
    )
    settings = load_settings(config, env={})
    assert settings.tls
    assert settings.health_listen == "0.0.0.0:8081"
    assert settings.metrics_listen is None  # empty means off
    assert settings.auth is not None
    assert settings.auth.certificates["spiffe://tver.example/verifier"] == "partner"
    assert settings.auth.tokens == {"operator": [digest]}


def test_token_hash_errors_never_quote_the_value(tmp_path: Path) -> None:
    """A malformed token entry (perhaps the token itself, pasted by mistake) is not echoed."""
    config = tmp_path / "regfed.toml"
    config.write_text('[auth.tokens]\noperator = ["s3cret-token-pasted-by-mistake"]\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert "s3cret" not in str(caught.value)
    assert "auth.tokens.operator" in str(caught.value)


def test_application_settings_from_the_environment() -> None:
    """The reconciler's interval, the time to live and the application key are settings,
    with the defaults the contract names."""
    defaults = load_settings(env={})
    assert (defaults.reconcile_interval, defaults.application_ttl_days) == (60.0, 30)
    assert defaults.application_key_path == Path(".regfed/application.key")
    settings = load_settings(
        env={
            "REGFED_RECONCILE_INTERVAL": "0.5",
            "REGFED_APPLICATION_TTL_DAYS": "7",
            "REGFED_APPLICATION_KEY_FILE": "/run/secrets/application.key",
        }
    )
    assert settings.reconcile_interval == 0.5
    assert settings.application_ttl_days == 7
    assert settings.application_key_path == Path("/run/secrets/application.key")


def test_reliability_settings_from_the_environment() -> None:
    """Timeouts, breakers, the drain delay and SO_REUSEPORT come from REGFED_* too."""
    settings = load_settings(
        env={
            "REGFED_STORE_TIMEOUT": "0.5",
            "REGFED_DEFAULT_DEADLINE": "3",
            "REGFED_BREAKER_FAILURES": "2",
            "REGFED_BREAKER_RESET": "0.25",
            "REGFED_HEALTH_INTERVAL": "2",
            "REGFED_DRAIN_DELAY": "0",
            "REGFED_REUSE_PORT": "true",
        }
    )
    assert (settings.store_timeout, settings.default_deadline) == (0.5, 3.0)
    assert (settings.breaker_failures, settings.breaker_reset) == (2, 0.25)
    assert (settings.health_interval, settings.drain_delay) == (2.0, 0.0)
    assert settings.reuse_port
    assert not load_settings(env={}).reuse_port  # a single server never shares its port


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGFED_DRAIN_DELAY", "-1"),
        ("REGFED_STORE_TIMEOUT", "0"),
        ("REGFED_DEFAULT_DEADLINE", "nan"),
        ("REGFED_BREAKER_FAILURES", "0"),
    ],
)
def test_reliability_settings_are_validated(name: str, value: str) -> None:
    """A drain delay may be zero, a timeout may not; the message names the setting."""
    with pytest.raises(ConfigError, match=name.removeprefix("REGFED_").lower()):
        load_settings(env={name: value})
