"""The gRPC API end to end: a real grpc.aio server on a loopback port, real PostgreSQL
databases seeded with the demo people, the composition root wiring it all."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from regfed.app import Application
from regfed.demo.people import DEMO_PEOPLE, DemoPerson
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.hc1_reference import decode_and_verify
from tests.integration.harness import channel_to, demo_settings, person_message, running

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """A running regfed on 127.0.0.1 (any free port) over fresh databases."""
    settings = await demo_settings(create_database, tmp_path_factory.mktemp("regfed-home"))
    async with running(settings) as application:
        yield application


@pytest.fixture(scope="module")
async def channel(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the running server."""
    async with channel_to(app) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> pb_grpc.CertificateServiceAsyncStub:
    """A CertificateService client."""
    return pb_grpc.CertificateServiceStub(channel)


def bad_request_fields(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # aio errors are Calls too
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


@pytest.mark.parametrize("person", DEMO_PEOPLE, ids=lambda p: p.key)
async def test_every_demo_person_gets_what_the_readme_says(
    stub: pb_grpc.CertificateServiceAsyncStub, person: DemoPerson
) -> None:
    """Each demo person's outcome is the one the README's table promises."""
    response = await stub.Issue(pb.IssueRequest(person=person_message(person)), timeout=10)
    if person.outcome.startswith("DENIED:"):
        assert response.outcome == pb.OUTCOME_DENIED
        reason = "DENIAL_REASON_" + person.outcome.removeprefix("DENIED:")
        assert pb.DenialReason.Name(response.denial.reason) == reason
        assert response.denial.message
        assert response.denial.hint
    else:
        assert response.outcome == pb.OUTCOME_ISSUED, response.denial
        kind = "CERTIFICATE_KIND_" + person.outcome
        assert pb.CertificateKind.Name(response.certificate.kind) == kind
        assert response.certificate.qr_payload.startswith("HC1:")
        assert response.certificate.basis
    assert not response.degraded


async def test_issued_code_verifies_independently_against_the_trust_list(
    stub: pb_grpc.CertificateServiceAsyncStub,
) -> None:
    """A code decodes by an independent path and its signature holds under GetTrustList's key."""
    person = next(p for p in DEMO_PEOPLE if p.outcome == "VACCINATION")
    response = await stub.Issue(pb.IssueRequest(person=person_message(person)), timeout=10)
    trust = await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
    keys = {k.key_id: k for k in trust.keys}
    key = keys[response.certificate.key_id]
    assert key.own
    assert key.algorithm == pb.ALGORITHM_ES256
    certificate = x509.load_der_x509_certificate(key.certificate)
    claims = decode_and_verify(response.certificate.qr_payload, certificate)
    assert base64.b64decode(response.certificate.key_id) == claims.kid
    hcert = claims.hcert
    assert hcert["v"][0]["ci"] == response.certificate.uvci
    assert hcert["dob"] == person.birth_date.isoformat()
    assert claims.expires_at == response.certificate.valid_until.seconds
    assert claims.issuer == "RU"


async def test_issue_is_idempotent(stub: pb_grpc.CertificateServiceAsyncStub) -> None:
    """The same person with the same basis gets the same UVCI and payload back."""
    person = next(p for p in DEMO_PEOPLE if p.outcome == "RECOVERY")
    request = pb.IssueRequest(person=person_message(person))
    first = await stub.Issue(request, timeout=10)
    second = await stub.Issue(request, timeout=10)
    assert first.certificate.uvci == second.certificate.uvci
    assert first.certificate.qr_payload == second.certificate.qr_payload


async def test_concurrent_identical_requests_get_one_certificate(
    stub: pb_grpc.CertificateServiceAsyncStub,
) -> None:
    """Requests fired together for a new basis all get the one certificate."""
    person = next(p for p in DEMO_PEOPLE if p.outcome == "TEST")
    request = pb.IssueRequest(person=person_message(person))
    responses = await asyncio.gather(*(stub.Issue(request, timeout=10) for _ in range(12)))
    assert len({r.certificate.uvci for r in responses}) == 1


@pytest.mark.parametrize(
    ("qr_format", "media_type", "magic"),
    [(pb.QR_FORMAT_PNG, "image/png", b"\x89PNG"), (pb.QR_FORMAT_SVG, "image/svg+xml", b"<")],
)
async def test_qr_image_only_when_asked(
    stub: pb_grpc.CertificateServiceAsyncStub,
    qr_format: pb.QrFormat.ValueType,
    media_type: str,
    magic: bytes,
) -> None:
    """An image comes back in the format asked for; none without asking."""
    person = next(p for p in DEMO_PEOPLE if p.outcome == "VACCINATION")
    plain = await stub.Issue(pb.IssueRequest(person=person_message(person)), timeout=10)
    assert plain.certificate.qr_image == b""
    assert plain.certificate.qr_media_type == ""
    imaged = await stub.Issue(
        pb.IssueRequest(person=person_message(person), qr_format=qr_format), timeout=10
    )
    assert imaged.certificate.qr_media_type == media_type
    assert imaged.certificate.qr_image.lstrip().startswith(magic)


VALID = pb.Person(last_name="Иванов", first_name="Иван", birth_date="1980-03-14")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({}, "person.snils"),  # no identifier at all
        ({"snils": "112-233-445 96"}, "person.snils"),  # checksum fails
        ({"snils": "1234"}, "person.snils"),
        ({"oms_policy": "12345"}, "person.oms_policy"),
        ({"passport": "45 10"}, "person.passport"),
        ({"snils": "112-233-445 95", "birth_date": "1980-02-30"}, "person.birth_date"),
        ({"snils": "112-233-445 95", "birth_date": "14.03.1980"}, "person.birth_date"),
        ({"snils": "112-233-445 95", "birth_date": "2999-01-01"}, "person.birth_date"),
        ({"snils": "112-233-445 95", "last_name": "  "}, "person.last_name"),
        ({"snils": "112-233-445 95", "first_name": ""}, "person.first_name"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stub: pb_grpc.CertificateServiceAsyncStub, change: dict[str, str], field: str
) -> None:
    """Bad input is INVALID_ARGUMENT with a BadRequest violation naming the field; no value
    is echoed back."""
    person = pb.Person()
    person.CopyFrom(VALID)
    for name, value in change.items():
        setattr(person, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Issue(pb.IssueRequest(person=person), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_request_fields(caught.value)
    for value in change.values():
        if value.strip():
            assert value not in (caught.value.details() or "")


async def test_unknown_qr_format_is_invalid_argument(
    stub: pb_grpc.CertificateServiceAsyncStub,
) -> None:
    """A QR format this server does not know is refused, naming qr_format."""
    person = pb.Person()
    person.CopyFrom(VALID)
    person.snils = "112-233-445 95"
    unknown: Any = 42
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Issue(pb.IssueRequest(person=person, qr_format=unknown), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == ["qr_format"]


async def test_health_and_reflection(channel: grpc.aio.Channel) -> None:
    """Health checking says SERVING for the server and the service."""
    health: Any = health_pb2_grpc.HealthStub(channel)  # its stubs declare no methods
    for service in ("", "regfed.v1.CertificateService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_home_folder_is_untouched_without_embedded_databases(app: Application) -> None:
    """With all three DSNs set nothing embedded starts."""
    assert not (Path(app.settings.home) / "pgdata").exists()


async def test_stats_count_live_certificates_by_kind_and_source(
    stub: pb_grpc.CertificateServiceAsyncStub,
) -> None:
    """GetStats counts issued certificates by kind and the registries they rest on."""
    person = next(p for p in DEMO_PEOPLE if p.key == "merged-series")
    await stub.Issue(pb.IssueRequest(person=person_message(person)), timeout=10)
    stats = await stub.GetStats(pb.GetStatsRequest(), timeout=10)
    issued = {c.label: c.count for c in stats.issued}
    assert issued["CERTIFICATE_KIND_VACCINATION/REGISTRY_CITY+REGISTRY_FEDERAL"] >= 1


@pytest.mark.parametrize("name", ["\x00", "Иван\x07ов", "A\x1b[31m"])
async def test_control_characters_in_a_name_are_invalid_argument(
    stub: pb_grpc.CertificateServiceAsyncStub, name: str
) -> None:
    """No name holds control characters: the field is named, the value not echoed."""
    person = pb.Person()
    person.CopyFrom(VALID)
    person.snils = "112-233-445 95"
    person.last_name = name
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Issue(pb.IssueRequest(person=person), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == ["person.last_name"]


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (2**62, 0), (0, 1_000_000_000), (0, -1)],
)
async def test_verify_at_outside_the_timestamp_range_is_invalid_argument(
    stub: pb_grpc.CertificateServiceAsyncStub, seconds: int, nanos: int
) -> None:
    """An ``at`` no Timestamp may hold is INVALID_ARGUMENT naming the field, not INTERNAL."""
    request = pb.VerifyRequest(qr_payload="HC1:X")
    request.at.seconds, request.at.nanos = seconds, nanos
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Verify(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == ["at"]


@pytest.mark.parametrize(
    "method",
    [m.name for m in pb.DESCRIPTOR.services_by_name["CertificateService"].methods],
)
async def test_undecodable_bytes_are_invalid_argument_without_a_traceback(
    channel: grpc.aio.Channel, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are not a protobuf message: INVALID_ARGUMENT with a fixed message that
    echoes nothing, and nothing logged at warning level or above."""
    raw: Any = channel.unary_unary(f"/regfed.v1.CertificateService/{method}")
    # Field 1 claiming 100 bytes with 3 sent; cut-off varints.
    for junk in (b"\x0a\x64abc", b"\x12\x80", b"\x08\xff\xff"):
        with caplog.at_level(logging.WARNING), pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(junk, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "invalid request: the message could not be decoded"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_connection_is_closed_after_its_maximum_age(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """After max_connection_age the server ends a client's connection (GOAWAY) and the
    client's next call goes over a new one: behind an L4 load balancer, connections
    spread over instances started since."""
    settings = await demo_settings(create_database, tmp_path)
    async with running(settings, max_connection_age=0.5) as app, channel_to(app) as channel:
        stub = pb_grpc.CertificateServiceStub(channel)
        await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        async with asyncio.timeout(10):
            await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
        await stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
