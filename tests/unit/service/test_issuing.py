"""The Issue use case with fakes: no PostgreSQL, no server, no registry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from regfed.domain.model import (
    Confirmation,
    DenialReason,
    IllnessEpisode,
    PersonQuery,
    PersonRecord,
    Registry,
    Vaccination,
    moscow_date,
)
from regfed.domain.policy import PolicyConfig
from regfed.errors import RegistriesUnavailable
from regfed.federation.fanout import SourceStatus
from regfed.hcert.verify import Verdict
from regfed.service.issuing import IssueService
from regfed.service.personkey import PersonKeyer
from regfed.service.revoking import RevocationService
from regfed.service.verifying import VerifyService
from tests.unit.service.fakes import (
    NOW,
    FakeFederation,
    FakeRevocations,
    FakeStore,
    FakeTally,
    FixedClock,
    StaticTrust,
    signer,
    signing_key,
)

TODAY = moscow_date(NOW)
QUERY = PersonQuery("Белова", "Мария", "", date(1985, 4, 12), snils="14628735990")
KNOWN = PersonRecord(
    Registry.CITY, "Белова", "Мария", "Сергеевна", date(1985, 4, 12), snils="14628735990"
)
DOSES = (
    Vaccination("Gam-COVID-Vac", 1, TODAY - timedelta(days=60), Registry.CITY),
    Vaccination("Gam-COVID-Vac", 2, TODAY - timedelta(days=39), Registry.CITY),
)
VACCINATED = replace(KNOWN, vaccinations=DOSES)
ILL = replace(
    VACCINATED,
    illnesses=(IllnessEpisode(TODAY - timedelta(days=10), Confirmation.PCR, None, Registry.CITY),),
)
# A record the policy denies for each reason but NOT_FOUND (no record at all).
DENIED = {
    DenialReason.INCOMPLETE_VACCINATION: replace(KNOWN, vaccinations=DOSES[:1]),
    DenialReason.NO_RECORDS: KNOWN,
    DenialReason.BASIS_EXPIRED: replace(
        KNOWN,
        vaccinations=tuple(replace(d, day=d.day - timedelta(days=400)) for d in DOSES),
    ),
    DenialReason.VACCINE_NOT_RECOGNISED: replace(
        KNOWN, vaccinations=tuple(replace(d, product="Comirnaty") for d in DOSES)
    ),
}


class World:
    """The Issue use case over fakes, with the Revoke and Verify use cases beside it."""

    def __init__(self) -> None:
        self.clock = FixedClock()
        self.federation = FakeFederation()
        self.store = FakeStore()
        self.tally = FakeTally()
        self.revocations = FakeRevocations()
        key = signing_key()
        self.issuing = IssueService(
            federation=self.federation,
            policy=PolicyConfig(),
            store=self.store,
            denials=self.tally,
            signer=signer(key, self.clock),
            keyer=PersonKeyer(b"k" * 32),
            clock=self.clock,
        )
        self.revoking = RevocationService(self.store, self.revocations, clock=self.clock)
        self.verifying = VerifyService(
            StaticTrust(key), self.revocations, clock=self.clock, clock_skew=timedelta(0)
        )


@pytest.fixture
def world() -> World:
    """A fresh set of fakes per test."""
    return World()


async def test_eligible_person_gets_a_certificate_that_verifies(world: World) -> None:
    """The city's full series gives a vaccination code our own Verify accepts."""
    world.federation.answers = {Registry.CITY: VACCINATED}
    result = await world.issuing.issue(QUERY)
    assert result.certificate is not None
    assert result.denial is None
    verification, _ = await world.verifying.verify(result.certificate.qr_text)
    assert verification.verdict is Verdict.VALID
    assert verification.uvci == result.certificate.record.uvci


async def test_the_same_person_and_basis_get_the_same_code(world: World) -> None:
    """Idempotent: a second Issue returns the first certificate, byte for byte."""
    world.federation.answers = {Registry.CITY: VACCINATED}
    first = await world.issuing.issue(QUERY)
    world.clock.advance(timedelta(hours=5))
    second = await world.issuing.issue(QUERY)
    assert first.certificate is not None
    assert second.certificate is not None
    assert second.certificate.record.uvci == first.certificate.record.uvci
    assert second.certificate.qr_text == first.certificate.qr_text
    assert len(world.store.rows) == 1


async def test_a_revoked_certificate_is_never_handed_back(world: World) -> None:
    """After a revocation the same basis gives a new certificate, never the revoked one."""
    world.federation.answers = {Registry.CITY: VACCINATED}
    first = await world.issuing.issue(QUERY)
    assert first.certificate is not None
    await world.revoking.revoke(first.certificate.record.uvci, "issued in error")
    again = await world.issuing.issue(QUERY)
    assert again.certificate is not None
    assert again.certificate.record.uvci != first.certificate.record.uvci
    revoked, _ = await world.verifying.verify(first.certificate.qr_text)
    assert revoked.verdict is Verdict.REVOKED


@pytest.mark.parametrize("reason", list(DENIED), ids=lambda r: r.name)
@pytest.mark.parametrize("silent", [SourceStatus.FAILED, SourceStatus.TIMED_OUT])
async def test_a_degraded_lookup_never_gives_an_overturnable_denial(
    world: World, reason: DenialReason, silent: SourceStatus
) -> None:
    """With the federal registry silent, a denial its data could lift is UNAVAILABLE."""
    world.federation.answers = {Registry.CITY: DENIED[reason], Registry.FEDERAL: silent}
    with pytest.raises(RegistriesUnavailable):
        await world.issuing.issue(QUERY)
    assert not world.tally.counted


async def test_not_found_with_a_registry_silent_is_unavailable(world: World) -> None:
    """Unknown to the registry that answered: the silent one may know the person."""
    world.federation.answers = {Registry.CITY: SourceStatus.TIMED_OUT}
    with pytest.raises(RegistriesUnavailable):
        await world.issuing.issue(QUERY)


@pytest.mark.parametrize("reason", list(DENIED), ids=lambda r: r.name)
async def test_with_every_registry_answering_each_denial_is_given(
    world: World, reason: DenialReason
) -> None:
    """The same records with both registries answering: the denial stands and is counted."""
    world.federation.answers = {Registry.CITY: DENIED[reason]}
    result = await world.issuing.issue(QUERY)
    assert result.denial is reason
    assert not result.degraded
    assert world.tally.counted == {reason: 1}


async def test_active_illness_stands_alone_even_degraded(world: World) -> None:
    """More data cannot lift an active illness, so it is given with a registry silent."""
    world.federation.answers = {Registry.CITY: ILL, Registry.FEDERAL: SourceStatus.FAILED}
    result = await world.issuing.issue(QUERY)
    assert result.denial is DenialReason.ACTIVE_ILLNESS
    assert result.degraded


async def test_no_registry_answering_is_unavailable(world: World) -> None:
    """Both registries silent: nothing can be said."""
    world.federation.answers = {
        Registry.CITY: SourceStatus.FAILED,
        Registry.FEDERAL: SourceStatus.TIMED_OUT,
    }
    with pytest.raises(RegistriesUnavailable):
        await world.issuing.issue(QUERY)


async def test_a_certificate_on_the_answering_registry_alone_is_degraded(world: World) -> None:
    """A grant needs no more data: it is issued with a registry silent, marked degraded."""
    world.federation.answers = {Registry.CITY: VACCINATED, Registry.FEDERAL: SourceStatus.FAILED}
    result = await world.issuing.issue(QUERY)
    assert result.certificate is not None
    assert result.degraded
    assert result.certificate.record.degraded
