"""The application use cases and the reconciler over fakes: no PostgreSQL, no server."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from regfed.domain.model import (
    Confirmation,
    DenialReason,
    IllnessEpisode,
    LabMethod,
    LabResult,
    Registry,
    Vaccination,
)
from regfed.domain.policy import PolicyConfig
from regfed.errors import NotFound, SealedDataError
from regfed.federation.fanout import SourceStatus
from regfed.service.application_data import (
    decode_certificate,
    decode_person,
    encode_certificate,
    encode_person,
)
from regfed.service.applications import ApplicationService, Schedule
from regfed.service.issuing import IssueService
from regfed.service.personkey import PersonKeyer
from regfed.service.ports import ApplicationCategory, ApplicationStatus
from regfed.service.reconciler import Outcome, Pacer, Reconciler
from regfed.service.sealing import Purpose, Sealer
from tests.unit.service.fakes import (
    NOW,
    FakeApplicationStore,
    FakeFederation,
    FakeStore,
    FakeTally,
    FixedClock,
    signer,
    signing_key,
)
from tests.unit.service.test_issuing import ILL, QUERY, VACCINATED

INTERVAL = timedelta(minutes=1)
TTL = timedelta(days=30)
CONTACT = "+7 916 123-45-67"
OTHER = ApplicationCategory.OTHER


class World:
    """Issue and the application use cases over fakes, and a reconciler."""

    def __init__(self) -> None:
        self.clock = FixedClock()
        self.federation = FakeFederation()
        self.certificates = FakeStore()
        self.store = FakeApplicationStore(self.certificates)
        self.tally = FakeTally()
        self.sealer = Sealer(b"s" * 32)
        key = signing_key()
        keyer = PersonKeyer(b"k" * 32)
        self.issuing = IssueService(
            federation=self.federation,
            policy=PolicyConfig(),
            store=self.certificates,
            denials=self.tally,
            signer=signer(key, self.clock),
            keyer=keyer,
            clock=self.clock,
        )
        self.schedule = Schedule(interval=INTERVAL, max_backoff=timedelta(hours=1), ttl=TTL)
        self.applications = ApplicationService(
            issuing=self.issuing,
            store=self.store,
            sealer=self.sealer,
            keyer=keyer,
            signer=signer(key, self.clock),
            schedule=self.schedule,
            clock=self.clock,
        )
        self.reconciler = Reconciler(
            self.applications,
            self.store,
            interval=INTERVAL.total_seconds(),
            concurrency=2,
            rate=1_000_000.0,
            postpone=timedelta(hours=1),
            clock=self.clock,
        )


@pytest.fixture
def world() -> World:
    """A fresh set of fakes per test."""
    return World()


async def test_an_eligible_person_gets_the_certificate_issue_gives(world: World) -> None:
    """Eligible now: ISSUED at once, with the very code Issue gives (same UVCI, same text)."""
    world.federation.answers = {Registry.CITY: VACCINATED}
    view = await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)
    issued = await world.issuing.issue(QUERY)
    assert view.application.status is ApplicationStatus.ISSUED
    assert view.application.closed_at == NOW
    assert view.application.sealed_person is None
    assert view.certificate is not None
    assert issued.certificate is not None
    assert view.certificate.record.uvci == issued.certificate.record.uvci
    assert view.certificate.qr_text == issued.certificate.qr_text
    assert len(world.certificates.rows) == 1


async def test_a_person_not_found_is_pending_with_the_denial(world: World) -> None:
    """Unknown to both registries: PENDING with NOT_FOUND, one check, the next one an
    interval later; what re-checking needs is sealed, bound to the application."""
    view = await world.applications.submit(
        QUERY, contact=CONTACT, category=ApplicationCategory.VACCINATION_NOT_FOUND
    )
    record = view.application
    assert record.status is ApplicationStatus.PENDING
    assert record.denial is DenialReason.NOT_FOUND
    assert (record.checks, record.checked_at, record.next_check_at) == (1, NOW, NOW + INTERVAL)
    assert record.sealed_person is not None
    opened = world.sealer.open(Purpose.PERSON, record.id, record.sealed_person)
    assert decode_person(opened) == (QUERY, CONTACT)
    assert CONTACT.encode() not in record.sealed_person
    assert not world.tally.counted  # re-checks are counted with applications, not as denials


async def test_a_second_submission_returns_the_open_one(world: World) -> None:
    """One open application per person: the second gets the first back, unchanged, without
    asking the registries again."""
    first = await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)
    asked = world.federation.asked
    second = await world.applications.submit(
        replace(QUERY, last_name="Белова-Иванова"), contact="other@example.org", category=OTHER
    )
    assert second.application.id == first.application.id
    assert world.federation.asked == asked
    assert len(world.store.held) == 1


@pytest.mark.parametrize(
    "answers",
    [
        {Registry.CITY: SourceStatus.FAILED, Registry.FEDERAL: SourceStatus.TIMED_OUT},
        {Registry.FEDERAL: SourceStatus.FAILED},  # city: not found, federal could know
        {Registry.CITY: ILL, Registry.FEDERAL: SourceStatus.FAILED},  # a degraded illness
    ],
    ids=["both-down", "federal-down", "degraded-illness"],
)
async def test_without_a_full_answer_the_submission_is_recorded_unchecked(
    world: World, answers: dict[Registry, object]
) -> None:
    """Registries down (Issue would be UNAVAILABLE, or only degraded): still recorded,
    PENDING, no check counted, no denial, due at once for the reconciler."""
    world.federation.answers = answers  # type: ignore[assignment]
    view = await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)
    record = view.application
    assert record.status is ApplicationStatus.PENDING
    assert (record.checks, record.checked_at, record.denial) == (0, None, None)
    assert record.next_check_at == NOW


async def test_reading_an_issued_application_re_signs_the_same_code(world: World) -> None:
    """GetApplication re-signs from what the store keeps: the same text, every time."""
    world.federation.answers = {Registry.CITY: VACCINATED}
    submitted = await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)
    world.clock.advance(timedelta(days=2))
    read = await world.applications.get(submitted.application.id)
    assert read.certificate is not None
    assert submitted.certificate is not None
    assert read.certificate.qr_text == submitted.certificate.qr_text
    assert read.certificate.basis == VACCINATED.vaccinations


async def test_an_unknown_application_is_not_found(world: World) -> None:
    """An id nobody was given: NotFound."""
    with pytest.raises(NotFound):
        await world.applications.get(uuid.uuid4())


async def test_the_reconciler_issues_once_the_data_arrives(world: World) -> None:
    """A pass before the next check does nothing; after it, the arrived data gets the
    code and the application closes with its sealed person erased."""
    submitted = await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)
    world.federation.answers = {Registry.FEDERAL: replace(VACCINATED, registry=Registry.FEDERAL)}
    early = await world.reconciler.run_pass()
    assert early.outcomes == {}
    world.clock.advance(INTERVAL)
    report = await world.reconciler.run_pass()
    assert report.outcomes == {Outcome.ISSUED: 1}
    record = world.store[submitted.application.id]
    assert record.status is ApplicationStatus.ISSUED
    assert record.sealed_person is None
    assert record.checks == 2
    view = await world.applications.get(record.id)
    assert view.certificate is not None
    assert view.certificate.record.uvci == record.uvci


async def test_an_outage_pauses_the_pass_and_counts_nothing(world: World) -> None:
    """No registry answering: the pass pauses at once, every application is released as
    it was, and the next pass checks them all."""
    for index in range(5):
        query = replace(QUERY, snils=None, passport=f"45101234{index:02d}")
        await world.applications.submit(query, contact=CONTACT, category=OTHER)
    before = {k: h.record for k, h in world.store.held.items()}
    world.federation.answers = {
        Registry.CITY: SourceStatus.FAILED,
        Registry.FEDERAL: SourceStatus.FAILED,
    }
    world.clock.advance(TTL)  # a counted denial would now close them
    report = await world.reconciler.run_pass()
    assert report.paused
    assert report.checked == 0
    assert {k: h.record for k, h in world.store.held.items()} == before
    assert all(h.lease is None for h in world.store.held.values())

    world.federation.answers = {}
    report = await world.reconciler.run_pass()
    assert report.outcomes == {Outcome.EXPIRED: 5}


async def test_expiry_closes_with_the_last_denial(world: World) -> None:
    """At the time to live, a check that denies closes the application EXPIRED with that
    denial; the last check falls on the expiry instant itself."""
    world.federation.answers = {Registry.CITY: replace(VACCINATED, vaccinations=())}
    submitted = await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)
    assert submitted.application.denial is DenialReason.NO_RECORDS
    for _ in range(1_000):  # about 720 checks: hourly at most, for 30 days
        record = world.store[submitted.application.id]
        if not record.is_open:
            break
        assert record.next_check_at is not None
        world.clock.now = record.next_check_at
        await world.reconciler.run_pass()
    record = world.store[submitted.application.id]
    assert record.status is ApplicationStatus.EXPIRED
    assert record.denial is DenialReason.NO_RECORDS
    assert record.closed_at == submitted.application.submitted_at + TTL
    assert record.sealed_person is None


def test_the_wait_doubles_after_the_steady_checks_up_to_the_cap() -> None:
    """Three checks an interval apart, then 2, 4, 8 ... intervals, capped, and never past
    the expiry instant."""
    schedule = Schedule(interval=INTERVAL, max_backoff=timedelta(minutes=10), ttl=TTL)
    waits = [schedule.next_check(NOW, checks, NOW) - NOW for checks in range(1, 10)]
    minutes = [w / timedelta(minutes=1) for w in waits]
    assert minutes == [1, 1, 1, 2, 4, 8, 10, 10, 10]
    near_the_end = NOW + TTL - timedelta(seconds=5)
    assert schedule.next_check(NOW, 100, near_the_end) == NOW + TTL


def test_the_reconciler_gives_way_to_the_calls_being_answered() -> None:
    """The full rate on an idle server; 1 + c/100 times slower while the process answers
    c calls a second, never stopped."""
    calls = [0.0]
    pacer = Pacer(100.0, lambda: calls[0])
    assert pacer.gap() == pytest.approx(0.01)
    calls[0] = 100.0
    assert pacer.gap() == pytest.approx(0.02)
    calls[0] = 600.0
    assert pacer.gap() == pytest.approx(0.07)
    assert Pacer(100.0).gap() == pytest.approx(0.01)


def test_a_sealed_value_opens_only_for_its_application_and_purpose() -> None:
    """AES-GCM with the application id and purpose as associated data: another row's id,
    another purpose, another key, or one flipped bit, and it does not open."""
    sealer = Sealer(b"a" * 32)
    owner, other = uuid.uuid4(), uuid.uuid4()
    sealed = sealer.seal(Purpose.PERSON, owner, b"secret")
    assert sealer.open(Purpose.PERSON, owner, sealed) == b"secret"
    assert sealer.seal(Purpose.PERSON, owner, b"secret") != sealed  # a fresh nonce each time
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for purpose, who, data, key in (
        (Purpose.PERSON, other, sealed, b"a" * 32),
        (Purpose.CERTIFICATE, owner, sealed, b"a" * 32),
        (Purpose.PERSON, owner, sealed, b"b" * 32),
        (Purpose.PERSON, owner, tampered, b"a" * 32),
        (Purpose.PERSON, owner, b"\x01short", b"a" * 32),
    ):
        with pytest.raises(SealedDataError) as caught:
            Sealer(key).open(purpose, who, data)
        assert "secret" not in str(caught.value)
    assert "a" * 8 not in repr(sealer)


def test_the_sealer_needs_a_256_bit_key() -> None:
    """AES-256: exactly 32 bytes."""
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"k" * 16)


def test_a_sealed_certificate_round_trips_every_kind_of_basis_event() -> None:
    """The hcert map and basis events come back equal, lab instants and open episodes too."""
    basis = (
        Vaccination("Gam-COVID-Vac", 2, date(2021, 6, 1), Registry.FEDERAL),
        IllnessEpisode(date(2021, 5, 1), Confirmation.CT, None, Registry.CITY),
        IllnessEpisode(date(2021, 5, 1), Confirmation.PCR, date(2021, 5, 20), Registry.CITY),
        LabResult(
            LabMethod.PCR, False, datetime(2021, 7, 1, 9, 5, tzinfo=UTC), "LAB", Registry.CITY
        ),
    )
    hcert = {"ver": "1.3.0", "nam": {"fn": "Иванов"}, "dob": "1980-01-01", "v": [{"dn": 2}]}
    assert decode_certificate(encode_certificate(hcert, basis)) == (hcert, basis)
    query = replace(QUERY, oms_policy="7753100000000101", passport="4510123456")
    assert decode_person(encode_person(query, CONTACT)) == (query, CONTACT)


async def test_the_next_pass_comes_when_the_next_application_falls_due(world: World) -> None:
    """Between passes the reconciler waits for the earliest due application, not a whole
    interval after its last pass: nothing open, an interval; due soon, until then; due
    already, a second (the floor); due later than an interval, the interval."""
    reconciler = world.reconciler
    assert await reconciler.wait_before_next_pass() == INTERVAL.total_seconds()
    await world.applications.submit(QUERY, contact=CONTACT, category=OTHER)  # due in 60 s
    world.clock.advance(timedelta(seconds=45))
    assert await reconciler.wait_before_next_pass() == 15
    world.clock.advance(timedelta(seconds=30))
    assert await reconciler.wait_before_next_pass() == 1
    world.clock.advance(-INTERVAL * 5)
    assert await reconciler.wait_before_next_pass() == INTERVAL.total_seconds()
