"""Metrics, per-call log lines and request ids, and the promise that no log line holds
personal data: a real server, real PostgreSQL, the demo people."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.protobuf import timestamp_pb2
from prometheus_client.parser import text_string_to_metric_families

from regfed import logs
from regfed.api.auth import token_hash
from regfed.app import Application
from regfed.config import AuthFile, Settings
from regfed.demo.people import DEMO_PEOPLE
from regfed.hcert.transliterate import icao9303
from regfed.keystore.secretfile import read_secret
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.integration.harness import demo_settings, person_message, running

if TYPE_CHECKING:
    from regfed.v1.certificate_service_pb2_grpc import CertificateServiceAsyncStub as Stub

pytestmark = pytest.mark.postgres

PORTAL_TOKEN = "observability-portal-token-" + "5" * 16
SERVICE = "regfed.v1.CertificateService"
VACCINATED = next(p for p in DEMO_PEOPLE if p.outcome == "VACCINATION")
DENIED = next(p for p in DEMO_PEOPLE if p.outcome == "DENIED:ACTIVE_ILLNESS")
LATE = next(p for p in DEMO_PEOPLE if p.arrives)
CONTACTS = ("zaitsev.a@example.org", "+7 916 555-01-23")  # applications' contacts


def observed_settings(base: Settings) -> Settings:
    """Loopback plaintext with tokens (so refusals happen), metrics on an ephemeral port."""
    return base.with_changes(
        metrics_listen="127.0.0.1:0",
        auth=AuthFile.model_validate({"tokens": {"portal": [token_hash(PORTAL_TOKEN)]}}),
    )


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """regfed with metrics and a portal token."""
    base = await demo_settings(create_database, tmp_path_factory.mktemp("regfed-home"))
    async with running(observed_settings(base)) as application:
        yield application


class Captured:
    """Every log record of the process, formatted as JSON and as text."""

    def __init__(self) -> None:
        self.json = io.StringIO()
        self.text = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines, parsed (every one must parse)."""
        return [json.loads(line) for line in self.json.getvalue().splitlines()]

    def everything(self) -> str:
        """Both renderings, for searching."""
        return self.json.getvalue() + self.text.getvalue()


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Root-logger handlers at DEBUG writing JSON and text, removed afterwards."""
    sink = Captured()
    handlers = []
    for stream, formatter in (
        (sink.json, logs.JsonFormatter()),
        (sink.text, logs.TextFormatter(logs.FORMAT)),
    ):
        handler = logging.StreamHandler(stream)
        handler.addFilter(logs.RequestIdFilter())
        handler.setFormatter(formatter)
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield sink
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


def portal() -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {PORTAL_TOKEN}"),)


def operator(app: Application) -> tuple[tuple[str, str], ...]:
    token = read_secret(app.settings.operator_token_path, setting="test", create=False)
    return (("authorization", f"Bearer {token}"),)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(app: Application) -> tuple[set[str], Samples]:
    """The metric families on /metrics, and every sample by name and labels."""
    url = f"http://127.0.0.1:{app.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback http
        families = list(text_string_to_metric_families(response.read().decode()))
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }
    return {family.name for family in families}, samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_change_as_calls_are_made(app: Application) -> None:
    """Calls, registry lookups, new certificates and denials show on /metrics."""
    _, before = await asyncio.to_thread(scrape, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = pb_grpc.CertificateServiceStub(channel)
        for person in (VACCINATED, DENIED):
            await stub.Issue(
                pb.IssueRequest(person=person_message(person)), metadata=portal(), timeout=10
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetStats(pb.GetStatsRequest(), metadata=portal(), timeout=10)
    handled = "grpc_server_handled_total"
    # The call metrics reach /metrics within a second (api/observe.py, CallMetrics): the
    # refused call, the last one made, shows when they all do.
    refused = {"grpc_service": SERVICE, "grpc_method": "GetStats", "grpc_code": "PERMISSION_DENIED"}
    for _ in range(50):  # bounded: 50 scrapes, 0.1 s apart
        _families, after = await asyncio.to_thread(scrape, app)
        if value(after, handled, **refused) > value(before, handled, **refused):
            break
        await asyncio.sleep(0.1)

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) >= by

    assert grew(handled, 2, grpc_service=SERVICE, grpc_method="Issue", grpc_code="OK")
    assert grew(handled, 1, **refused)
    assert grew("grpc_server_handling_seconds_count", 2, grpc_service=SERVICE, grpc_method="Issue")
    assert grew("regfed_registry_lookups_total", 2, registry="city", outcome="matched")
    assert grew("regfed_registry_lookup_seconds_count", 2, registry="federal")
    assert grew("regfed_denials_total", reason="active_illness")
    # A new certificate the first time this person is issued one in the store.
    issued = "regfed_certificates_issued_total"
    assert value(after, issued, kind="vaccination", source="city") >= 1
    # Every dependency's circuit breaker, closed: the registries and the store answer.
    for dependency in ("city registry", "federal registry", "store"):
        assert (("regfed_circuit_breaker_open", frozenset({("dependency", dependency)}))) in after
        assert value(after, "regfed_circuit_breaker_open", dependency=dependency) == 0


async def test_applications_gauge_follows_the_store(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """After each reconciler pass regfed_applications holds the store's count per status."""
    base = await demo_settings(create_database, tmp_path)
    async with running(observed_settings(base), reconcile_interval=0.2) as application:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{application.port}") as channel:
            await pb_grpc.CertificateServiceStub(channel).SubmitApplication(
                pb.SubmitApplicationRequest(
                    person=person_message(LATE),
                    contact=CONTACTS[0],
                    category=pb.APPLICATION_CATEGORY_VACCINATION_NOT_FOUND,
                ),
                metadata=portal(),
                timeout=10,
            )
        for _ in range(100):  # bounded: 100 scrapes, 0.1 s apart
            _, samples = await asyncio.to_thread(scrape, application)
            if value(samples, "regfed_applications", status="pending") == 1:
                break
            await asyncio.sleep(0.1)
    assert value(samples, "regfed_applications", status="pending") == 1
    assert ("regfed_applications", frozenset({("status", "issued")})) in samples
    assert value(samples, "regfed_applications", status="issued") == 0


async def test_json_lines_carry_the_request_id_returned_to_the_caller(
    app: Application, captured: Captured
) -> None:
    """One JSON line per call with method, role, status, duration and the registries'
    outcomes; the request id the caller sent is on it and comes back in x-request-id."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = pb_grpc.CertificateServiceStub(channel)
        call = stub.Issue(
            pb.IssueRequest(person=person_message(VACCINATED)),
            metadata=(*portal(), ("x-request-id", "json-req-1")),
            timeout=10,
        )
        await call
        assert ("x-request-id", "json-req-1") in tuple(await call.trailing_metadata() or ())
        own = stub.Issue(
            pb.IssueRequest(person=person_message(VACCINATED), request_id="own-id-7"),
            metadata=portal(),
            timeout=10,
        )
        await own
        refused = stub.GetStats(
            pb.GetStatsRequest(), metadata=(("x-request-id", "json-req-2"),), timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await refused
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("x-request-id", "json-req-2") in tuple(caught.value.trailing_metadata() or ())
    assert ("x-request-id", "own-id-7") in tuple(await own.trailing_metadata() or ())

    # The refused call's line is written just after its status left (see the metrics test).
    for _ in range(100):
        lines = captured.lines()
        rpc = [line for line in lines if line["logger"] == "regfed.rpc"]
        if any(line["request_id"] == "json-req-2" for line in rpc):
            break
        await asyncio.sleep(0.05)
    first = next(line for line in rpc if line["request_id"] == "json-req-1")
    assert first["method"] == "Issue"
    assert first["status"] == "OK"
    assert first["role"] == "portal"
    assert first["caller"].startswith("token portal/")
    assert isinstance(first["duration_ms"], float)
    assert first["registries"] == {"city": "matched", "federal": "not_found"}
    assert any(line["request_id"] == "own-id-7" for line in rpc)
    second = next(line for line in rpc if line["request_id"] == "json-req-2")
    assert (second["method"], second["status"], second["role"]) == (
        "GetStats",
        "UNAUTHENTICATED",
        "-",
    )
    for line in lines:
        assert {"time", "level", "logger", "request_id", "message"} <= set(line)


def personal_data() -> set[str]:
    """Everything of the demo people that must never reach a log line."""
    found: set[str] = set()
    for person in DEMO_PEOPLE:
        for name in (person.last_name, person.first_name, person.middle_name):
            if name:
                found |= {name, name.upper(), icao9303(name)}
        born = person.birth_date
        found |= {born.isoformat(), born.strftime("%d.%m.%Y")}
        for identifier in (person.snils, person.oms_policy, person.passport):
            if identifier:
                found.add(identifier)
        if person.snils:
            s = person.snils
            found |= {f"{s[:3]}-{s[3:6]}-{s[6:9]} {s[9:]}", f"{s[:3]}-{s[3:6]}-{s[6:9]}"}
        if person.passport:
            found.add(f"{person.passport[:4]} {person.passport[4:]}")
    return found | {*CONTACTS, "916 555-01-23", "9165550123"}


async def exercise_every_path(app: Application, stub: Stub) -> None:
    """Every RPC, every denial, every refusal and error path the service has."""

    async def attempt(call: Any) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call

    codes = []
    for person in DEMO_PEOPLE:  # every outcome, every denial reason
        request = pb.IssueRequest(person=person_message(person), request_id=f"pii-{person.key}")
        reply = await stub.Issue(request, metadata=portal(), timeout=10)
        if reply.outcome == pb.OUTCOME_ISSUED:
            codes.append(reply.certificate)
    png = pb.IssueRequest(person=person_message(VACCINATED), qr_format=pb.QR_FORMAT_PNG)
    await stub.Issue(png, metadata=portal(), timeout=10)
    bad = person_message(VACCINATED)
    bad.snils = (VACCINATED.snils or "")[:-1] + "0"
    bad.birth_date = "12.04.1985"
    await attempt(stub.Issue(pb.IssueRequest(person=bad), metadata=portal(), timeout=10))
    await attempt(stub.Issue(pb.IssueRequest(), metadata=portal(), timeout=10))
    for certificate in codes:
        await stub.Verify(
            pb.VerifyRequest(qr_payload=certificate.qr_payload), metadata=portal(), timeout=10
        )
    at = timestamp_pb2.Timestamp(seconds=1_900_000_000)
    await stub.Verify(
        pb.VerifyRequest(qr_payload=codes[0].qr_payload, at=at), metadata=operator(app), timeout=10
    )
    await attempt(
        stub.Verify(pb.VerifyRequest(qr_payload=codes[0].qr_payload, at=at), metadata=portal())
    )
    await stub.Verify(pb.VerifyRequest(qr_payload="HC1:NOT-A-CODE"), metadata=portal(), timeout=10)
    await attempt(stub.Verify(pb.VerifyRequest(), metadata=portal(), timeout=10))
    await stub.GetTrustList(pb.GetTrustListRequest(), metadata=portal(), timeout=10)
    await stub.Revoke(
        pb.RevokeRequest(uvci=codes[0].uvci, reason="logs test"), metadata=operator(app), timeout=10
    )
    await stub.Verify(
        pb.VerifyRequest(qr_payload=codes[0].qr_payload), metadata=portal(), timeout=10
    )
    await attempt(stub.Revoke(pb.RevokeRequest(uvci="URN:UVCI:01:RU:NONE", reason="x"),
                              metadata=operator(app), timeout=10))  # fmt: skip
    await attempt(stub.Revoke(pb.RevokeRequest(uvci="nope", reason=""), metadata=operator(app)))
    await attempt(stub.Revoke(pb.RevokeRequest(uvci=codes[1].uvci, reason="x"), metadata=portal()))
    await attempt(stub.Revoke(pb.RevokeRequest(uvci=codes[1].uvci, reason="x")))
    await attempt(stub.Revoke(pb.RevokeRequest(uvci=codes[1].uvci, reason="x"),
                              metadata=(("authorization", "Bearer guess"),)))  # fmt: skip
    await stub.GetStats(pb.GetStatsRequest(), metadata=operator(app), timeout=10)
    await attempt(stub.GetStats(pb.GetStatsRequest(), metadata=portal(), timeout=10))
    await attempt(
        stub.SubmitApplication(
            pb.SubmitApplicationRequest(person=person_message(DENIED)),
            metadata=portal(),
            timeout=10,
        )
    )  # fmt: skip  (no category: INVALID_ARGUMENT)
    for person, contact in zip((LATE, VACCINATED), CONTACTS, strict=True):  # PENDING, ISSUED
        submitted = await stub.SubmitApplication(
            pb.SubmitApplicationRequest(
                person=person_message(person),
                contact=contact,
                category=pb.APPLICATION_CATEGORY_VACCINATION_NOT_FOUND,
            ),
            metadata=portal(),
            timeout=10,
        )
        await stub.GetApplication(
            pb.GetApplicationRequest(application_id=submitted.application_id),
            metadata=portal(),
            timeout=10,
        )
    await attempt(stub.GetApplication(pb.GetApplicationRequest(), metadata=portal(), timeout=10))
    await attempt(stub.GetApplication(
        pb.GetApplicationRequest(application_id=str(uuid.uuid4())), metadata=portal(), timeout=10
    ))  # fmt: skip

    # A registry down: degraded answers, and UNAVAILABLE where a denial could be overturned.
    assert app.settings.city_dsn is not None
    assert app.settings.store_dsn is not None
    city = await asyncpg.connect(app.settings.city_dsn)
    try:
        await city.execute("ALTER TABLE patients RENAME TO patients_gone")
        for person in DEMO_PEOPLE:
            await attempt(stub.Issue(pb.IssueRequest(person=person_message(person)),
                                     metadata=portal(), timeout=10))  # fmt: skip
        await city.execute("ALTER TABLE patients_gone RENAME TO patients")
    finally:
        await city.close()
    # The store down: UNAVAILABLE, with the driver's error logged (its text withheld).
    store = await asyncpg.connect(app.settings.store_dsn)
    try:
        await store.execute("ALTER TABLE certificates RENAME TO certificates_gone")
        for person in DEMO_PEOPLE[:4]:
            await attempt(stub.Issue(pb.IssueRequest(person=person_message(person)),
                                     metadata=portal(), timeout=10))  # fmt: skip
        await store.execute("ALTER TABLE certificates_gone RENAME TO certificates")
    finally:
        await store.close()


async def test_no_personal_data_in_any_log_line(
    create_database: CreateDatabase, tmp_path: Path, captured: Captured
) -> None:
    """The logs of a run through every RPC, denial, refusal and error path, at DEBUG, in
    both formats, hold none of the demo people's names, identifiers or birth dates."""
    base = await demo_settings(create_database, tmp_path)
    async with (
        running(observed_settings(base)) as application,
        grpc.aio.insecure_channel(f"127.0.0.1:{application.port}") as channel,
    ):
        await exercise_every_path(application, pb_grpc.CertificateServiceStub(channel))
    logged = captured.everything()
    assert len(captured.lines()) > len(DEMO_PEOPLE) * 2  # the run did log, a line per call
    assert "WARNING" in logged  # the failure paths were taken and said so
    searched = personal_data()
    assert len(searched) > 100
    leaked = sorted(value for value in searched if value in logged)
    assert leaked == []
