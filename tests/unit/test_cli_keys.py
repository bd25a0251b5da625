"""The operator commands that need no server: keys generate/list, trust add/list."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from regfed.cli.main import main
from tests.hc1_reference import new_partner


def test_keys_generate_then_list_shows_which_key_signs(tmp_path: Path) -> None:
    """Two generated keys: both listed with their kid and validity, the newest signs, and
    every private key file is readable by its owner only."""
    runner = CliRunner()
    keys = str(tmp_path / "keys")
    for name in ("first", "second"):
        result = runner.invoke(main, ["keys", "generate", "--keys-dir", keys, "--name", name])
        assert result.exit_code == 0, result.output
    for key_file in (tmp_path / "keys").glob("*.key.pem"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    listed = runner.invoke(main, ["keys", "list", "--keys-dir", keys])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 2
    assert sum("signs" in line for line in lines) == 1


def test_keys_list_without_keys_is_an_error(tmp_path: Path) -> None:
    """An empty keys folder is reported, not listed as nothing."""
    result = CliRunner().invoke(main, ["keys", "list", "--keys-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "no signing keys" in result.output


def test_trust_add_refuses_what_is_not_a_certificate_and_lists_what_is(tmp_path: Path) -> None:
    """A bad PEM is refused with a message naming the file; a partner's certificate is
    added and listed."""
    runner = CliRunner()
    trust = str(tmp_path / "trust")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    refused = runner.invoke(main, ["trust", "add", str(junk), "--trust-dir", trust])
    assert refused.exit_code != 0
    assert "junk.pem" in refused.output
    partner = tmp_path / "partner.pem"
    partner.write_bytes(new_partner("PS256", name="Partner Region").pem)
    added = runner.invoke(main, ["trust", "add", str(partner), "--trust-dir", trust])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["trust", "list", "--trust-dir", trust])
    assert "PS256" in listed.output
    assert "Partner Region" in listed.output
