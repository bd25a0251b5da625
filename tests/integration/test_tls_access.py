"""Mutual TLS and roles end to end: a real grpc.aio server on loopback with a CA, server and
client certificates generated for the run (``tests/pki.py``).

Each role may call exactly its methods (DESIGN.md's table) and gets PERMISSION_DENIED for
the rest; a certificate of the right CA that maps to no role, or that is denylisted, gets
UNAUTHENTICATED; no certificate, another CA's or an expired one never get a connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from regfed.app import Application
from regfed.config import AuthFile, Settings
from regfed.demo.people import DEMO_PEOPLE
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.integration.harness import demo_settings, person_message, running
from tests.pki import CertificateAuthority, Issued

if TYPE_CHECKING:
    from regfed.v1.certificate_service_pb2_grpc import CertificateServiceAsyncStub as Stub

pytestmark = pytest.mark.postgres

ROLE_NAMES = {
    "portal": "portal-1.city.example",  # SAN DNS
    "partner": "spiffe://tver.example/verifier",  # SAN URI
    "operator": "ops-alice",  # subject CN
}
VACCINATED = next(p for p in DEMO_PEOPLE if p.outcome == "VACCINATION")

Call = Callable[["Stub"], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "Issue": lambda s: s.Issue(pb.IssueRequest(person=person_message(VACCINATED)), timeout=10),
    "Verify": lambda s: s.Verify(pb.VerifyRequest(qr_payload="HC1:X"), timeout=10),
    "Verify with at": lambda s: s.Verify(
        pb.VerifyRequest(qr_payload="HC1:X", at=timestamp_pb2.Timestamp(seconds=1_700_000_000)),
        timeout=10,
    ),
    "GetTrustList": lambda s: s.GetTrustList(pb.GetTrustListRequest(), timeout=10),
    "Revoke": lambda s: s.Revoke(
        pb.RevokeRequest(uvci="URN:UVCI:01:RU:NOSUCHONE", reason="test"), timeout=10
    ),
    "SubmitApplication": lambda s: s.SubmitApplication(pb.SubmitApplicationRequest(), timeout=10),
    "GetApplication": lambda s: s.GetApplication(pb.GetApplicationRequest(), timeout=10),
    "GetStats": lambda s: s.GetStats(pb.GetStatsRequest(), timeout=10),
}
ALLOWED = {
    "portal": {"Issue", "SubmitApplication", "GetApplication", "Verify", "GetTrustList"},
    "partner": {"Verify", "GetTrustList"},
    "operator": set(CALLS),
}


@dataclass
class Pki:
    """The run's certificates, written under the test's folder."""

    folder: Path
    ca: CertificateAuthority
    clients: dict[str, Issued]

    def credentials(self, who: str | None, ca: CertificateAuthority | None = None) -> Any:
        """Channel credentials trusting ``ca`` (the run's), with ``who``'s certificate."""
        client = self.clients[who] if who else None
        return grpc.ssl_channel_credentials(
            root_certificates=(ca or self.ca).pem,
            private_key=client.key_pem if client else None,
            certificate_chain=client.cert_pem if client else None,
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for loopback, and client certificates of every kind."""
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority()
    ca.write(folder / "client-ca.pem")
    ca.server().write(folder, "server")
    stranger = CertificateAuthority("another CA")
    clients = {
        "portal": ca.issue("portal frontend", dns=(ROLE_NAMES["portal"],)),
        "partner": ca.issue("tver", uris=(ROLE_NAMES["partner"],)),
        "operator": ca.issue(ROLE_NAMES["operator"]),
        "nobody": ca.issue("unknown-service", dns=("unknown.example",)),
        "denied": ca.issue("portal frontend 2", dns=(ROLE_NAMES["portal"],)),
        "late-denied": ca.issue("partner 2", uris=(ROLE_NAMES["partner"],)),
        "expired": ca.issue(ROLE_NAMES["operator"], expired=True),
        "foreign": stranger.issue(ROLE_NAMES["operator"]),
    }
    (folder / "denylist.txt").write_text(
        f"# refused client certificates\n{clients['denied'].fingerprint}\n"
    )
    return Pki(folder, ca, clients)


def tls_settings(base: Settings, folder: Path, **changes: Any) -> Settings:
    """``base`` serving mutual TLS with the run's certificates and roles."""
    return base.with_changes(
        tls_cert_file=folder / "server.crt.pem",
        tls_key_file=folder / "server.key.pem",
        tls_client_ca_file=folder / "client-ca.pem",
        tls_client_denylist_file=folder / "denylist.txt",
        auth=AuthFile.model_validate(
            {"certificates": {name: role for role, name in ROLE_NAMES.items()}}
        ),
        **changes,
    )


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> AsyncIterator[Application]:
    """regfed serving mutual TLS on loopback, with a plaintext health listener."""
    base = await demo_settings(create_database, tmp_path_factory.mktemp("regfed-home"))
    settings = tls_settings(base, pki.folder, health_listen="127.0.0.1:0")
    async with running(settings) as application:
        yield application


def target(app: Application) -> str:
    return f"127.0.0.1:{app.port}"


async def status_of(app: Application, credentials: Any, call: Call) -> grpc.StatusCode:
    """The status ``call`` ends with on a fresh connection with ``credentials``."""
    async with grpc.aio.secure_channel(target(app), credentials) as channel:
        try:
            await call(pb_grpc.CertificateServiceStub(channel))
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", list(CALLS))
@pytest.mark.parametrize("role", list(ALLOWED))
async def test_each_role_may_call_exactly_its_methods(
    app: Application, pki: Pki, role: str, method: str
) -> None:
    """DESIGN.md's table: allowed methods answer (any status but a refusal); the rest are
    PERMISSION_DENIED."""
    code = await status_of(app, pki.credentials(role), CALLS[method])
    if method in ALLOWED[role]:
        assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("who", ["nobody", "denied"])
async def test_unknown_or_denylisted_certificate_is_unauthenticated(
    app: Application, pki: Pki, who: str
) -> None:
    """The right CA's certificate that maps to no role, or whose fingerprint is on the
    denylist, gets UNAUTHENTICATED on its first call."""
    code = await status_of(app, pki.credentials(who), CALLS["GetTrustList"])
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("who", [None, "foreign", "expired"])
async def test_no_foreign_or_expired_certificate_never_connects(
    app: Application, pki: Pki, who: str | None
) -> None:
    """No client certificate, another CA's, or an expired one: refused at the handshake,
    so the call never reaches the server (UNAVAILABLE), not even health."""
    code = await status_of(app, pki.credentials(who), CALLS["GetTrustList"])
    assert code == grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.secure_channel(target(app), pki.credentials(who)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_denylist_is_reloaded_without_a_restart(app: Application, pki: Pki) -> None:
    """A fingerprint added to the denylist file refuses that certificate from then on."""
    assert await status_of(app, pki.credentials("late-denied"), CALLS["GetTrustList"]) == (
        grpc.StatusCode.OK
    )
    denylist = pki.folder / "denylist.txt"
    replacement = denylist.with_suffix(".new")
    replacement.write_text(denylist.read_text() + pki.clients["late-denied"].fingerprint + "\n")
    replacement.replace(denylist)
    # A new connection's handshake re-reads changed TLS files, the denylist with them.
    code = await status_of(app, pki.credentials("late-denied"), CALLS["GetTrustList"])
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_health_needs_no_role_but_a_certificate(app: Application, pki: Pki) -> None:
    """A certificate that maps to no role may still ask for health over TLS."""
    async with grpc.aio.secure_channel(target(app), pki.credentials("nobody")) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_plaintext_health_listener_serves_health_only(app: Application) -> None:
    """REGFED_HEALTH_LISTEN answers grpc.health.v1 in plaintext, and nothing else."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.health_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(service="regfed.v1.CertificateService"), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.CertificateServiceStub(channel).GetTrustList(
                pb.GetTrustListRequest(), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_audit_rows_for_issue_revoke_and_refusals(app: Application, pki: Pki) -> None:
    """Issue, Revoke and a refusal each leave an audit row naming the caller's certificate
    and the request id; none holds the person's data."""
    async with grpc.aio.secure_channel(target(app), pki.credentials("portal")) as channel:
        stub = pb_grpc.CertificateServiceStub(channel)
        request = pb.IssueRequest(person=person_message(VACCINATED), request_id="audit-issue-1")
        issued = await stub.Issue(request, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetStats(
                pb.GetStatsRequest(), metadata=(("x-request-id", "audit-refused-1"),), timeout=10
            )
    async with grpc.aio.secure_channel(target(app), pki.credentials("operator")) as channel:
        await pb_grpc.CertificateServiceStub(channel).Revoke(
            pb.RevokeRequest(uvci=issued.certificate.uvci, reason="audit test"),
            metadata=(("x-request-id", "audit-revoke-1"),),
            timeout=10,
        )
    assert app.settings.store_dsn is not None
    conn = await asyncpg.connect(app.settings.store_dsn)
    try:
        rows: dict[str, asyncpg.Record] = {}
        for _ in range(100):  # refusals are written in batches, every second
            found = await conn.fetch(
                "SELECT * FROM audit_log WHERE request_id LIKE 'audit-%' ORDER BY id"
            )
            rows = {row["request_id"]: row for row in found}
            if len(rows) == 3:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    issue, refused, revoke = rows["audit-issue-1"], rows["audit-refused-1"], rows["audit-revoke-1"]
    assert (issue["action"], issue["role"], issue["uvci"]) == (
        "issue",
        "portal",
        issued.certificate.uvci,
    )
    assert issue["caller"] == f"certificate {ROLE_NAMES['portal']}"
    assert (refused["action"], refused["method"], refused["outcome"]) == (
        "refuse",
        "GetStats",
        "PERMISSION_DENIED",
    )
    assert (revoke["action"], revoke["caller"], revoke["uvci"]) == (
        "revoke",
        f"certificate {ROLE_NAMES['operator']}",
        issued.certificate.uvci,
    )
    text = " ".join(str(dict(row)) for row in rows.values())
    for value in (VACCINATED.last_name, VACCINATED.snils or "-", str(VACCINATED.birth_date)):
        assert value not in text


async def test_rotated_server_certificate_is_served_without_a_restart(
    create_database: CreateDatabase, tmp_path: Path, pki: Pki
) -> None:
    """New certificate files (another CA's) are picked up at the next handshake."""
    folder = tmp_path / "tls"
    folder.mkdir()
    (folder / "client-ca.pem").write_bytes((pki.folder / "client-ca.pem").read_bytes())
    (folder / "denylist.txt").write_text("")
    pki.ca.server().write(folder, "server")
    (tmp_path / "home").mkdir()
    base = await demo_settings(create_database, tmp_path / "home")
    async with running(tls_settings(base, folder)) as application:
        call = CALLS["GetTrustList"]
        assert await status_of(application, pki.credentials("partner"), call) == (
            grpc.StatusCode.OK
        )
        new_ca = CertificateAuthority("the next server CA")
        new_ca.server().write(folder, "server")
        trusting_new = pki.credentials("partner", ca=new_ca)
        assert await status_of(application, trusting_new, call) == grpc.StatusCode.OK
        assert await status_of(application, pki.credentials("partner"), call) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert application.tls is not None
        assert application.tls.reloads == 1


async def test_client_commands_over_mutual_tls(app: Application, pki: Pki) -> None:
    """regfed issue/revoke with --tls-ca/--tls-cert/--tls-key, and regfed audit list
    showing what the operator's certificate did."""
    from click.testing import CliRunner

    from regfed.cli.main import main

    files = {}
    for role in ("portal", "operator"):
        cert, key = pki.clients[role].write(pki.folder / "cli", role)
        files[role] = ["--tls-ca", str(pki.folder / "client-ca.pem")]
        files[role] += ["--tls-cert", str(cert), "--tls-key", str(key)]
    env = {"REGFED_TARGET": f"127.0.0.1:{app.port}", "REGFED_HOME": str(app.settings.home)}

    def regfed(*args: str) -> Any:
        return CliRunner().invoke(main, list(args), env=env)

    person = person_message(VACCINATED)
    issued = await asyncio.to_thread(
        regfed, "issue", "--json", *files["portal"],
        "--last-name", person.last_name, "--first-name", person.first_name,
        "--birth-date", person.birth_date, "--snils", person.snils,
    )  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    uvci = json.loads(issued.stdout)["certificate"]["uvci"]
    refused = await asyncio.to_thread(regfed, "revoke", uvci, "--reason", "t", *files["portal"])
    assert refused.exit_code == 3
    assert refused.stderr.startswith("PERMISSION_DENIED")
    revoked = await asyncio.to_thread(regfed, "revoke", uvci, "--reason", "t", *files["operator"])
    assert revoked.exit_code == 0, revoked.stderr
    listed = await asyncio.to_thread(
        regfed, "audit", "list", "--json", "--store-dsn", app.settings.store_dsn or "",
        "--caller", f"certificate {ROLE_NAMES['operator']}", "--action", "revoke",
    )  # fmt: skip
    assert listed.exit_code == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert uvci in {row["uvci"] for row in rows}
    assert {row["role"] for row in rows} == {"operator"}
