"""The client commands against a real server: exit statuses, --json, REGFED_TARGET,
errors on stderr, and the trust list fetched for an offline verifier."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from regfed.app import Application
from regfed.cli.main import main
from regfed.demo.people import DEMO_PEOPLE
from tests.conftest import CreateDatabase
from tests.integration.harness import demo_settings, running

pytestmark = pytest.mark.postgres

BELOVA = next(p for p in DEMO_PEOPLE if p.snils == "14628735990")
FEDOROV = next(p for p in DEMO_PEOPLE if p.snils == "22586149383")


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """A running regfed over fresh databases with the demo people."""
    settings = await demo_settings(create_database, tmp_path_factory.mktemp("regfed-home"))
    async with running(settings) as application:
        yield application


async def regfed(app: Application, *args: str, target: str | None = None) -> Result:
    """``regfed ARGS`` against the server, REGFED_TARGET pointing at it, as a shell would
    run it (in another thread: the CLI runs its own event loop)."""
    env = {
        "REGFED_TARGET": target or f"127.0.0.1:{app.port}",
        "REGFED_HOME": str(app.settings.home),
    }
    runner = CliRunner()  # click 8.2+: stdout and stderr apart
    return await asyncio.to_thread(runner.invoke, main, list(args), env=env)


def person_args(snils: str, last_name: str, first_name: str, birth: str) -> Sequence[str]:
    """The person options of ``regfed issue``."""
    return (
        "--last-name", last_name, "--first-name", first_name,
        "--birth-date", birth, "--snils", snils,
    )  # fmt: skip


async def test_issue_exit_statuses_and_json(app: Application) -> None:
    """0 and a JSON certificate when issued; 1 and the denial when denied."""
    issued = await regfed(
        app,
        "issue",
        "--json",
        *person_args("146-287-359 90", BELOVA.last_name, BELOVA.first_name, "1985-04-12"),
    )
    assert issued.exit_code == 0, issued.stderr
    body = json.loads(issued.stdout)
    assert body["outcome"] == "OUTCOME_ISSUED"
    assert body["certificate"]["qrPayload"].startswith("HC1:")
    denied = await regfed(
        app,
        "issue",
        *person_args(FEDOROV.snils or "", FEDOROV.last_name, FEDOROV.first_name, "1960-10-05"),
    )
    assert denied.exit_code == 1
    assert denied.stdout.startswith("DENIED: ACTIVE_ILLNESS")
    assert "\x1b[" not in denied.stdout  # no QR drawn into a pipe


async def test_bad_input_is_2_with_the_field_on_stderr(app: Application) -> None:
    """The server's INVALID_ARGUMENT exits 2, its field violations on stderr, one prefix."""
    result = await regfed(
        app, "issue", *person_args("146-287-359 91", "Белова", "Мария", "1985-04-12")
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("INVALID_ARGUMENT: ")
    assert "person.snils" in result.stderr
    assert "rror: " not in result.stderr  # no doubled "Error: error:" prefix


async def test_unreachable_server_is_3(app: Application) -> None:
    """Nobody listening: exit 3, UNAVAILABLE on stderr."""
    result = await regfed(app, "verify", "HC1:X", "--timeout", "2", target="127.0.0.1:1")
    assert result.exit_code == 3
    assert result.stderr.startswith("UNAVAILABLE")


async def test_verify_json_and_not_valid_is_1(app: Application) -> None:
    """--json gives the verdict in protobuf's JSON mapping; MALFORMED exits 1."""
    result = await regfed(app, "verify", "--json", "HC1:NOT-A-CODE")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["verdict"] == "VERDICT_MALFORMED"


async def test_trust_fetch_writes_pems_and_revoked_hashes(app: Application, tmp_path: Path) -> None:
    """The fetched folder holds our certificate as PEM and the revoked UVCIs' hashes."""
    issued = await regfed(
        app,
        "issue",
        "--json",
        *person_args("146-287-359 90", BELOVA.last_name, BELOVA.first_name, "1985-04-12"),
    )
    uvci = json.loads(issued.stdout)["certificate"]["uvci"]
    revoked = await regfed(app, "revoke", uvci, "--reason", "test")
    assert revoked.exit_code == 0, revoked.stderr
    out = tmp_path / "trust"
    fetched = await regfed(app, "trust", "fetch", "--out", str(out))
    assert fetched.exit_code == 0, fetched.stderr
    pems = sorted(out.glob("own-*.pem"))
    assert len(pems) == 1
    certificate = x509.load_pem_x509_certificate(pems[0].read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert pems[0].stem == "own-" + hashlib.sha256(der).digest()[:8].hex()
    hashes = (out / "revoked-uvci-hashes.txt").read_text().split()
    assert hashlib.sha256(uvci.encode()).digest()[:16].hex() in hashes
