"""Verify, Revoke and the trust list through a real server, and the CLI around them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from click.testing import CliRunner

from regfed.app import Application
from regfed.cli.main import main
from regfed.demo.people import DEMO_PEOPLE
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.hc1_reference import cwt_payload, new_partner, partner_hcert
from tests.integration.harness import channel_to, demo_settings, person_message, running

if TYPE_CHECKING:  # the async stub type exists for type checkers only
    from regfed.v1.certificate_service_pb2_grpc import CertificateServiceAsyncStub as Stub

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """A running regfed with a partner trust folder and a development operator token."""
    home = tmp_path_factory.mktemp("regfed-home")
    settings = await demo_settings(create_database, home)
    async with running(settings, trust_dir=home / "trust") as application:
        yield application


@pytest.fixture(scope="module")
async def stub(app: Application) -> AsyncIterator[Stub]:
    """A CertificateService client."""
    async with channel_to(app) as channel:
        yield pb_grpc.CertificateServiceStub(channel)


def operator_metadata(app: Application) -> tuple[tuple[str, str], ...]:
    token = app.settings.operator_token_path.read_text().strip()
    return (("authorization", f"Bearer {token}"),)


async def issue(
    stub: Stub, outcome: str, qr_format: pb.QrFormat.ValueType = pb.QR_FORMAT_UNSPECIFIED
) -> pb.Certificate:
    person = next(p for p in DEMO_PEOPLE if p.outcome == outcome)
    request = pb.IssueRequest(person=person_message(person), qr_format=qr_format)
    response = await stub.Issue(request, timeout=10)
    assert response.outcome == pb.OUTCOME_ISSUED
    return response.certificate


@pytest.mark.parametrize("outcome", ["VACCINATION", "RECOVERY", "TEST"])
async def test_every_kind_round_trips_issue_to_verify(stub: Stub, outcome: str) -> None:
    """What Issue hands out, Verify calls VALID, with the holder's data."""
    certificate = await issue(stub, outcome)
    result = await stub.Verify(pb.VerifyRequest(qr_payload=certificate.qr_payload), timeout=10)
    assert result.verdict == pb.VERDICT_VALID, result.detail
    assert result.uvci == certificate.uvci
    assert result.kind == certificate.kind
    assert result.key_id == certificate.key_id
    assert result.issuer == "RU"
    assert result.holder_name
    assert result.holder_birth_date
    assert result.valid_until.seconds == certificate.valid_until.seconds
    # valid_from is the validity the certificate states, as Issue gave it; issued_at the iat.
    assert result.valid_from.seconds == certificate.valid_from.seconds
    assert result.issued_at.seconds == certificate.issued_at.seconds
    assert result.valid_from != result.issued_at


async def test_verify_as_of_another_instant(stub: Stub) -> None:
    """``at`` moves the verification instant, and the response says which one was used."""
    certificate = await issue(stub, "TEST")
    later = certificate.valid_until.ToDatetime(tzinfo=UTC) + timedelta(days=1)
    earlier = certificate.issued_at.ToDatetime(tzinfo=UTC) - timedelta(days=1)
    for instant, verdict in ((later, pb.VERDICT_EXPIRED), (earlier, pb.VERDICT_NOT_YET_VALID)):
        request = pb.VerifyRequest(qr_payload=certificate.qr_payload)
        request.at.FromDatetime(instant)
        result = await stub.Verify(request, timeout=10)
        assert result.verdict == verdict
        assert result.verified_at.ToDatetime(tzinfo=UTC) == instant


async def test_garbage_is_a_verdict_not_an_error(stub: Stub) -> None:
    """Text that is not a code gets MALFORMED, not an RPC error."""
    result = await stub.Verify(pb.VerifyRequest(qr_payload="HC1:not base45!"), timeout=10)
    assert result.verdict == pb.VERDICT_MALFORMED
    assert result.detail
    assert result.uvci == ""


@pytest.mark.parametrize("payload", ["", "HC1:" + "A" * 9000])
async def test_empty_or_oversized_input_is_invalid_argument(stub: Stub, payload: str) -> None:
    """Only empty or oversized input is an error."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Verify(pb.VerifyRequest(qr_payload=payload), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_revocation_is_verified_published_and_never_reissued(
    app: Application, stub: Stub
) -> None:
    """After Revoke: Verify says REVOKED, the trust list carries the hashed UVCI (never the
    UVCI), and Issue hands out a new certificate rather than the revoked one."""
    certificate = await issue(stub, "VACCINATION")
    revoked = await stub.Revoke(
        pb.RevokeRequest(uvci=certificate.uvci, reason="issued on a forged record"),
        metadata=operator_metadata(app),
        timeout=10,
    )
    assert revoked.uvci == certificate.uvci
    result = await stub.Verify(pb.VerifyRequest(qr_payload=certificate.qr_payload), timeout=10)
    assert result.verdict == pb.VERDICT_REVOKED
    before = pb.VerifyRequest(qr_payload=certificate.qr_payload)
    before.at.FromDatetime(revoked.revoked_at.ToDatetime(tzinfo=UTC) - timedelta(seconds=1))
    assert (await stub.Verify(before, timeout=10)).verdict == pb.VERDICT_VALID

    trust = await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
    digest = hashlib.sha256(certificate.uvci.encode()).digest()[:16]
    assert digest in trust.revoked_uvci_hashes
    assert certificate.uvci.encode() not in trust.SerializeToString()

    again = await issue(stub, "VACCINATION")
    assert again.uvci != certificate.uvci
    assert (
        await stub.Verify(pb.VerifyRequest(qr_payload=again.qr_payload), timeout=10)
    ).verdict == pb.VERDICT_VALID


async def test_on_loopback_without_auth_every_caller_is_operator(stub: Stub) -> None:
    """The demo (loopback, no [auth] table): Revoke needs no token. Refusals of callers
    without the operator role are pinned in test_tls_access and test_tokens."""
    certificate = await issue(stub, "RECOVERY")
    revoked = await stub.Revoke(pb.RevokeRequest(uvci=certificate.uvci, reason="x"), timeout=10)
    assert revoked.uvci == certificate.uvci


@pytest.mark.parametrize(
    ("uvci", "reason", "code"),
    [
        ("URN:UVCI:01:RU:NOSUCHCERTIFICATE", "test", grpc.StatusCode.NOT_FOUND),
        ("not-a-uvci", "test", grpc.StatusCode.INVALID_ARGUMENT),
        ("URN:UVCI:01:RU:X", " ", grpc.StatusCode.INVALID_ARGUMENT),
        # PostgreSQL text holds no NUL: refused here, not UNAVAILABLE from the store.
        ("URN:UVCI:01:RU:X\x00", "test", grpc.StatusCode.INVALID_ARGUMENT),
        ("URN:UVCI:01:RU:Ж", "test", grpc.StatusCode.INVALID_ARGUMENT),
        ("URN:UVCI:01:RU:X", "a\x00b", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_revoke_bad_requests(
    app: Application, stub: Stub, uvci: str, reason: str, code: grpc.StatusCode
) -> None:
    """An unknown UVCI is NOT_FOUND; a malformed one, or an empty reason or one with control
    characters, INVALID_ARGUMENT."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Revoke(
            pb.RevokeRequest(uvci=uvci, reason=reason),
            metadata=operator_metadata(app),
            timeout=10,
        )
    assert caught.value.code() == code


async def test_trust_list_marks_our_keys(stub: Stub) -> None:
    """GetTrustList carries our signing certificate, marked own, with its kid."""
    trust = await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
    own = [k for k in trust.keys if k.own]
    assert len(own) == 1
    assert base64.b64decode(own[0].key_id) == hashlib.sha256(own[0].certificate).digest()[:8]
    assert own[0].algorithm == pb.ALGORITHM_ES256


async def test_cli_verifies_text_and_png_and_revokes(
    app: Application, stub: Stub, tmp_path: Path
) -> None:
    """regfed verify says VALID for the text and for the PNG; regfed revoke makes it REVOKED."""
    certificate = await issue(stub, "RECOVERY", pb.QR_FORMAT_PNG)
    png = tmp_path / "code.png"
    png.write_bytes(certificate.qr_image)
    target = f"127.0.0.1:{app.port}"
    runner = CliRunner()
    # The CLI runs its own event loop: call it from a worker thread, as a user's shell would.
    by_text = await asyncio.to_thread(
        runner.invoke, main, ["verify", certificate.qr_payload, "--target", target]
    )
    assert by_text.exit_code == 0, by_text.output
    assert by_text.stdout.startswith("VALID")
    assert "issued at:" in by_text.stdout
    by_image = await asyncio.to_thread(
        runner.invoke, main, ["verify", "--image", str(png), "--target", target]
    )
    assert by_image.exit_code == 0, by_image.output
    assert certificate.uvci in by_image.stdout

    env = {"REGFED_HOME": str(app.settings.home)}
    revoked = await asyncio.to_thread(
        runner.invoke,
        main,
        ["revoke", certificate.uvci, "--reason", "test", "--target", target],
        env=env,
    )
    assert revoked.exit_code == 0, revoked.output
    after = await asyncio.to_thread(
        runner.invoke, main, ["verify", certificate.qr_payload, "--target", target]
    )
    assert after.exit_code == 1
    assert after.stdout.startswith("REVOKED")


@pytest.mark.parametrize("algorithm", ["ES256", "PS256"])
async def test_partner_codes_verify_after_trust_add(
    app: Application, stub: Stub, tmp_path: Path, algorithm: str
) -> None:
    """A partner's code is UNKNOWN_KEY until `regfed trust add` takes its certificate; then
    VALID, with no restart; GetTrustList lists the partner's key, not as our own."""
    # Its certificate valid now: a certificate vouches for no code issued after it expired.
    partner = new_partner(
        algorithm, name=f"Partner {algorithm}", not_before=datetime.now(UTC) - timedelta(days=1)
    )
    now = int(datetime.now(UTC).timestamp())
    code = partner.code(cwt_payload(partner_hcert("v"), iat=now - 60, exp=now + 86_400))
    before = await stub.Verify(pb.VerifyRequest(qr_payload=code), timeout=10)
    assert before.verdict == pb.VERDICT_UNKNOWN_KEY

    pem = tmp_path / f"partner-{algorithm}.pem"
    pem.write_bytes(partner.pem)
    trust_dir = str(app.settings.partner_trust_dir)
    added = await asyncio.to_thread(
        CliRunner().invoke, main, ["trust", "add", str(pem), "--trust-dir", trust_dir]
    )
    assert added.exit_code == 0, added.output

    after = await stub.Verify(pb.VerifyRequest(qr_payload=code), timeout=10)
    assert after.verdict == pb.VERDICT_VALID, after.detail
    assert after.issuer == "XX"
    trust = await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
    listed = {k.key_id: k for k in trust.keys}
    entry = listed[base64.b64encode(partner.kid).decode()]
    assert not entry.own
    assert entry.algorithm == (pb.ALGORITHM_PS256 if algorithm == "PS256" else pb.ALGORITHM_ES256)
