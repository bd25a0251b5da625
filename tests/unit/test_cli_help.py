"""What ``regfed --help`` promises scripts, and what it must never show."""

from __future__ import annotations

from click.testing import CliRunner

from regfed.cli.main import main


def test_help_documents_the_exit_statuses() -> None:
    """Scripts learn the four exit statuses from --help."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for line in ("0  success", "1  the answer is no", "2  bad usage", "3  the server could"):
        assert line in result.output


def test_help_never_prints_settings_from_the_environment() -> None:
    """A DSN with a password in the environment stays out of every command's help."""
    env = {"REGFED_STORE_DSN": "postgresql://u:hunter2@db/x", "REGFED_TARGET": "10.0.0.9:1"}
    for command in ([], ["serve"], ["issue"], ["verify"], ["revoke"], ["trust", "fetch"]):
        result = CliRunner().invoke(main, [*command, "--help"], env=env)
        assert result.exit_code == 0, command
        assert "hunter2" not in result.output
