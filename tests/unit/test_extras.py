"""A production install has neither the embedded PostgreSQL nor the QR-image reader: asking
for either is one line naming the extra that brings it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from regfed.cli.main import main
from regfed.extras import MissingExtra, import_extra
from regfed.postgres.embedded import EmbeddedPostgres


def test_a_missing_extra_names_itself_and_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The error says what needed the package and the pip command that brings it."""
    monkeypatch.setitem(sys.modules, "zxingcpp", None)  # as if not installed
    with pytest.raises(MissingExtra) as caught:
        import_extra("zxingcpp", extra="cli", purpose="reading a QR image")
    assert str(caught.value.message).startswith("reading a QR image needs zxingcpp")
    assert "pip install 'regfed[cli]'" in caught.value.message
    assert caught.value.extra == "cli"


def test_a_broken_extra_is_not_reported_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the package itself being absent means "install the extra": a dependency of it
    missing is its own error, left for the traceback to explain."""

    def import_module(name: str) -> ModuleType:
        raise ModuleNotFoundError("No module named '_its_dependency'", name="_its_dependency")

    monkeypatch.setattr("importlib.import_module", import_module)
    with pytest.raises(ModuleNotFoundError):
        import_extra("pgserver", extra="demo", purpose="the embedded PostgreSQL")


def test_the_embedded_postgres_without_pgserver_asks_for_the_demo_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting the embedded database without pgserver names regfed[demo] and the DSNs that
    make it unnecessary."""
    monkeypatch.setitem(sys.modules, "pgserver", None)
    with pytest.raises(MissingExtra) as caught:
        EmbeddedPostgres(tmp_path).start()
    assert "pip install 'regfed[demo]'" in caught.value.message
    assert "REGFED_STORE_DSN" in caught.value.message


def test_verify_image_without_the_reader_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`regfed verify --image` without zxing-cpp exits 1 with one line on stderr, no
    traceback, before any server is called."""
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    image = tmp_path / "code.png"
    image.write_bytes(b"")
    result = CliRunner().invoke(main, ["verify", "--image", str(image)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: reading a QR image (--image) needs zxingcpp, in regfed's 'cli' extra: "
        "pip install 'regfed[cli]'"
    ]


def test_version_is_the_installed_distributions() -> None:
    """`regfed --version` prints the version the package was installed as."""
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"regfed {version('regfed')}\n"
