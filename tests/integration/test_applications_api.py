"""SubmitApplication, GetApplication and GetStats through a real grpc.aio server, with the
reconciler running in it (its interval shortened by configuration)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from regfed.app import Application
from regfed.demo.people import DEMO_PEOPLE, late_person
from regfed.demo.seed import arrive
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.hc1_reference import decode_and_verify
from tests.integration.harness import channel_to, demo_settings, person_message, running
from tests.integration.test_api import VALID, bad_request_fields

pytestmark = pytest.mark.postgres

LATE = late_person("Зайцев")
BELOVA = next(p for p in DEMO_PEOPLE if p.key == "city-sputnik-v")
UNKNOWN = next(p for p in DEMO_PEOPLE if p.key == "unknown")
CONTACT = "+7 916 000-00-00"
VACCINATION = pb.APPLICATION_CATEGORY_VACCINATION_NOT_FOUND
# A pass every 0.2 s and no backoff to speak of: the next pass comes without waiting long.
FAST = {"reconcile_interval": 0.2, "reconcile_max_backoff": 0.2}


@asynccontextmanager
async def serving(create_database: CreateDatabase, home: Path) -> AsyncIterator[Application]:
    """A running regfed over fresh databases with the demo people, reconciling fast."""
    settings = await demo_settings(create_database, home)
    async with running(settings, **FAST) as application:
        yield application


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """One server for the tests that need no database of their own."""
    async with serving(create_database, tmp_path_factory.mktemp("regfed-home")) as application:
        yield application


@pytest.fixture
async def fresh(create_database: CreateDatabase, tmp_path: Path) -> AsyncIterator[Application]:
    """A server over databases of its own, for tests that count or change the registries."""
    async with serving(create_database, tmp_path) as application:
        yield application


@pytest.fixture(scope="module")
async def stub(app: Application) -> AsyncIterator[pb_grpc.CertificateServiceAsyncStub]:
    """A client of the shared server."""
    async with channel_to(app) as channel:
        yield pb_grpc.CertificateServiceStub(channel)


@pytest.fixture
async def fresh_stub(fresh: Application) -> AsyncIterator[pb_grpc.CertificateServiceAsyncStub]:
    """A client of the test's own server."""
    async with channel_to(fresh) as channel:
        yield pb_grpc.CertificateServiceStub(channel)


def submission(person: pb.Person, category: int = VACCINATION) -> pb.SubmitApplicationRequest:
    """A submission for ``person``."""
    return pb.SubmitApplicationRequest(person=person, contact=CONTACT, category=category)  # type: ignore[arg-type]


async def until_closed(
    stub: pb_grpc.CertificateServiceAsyncStub, application_id: str
) -> pb.Application:
    """The application once it has closed, asking every 0.1 s for at most 30 s."""
    request = pb.GetApplicationRequest(application_id=application_id)
    for _ in range(300):
        application = await stub.GetApplication(request, timeout=10)
        if application.status != pb.APPLICATION_STATUS_PENDING:
            return application
        await asyncio.sleep(0.1)
    raise AssertionError("the application was still pending after 30 s")


async def test_the_late_persons_story(
    fresh: Application, fresh_stub: pb_grpc.CertificateServiceAsyncStub
) -> None:
    """Missing from both registries: PENDING with NOT_FOUND. A federal vaccination record
    is inserted into the registry database; the reconciler's next pass issues the code;
    GetApplication returns it, Verify says VALID, and it is the code Issue gives."""
    submitted = await fresh_stub.SubmitApplication(submission(person_message(LATE)), timeout=10)
    assert submitted.status == pb.APPLICATION_STATUS_PENDING
    assert submitted.denial.reason == pb.DENIAL_REASON_NOT_FOUND
    assert submitted.denial.message
    assert submitted.denial.hint
    assert submitted.category == VACCINATION
    assert submitted.checks == 1
    assert uuid.UUID(submitted.application_id).version == 4

    assert fresh.settings.federal_dsn is not None
    await arrive(fresh.settings.federal_dsn, LATE, datetime.now(UTC))
    closed = await until_closed(fresh_stub, submitted.application_id)

    assert closed.status == pb.APPLICATION_STATUS_ISSUED
    assert closed.HasField("closed_at")
    assert not closed.HasField("next_check_at")
    assert closed.checks >= 2
    code = closed.certificate
    assert code.kind == pb.CERTIFICATE_KIND_VACCINATION
    assert {e.source for e in code.basis} == {pb.REGISTRY_FEDERAL}
    verdict = await fresh_stub.Verify(pb.VerifyRequest(qr_payload=code.qr_payload), timeout=10)
    assert verdict.verdict == pb.VERDICT_VALID
    assert verdict.uvci == code.uvci
    trust = await fresh_stub.GetTrustList(pb.GetTrustListRequest(), timeout=10)
    (signer,) = [k for k in trust.keys if k.key_id == code.key_id]
    decoded = decode_and_verify(code.qr_payload, x509.load_der_x509_certificate(signer.certificate))
    assert decoded.hcert["dob"] == LATE.birth_date.isoformat()
    issued = await fresh_stub.Issue(pb.IssueRequest(person=person_message(LATE)), timeout=10)
    assert (issued.certificate.uvci, issued.certificate.qr_payload) == (code.uvci, code.qr_payload)
    again = await fresh_stub.GetApplication(
        pb.GetApplicationRequest(application_id=submitted.application_id), timeout=10
    )
    assert again.certificate.qr_payload == code.qr_payload

    stats = await fresh_stub.GetStats(pb.GetStatsRequest(), timeout=10)
    assert {c.label: c.count for c in stats.applications} == {"APPLICATION_STATUS_ISSUED": 1}
    assert {c.label: c.count for c in stats.applications_by_category} == {
        "APPLICATION_CATEGORY_VACCINATION_NOT_FOUND/APPLICATION_STATUS_ISSUED": 1
    }
    assert stats.applications_with_code == 1
    waited = closed.closed_at.ToDatetime() - submitted.submitted_at.ToDatetime()
    assert stats.median_time_to_code.ToTimedelta() == waited


async def test_an_eligible_person_is_issued_at_once(
    stub: pb_grpc.CertificateServiceAsyncStub,
) -> None:
    """Eligible now: ISSUED in the answer, with the certificate Issue gives; a second
    submission is another (closed) application with the same certificate."""
    submitted = await stub.SubmitApplication(submission(person_message(BELOVA)), timeout=10)
    issued = await stub.Issue(pb.IssueRequest(person=person_message(BELOVA)), timeout=10)
    assert submitted.status == pb.APPLICATION_STATUS_ISSUED
    assert submitted.checks == 1
    assert submitted.closed_at == submitted.submitted_at
    assert submitted.certificate.uvci == issued.certificate.uvci
    assert submitted.certificate.qr_payload == issued.certificate.qr_payload


async def test_a_second_submission_returns_the_open_application(
    stub: pb_grpc.CertificateServiceAsyncStub,
) -> None:
    """One open application per person: submissions fired together get the same one."""
    request = submission(person_message(UNKNOWN), pb.APPLICATION_CATEGORY_OTHER)
    answers = await asyncio.gather(*(stub.SubmitApplication(request, timeout=10) for _ in range(6)))
    assert len({a.application_id for a in answers}) == 1
    assert {a.status for a in answers} == {pb.APPLICATION_STATUS_PENDING}


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"snils": "112-233-445 96"}, ["person.snils"]),
        ({"birth_date": "14.03.1980"}, ["person.birth_date"]),
        ({"last_name": " "}, ["person.last_name"]),
        ({"contact": ""}, ["contact"]),
        ({"contact": "not a contact"}, ["contact"]),
        ({"contact": "12"}, ["contact"]),
        ({"category": pb.APPLICATION_CATEGORY_UNSPECIFIED}, ["category"]),
        ({"category": 42}, ["category"]),
        (
            {"snils": "", "contact": "x", "category": 0},
            ["person.snils", "contact", "category"],
        ),
    ],
)
async def test_bad_submissions_are_invalid_argument_naming_each_field(
    stub: pb_grpc.CertificateServiceAsyncStub, change: dict[str, object], fields: list[str]
) -> None:
    """Bad input is INVALID_ARGUMENT with a violation per field, the person's exactly as
    Issue names them; no value is echoed back."""
    person = pb.Person()
    person.CopyFrom(VALID)
    person.snils = "112-233-445 95"
    request = submission(person)
    for name, value in change.items():
        target = request if name in ("contact", "category") else request.person
        setattr(target, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitApplication(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == fields
    for value in change.values():
        if isinstance(value, str) and value.strip():
            assert value not in (caught.value.details() or "")
    if "person.snils" in fields:
        with pytest.raises(grpc.aio.AioRpcError) as issue:
            await stub.Issue(pb.IssueRequest(person=request.person), timeout=10)
        assert "person.snils" in bad_request_fields(issue.value)


@pytest.mark.parametrize(
    ("application_id", "code"),
    [
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("1", grpc.StatusCode.INVALID_ARGUMENT),
        ("not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT),
        ("{" + str(uuid.uuid4()) + "}", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_an_unknown_or_malformed_id(
    stub: pb_grpc.CertificateServiceAsyncStub, application_id: str, code: grpc.StatusCode
) -> None:
    """An id nobody was given is NOT_FOUND; one that is not a UUID, INVALID_ARGUMENT."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetApplication(
            pb.GetApplicationRequest(application_id=application_id), timeout=10
        )
    assert caught.value.code() == code
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert bad_request_fields(caught.value) == ["application_id"]


async def test_stats_over_a_window(fresh_stub: pb_grpc.CertificateServiceAsyncStub) -> None:
    """A window counts applications submitted in it; an empty or reversed one is refused."""
    await fresh_stub.SubmitApplication(submission(person_message(UNKNOWN)), timeout=10)
    now = datetime.now(UTC)
    inside = pb.GetStatsRequest()
    inside.since.FromDatetime(now - timedelta(hours=1))
    inside.until.FromDatetime(now + timedelta(hours=1))
    stats = await fresh_stub.GetStats(inside, timeout=10)
    assert {c.label: c.count for c in stats.applications} == {"APPLICATION_STATUS_PENDING": 1}
    assert not stats.HasField("median_time_to_code")
    later = pb.GetStatsRequest()
    later.since.FromDatetime(now + timedelta(hours=1))
    assert not (await fresh_stub.GetStats(later, timeout=10)).applications
    reversed_window = pb.GetStatsRequest()
    reversed_window.since.FromDatetime(now)
    reversed_window.until.FromDatetime(now - timedelta(seconds=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await fresh_stub.GetStats(reversed_window, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == ["until"]
