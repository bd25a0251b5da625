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
    commands: tuple[list[str], ...] = (
        [], ["serve"], ["issue"], ["verify"], ["revoke"], ["trust", "fetch"],
        ["applications", "submit"], ["applications", "show"], ["applications", "list"],
        ["stats"], ["demo", "arrive"],
    )  # fmt: skip
    for command in commands:
        result = CliRunner().invoke(main, [*command, "--help"], env=env)
        assert result.exit_code == 0, command
        assert "hunter2" not in result.output


def test_demo_arrive_never_writes_to_a_configured_registry() -> None:
    """With REGFED_FEDERAL_DSN set (a real registry), demo arrive refuses before connecting."""
    env = {"REGFED_FEDERAL_DSN": "postgresql://nobody@127.0.0.1:1/registry"}
    result = CliRunner().invoke(main, ["demo", "arrive", "Зайцев"], env=env)
    assert result.exit_code == 2
    assert "embedded demo registry" in result.output


def test_demo_arrive_names_the_late_people_it_knows() -> None:
    """An unknown name is bad usage, and the message says whose record can arrive."""
    result = CliRunner().invoke(main, ["demo", "arrive", "Белова"], env={})
    assert result.exit_code == 2
    assert "Зайцев" in result.output
