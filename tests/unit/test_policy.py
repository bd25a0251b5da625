"""The eligibility policy (DESIGN.md, "Eligibility policy"): pure, no database, no server."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfed.domain.model import (
    MOSCOW,
    CertificateKind,
    Confirmation,
    DenialReason,
    Event,
    IllnessEpisode,
    LabMethod,
    LabResult,
    PersonRecord,
    Registry,
    Vaccination,
    moscow_midnight,
)
from regfed.domain.policy import BasisKind, Decision, Denial, Grant, PolicyConfig, decide
from regfed.domain.vaccines import DEFAULT_VACCINES

CITY, FEDERAL = Registry.CITY, Registry.FEDERAL
NOW = datetime(2021, 7, 15, 12, 0, tzinfo=MOSCOW)
TODAY = date(2021, 7, 15)
CONFIG = PolicyConfig()
SECOND = timedelta(seconds=1)


# --- builders ----------------------------------------------------------------------------


def ago(days: int) -> date:
    """The Moscow date ``days`` days before TODAY (negative: after)."""
    return TODAY - timedelta(days=days)


def person(*events: Event) -> PersonRecord:
    """A city record holding ``events``."""
    return PersonRecord(
        registry=CITY,
        last_name="Иванова",
        first_name="Анна",
        middle_name="Сергеевна",
        birth_date=date(1980, 5, 17),
        snils="11223344595",
        vaccinations=tuple(e for e in events if isinstance(e, Vaccination)),
        illnesses=tuple(e for e in events if isinstance(e, IllnessEpisode)),
        lab_results=tuple(e for e in events if isinstance(e, LabResult)),
    )


def shot(product: str, dose: int, day: date, source: Registry = CITY) -> Vaccination:
    """One vaccine dose."""
    return Vaccination(product=product, dose=dose, day=day, source=source)


def sputnik(day1: date, day2: date) -> tuple[Vaccination, Vaccination]:
    """A complete Sputnik V series."""
    return shot("Gam-COVID-Vac", 1, day1), shot("Gam-COVID-Vac", 2, day2)


def illness(
    diagnosed: date,
    recovered: date | None = None,
    confirmation: Confirmation = Confirmation.PCR,
    source: Registry = CITY,
) -> IllnessEpisode:
    """One illness episode (``recovered`` None: still ill)."""
    return IllnessEpisode(diagnosed, confirmation, recovered, source)


def pcr(sampled_at: datetime, *, positive: bool = False, source: Registry = CITY) -> LabResult:
    """A PCR result (negative unless ``positive``)."""
    return LabResult(LabMethod.PCR, positive, sampled_at, "LAB-1", source)


def igg(sampled_at: datetime, *, positive: bool = True, source: Registry = CITY) -> LabResult:
    """An ELISA IgG result (antibodies found unless ``positive`` is False)."""
    return LabResult(LabMethod.ELISA_IGG, positive, sampled_at, "LAB-2", source)


def grant(decision: Decision) -> Grant:
    """The decision, asserted to be a grant."""
    assert isinstance(decision, Grant), decision
    return decision


def reason(decision: Decision) -> DenialReason:
    """The reason of a decision asserted to be a denial."""
    assert isinstance(decision, Denial), decision
    return decision.reason


# --- not found, no records ---------------------------------------------------------------


def test_unknown_person_is_not_found() -> None:
    """Nobody knows the person: NOT_FOUND."""
    assert decide(None, NOW, CONFIG) == Denial(DenialReason.NOT_FOUND)


def test_known_person_without_events_has_no_records() -> None:
    """A known person with no events: NO_RECORDS."""
    assert reason(decide(person(), NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_naive_now_is_rejected() -> None:
    """A naive ``now`` is a programming error, not a silent local-time guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(person(), NOW.replace(tzinfo=None), CONFIG)


# --- 1. active illness -------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, 1, 60, -1, -30])
def test_open_episode_within_60_days_or_future_is_active(days: int) -> None:
    """An open episode diagnosed 0..60 days ago, or dated in the future, blocks."""
    assert reason(decide(person(illness(ago(days))), NOW, CONFIG)) is DenialReason.ACTIVE_ILLNESS


def test_open_episode_61_days_old_no_longer_blocks() -> None:
    """An open episode diagnosed 61 days ago is no longer active (and is no basis)."""
    assert reason(decide(person(illness(ago(61))), NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_illness_window_uses_the_moscow_date() -> None:
    """'Today' is the Moscow date: 22:00 UTC is already the next day in Moscow."""
    now = datetime(2021, 7, 14, 22, 0, tzinfo=UTC)  # 2021-07-15 01:00 MSK
    record = person(illness(date(2021, 5, 15)))  # 61 days before the Moscow date
    assert reason(decide(record, now, CONFIG)) is DenialReason.NO_RECORDS


def test_active_illness_blocks_every_basis() -> None:
    """An open episode blocks a complete series, a recovery and a fresh negative PCR."""
    record = person(
        *sputnik(ago(40), ago(20)),
        illness(ago(100), ago(80)),
        pcr(NOW - timedelta(hours=1)),
        illness(ago(3)),
    )
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.ACTIVE_ILLNESS


def test_active_illness_wins_over_incomplete_vaccination() -> None:
    """Active illness is checked before any denial reason."""
    record = person(shot("Gam-COVID-Vac", 1, ago(10)), illness(ago(5)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.ACTIVE_ILLNESS


@pytest.mark.parametrize(
    "age",
    [timedelta(0), timedelta(hours=1), timedelta(days=14)],
    ids=["now", "1h", "exactly-14d"],
)
def test_recent_positive_pcr_blocks(age: timedelta) -> None:
    """A positive PCR sampled 0..14 days ago (inclusive) blocks."""
    record = person(pcr(NOW - age, positive=True))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.ACTIVE_ILLNESS


def test_positive_pcr_older_than_14_days_does_not_block() -> None:
    """14 days and 1 second after the sample the block is over."""
    record = person(pcr(NOW - timedelta(days=14) - SECOND, positive=True))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_positive_pcr_in_the_future_does_not_block() -> None:
    """A positive PCR dated after now is ignored."""
    record = person(pcr(NOW + SECOND, positive=True))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_recovery_on_the_sample_day_lifts_the_pcr_block() -> None:
    """A recovery recorded on the positive sample's day counts as after it."""
    record = person(pcr(NOW - timedelta(days=2), positive=True), illness(ago(10), ago(2)))
    assert grant(decide(record, NOW, CONFIG)).basis_kind is BasisKind.RECOVERY


def test_recovery_before_the_sample_day_does_not_lift_the_pcr_block() -> None:
    """A recovery the day before the positive sample leaves the block in place."""
    record = person(pcr(NOW - timedelta(days=2), positive=True), illness(ago(10), ago(3)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.ACTIVE_ILLNESS


def test_pcr_sample_day_is_the_moscow_day() -> None:
    """A sample at 22:30 UTC belongs to the next Moscow day: a recovery on the UTC day is
    before it and does not lift the block; one on the Moscow day does."""
    sampled = datetime(2021, 7, 10, 22, 30, tzinfo=UTC)  # 2021-07-11 01:30 MSK
    before = person(pcr(sampled, positive=True), illness(date(2021, 7, 1), date(2021, 7, 10)))
    assert reason(decide(before, NOW, CONFIG)) is DenialReason.ACTIVE_ILLNESS
    same = person(pcr(sampled, positive=True), illness(date(2021, 7, 1), date(2021, 7, 11)))
    assert isinstance(decide(same, NOW, CONFIG), Grant)


def test_negative_pcr_does_not_block() -> None:
    """Only a positive PCR blocks; a negative one is a test basis."""
    assert grant(decide(person(pcr(NOW - SECOND)), NOW, CONFIG)).kind is CertificateKind.TEST


def test_custom_illness_windows() -> None:
    """illness_active_days and positive_pcr_block_days come from the configuration."""
    config = PolicyConfig(illness_active_days=10, positive_pcr_block_days=3)
    assert reason(decide(person(illness(ago(10))), NOW, config)) is DenialReason.ACTIVE_ILLNESS
    assert reason(decide(person(illness(ago(11))), NOW, config)) is DenialReason.NO_RECORDS
    three_days = pcr(NOW - timedelta(days=3), positive=True)
    later = pcr(NOW - timedelta(days=3) - SECOND, positive=True)
    assert reason(decide(person(three_days), NOW, config)) is DenialReason.ACTIVE_ILLNESS
    assert reason(decide(person(later), NOW, config)) is DenialReason.NO_RECORDS


# --- 2. vaccination ----------------------------------------------------------------------


def test_complete_series_grants_vaccination_from_the_last_dose_day() -> None:
    """Doses 1..2 of Sputnik V: vaccination certificate from the last dose's midnight, 365 days."""
    doses = sputnik(ago(40), ago(19))
    result = grant(decide(person(*doses), NOW, CONFIG))
    assert result.kind is CertificateKind.VACCINATION
    assert result.basis_kind is BasisKind.VACCINATION
    assert result.product == DEFAULT_VACCINES["Gam-COVID-Vac"]
    assert result.basis == doses
    assert result.valid_from == moscow_midnight(ago(19))
    assert result.valid_until == moscow_midnight(ago(19)) + timedelta(days=365)


def test_single_dose_product_is_complete_with_one_dose() -> None:
    """Sputnik Light needs one dose."""
    dose = shot("Sputnik-Light", 1, ago(5))
    result = grant(decide(person(dose), NOW, CONFIG))
    assert result.basis == (dose,)
    assert result.product == DEFAULT_VACCINES["Sputnik-Light"]


def test_last_dose_today_counts_from_midnight() -> None:
    """A series completed today is valid from today's Moscow midnight."""
    result = grant(decide(person(*sputnik(ago(21), TODAY)), NOW, CONFIG))
    assert result.valid_from == moscow_midnight(TODAY)


def test_series_spread_across_registries_is_complete() -> None:
    """Dose 1 in the city registry and dose 2 in the federal one complete a series."""
    first = shot("Gam-COVID-Vac", 1, ago(40), CITY)
    second = shot("Gam-COVID-Vac", 2, ago(19), FEDERAL)
    result = grant(decide(person(second, first), NOW, CONFIG))
    assert result.basis == (first, second)
    assert [d.source for d in result.basis] == [CITY, FEDERAL]


def test_duplicate_dose_number_uses_its_latest_day() -> None:
    """A dose number recorded twice counts on its latest day."""
    first = shot("Gam-COVID-Vac", 1, ago(60))
    early, late = shot("Gam-COVID-Vac", 2, ago(40)), shot("Gam-COVID-Vac", 2, ago(30))
    result = grant(decide(person(late, first, early), NOW, CONFIG))
    assert result.basis == (first, late)
    assert result.valid_from == moscow_midnight(ago(30))


def test_duplicate_dose_on_the_same_day_keeps_the_city_copy() -> None:
    """The same dose in both registries on the same day: the city's copy is the basis."""
    first = shot("Gam-COVID-Vac", 1, ago(60))
    federal = shot("Gam-COVID-Vac", 2, ago(40), FEDERAL)
    city = shot("Gam-COVID-Vac", 2, ago(40), CITY)
    for order in ((federal, city), (city, federal)):
        assert grant(decide(person(first, *order), NOW, CONFIG)).basis == (first, city)


def test_valid_from_is_the_latest_dose_day_even_out_of_order() -> None:
    """Validity starts on the latest day among the doses, whatever their numbers."""
    first, second = shot("Gam-COVID-Vac", 1, ago(10)), shot("Gam-COVID-Vac", 2, ago(30))
    result = grant(decide(person(first, second), NOW, CONFIG))
    assert result.basis == (first, second)
    assert result.valid_from == moscow_midnight(ago(10))


def test_extra_doses_are_not_part_of_the_basis() -> None:
    """A booster numbered beyond the series is not in the basis, nor does it move valid_from."""
    doses = sputnik(ago(300), ago(280))
    booster = shot("Gam-COVID-Vac", 3, ago(5))
    result = grant(decide(person(*doses, booster), NOW, CONFIG))
    assert result.basis == doses
    assert result.valid_from == moscow_midnight(ago(280))


def test_vaccination_expires_exactly_365_days_after_the_last_dose() -> None:
    """At valid_until itself the series no longer counts (valid_until is exclusive)."""
    doses = sputnik(ago(400), ago(365))
    now = moscow_midnight(TODAY)  # exactly 365 days after the last dose's midnight
    assert reason(decide(person(*doses), now, CONFIG)) is DenialReason.BASIS_EXPIRED
    assert grant(decide(person(*doses), now - SECOND, CONFIG)).valid_until == now


def test_vaccination_364_days_ago_still_counts() -> None:
    """364 days after the last dose the certificate is still valid."""
    result = grant(decide(person(*sputnik(ago(390), ago(364))), NOW, CONFIG))
    assert result.valid_until == moscow_midnight(ago(364)) + timedelta(days=365)


def test_dose_dated_after_today_has_not_been_given() -> None:
    """A dose dated tomorrow does not complete a series: the series is incomplete."""
    record = person(*sputnik(ago(20), ago(-1)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.INCOMPLETE_VACCINATION


def test_doses_of_different_products_do_not_combine() -> None:
    """Dose 1 of one product and dose 2 of another complete nothing."""
    record = person(shot("Gam-COVID-Vac", 1, ago(40)), shot("EpiVacCorona", 2, ago(20)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.INCOMPLETE_VACCINATION


def test_latest_of_two_complete_series_wins() -> None:
    """Two complete recognised series: the later one is valid longer."""
    light = shot("Sputnik-Light", 1, ago(10))
    result = grant(decide(person(*sputnik(ago(200), ago(180)), light), NOW, CONFIG))
    assert result.basis == (light,)


def test_equal_series_resolve_by_product_code() -> None:
    """Two series completed the same day resolve deterministically (by product code)."""
    epivac = (shot("EpiVacCorona", 1, ago(40)), shot("EpiVacCorona", 2, ago(20)))
    record = person(*sputnik(ago(41), ago(20)), *epivac)
    assert grant(decide(record, NOW, CONFIG)).basis == epivac


def test_custom_catalogue_can_recognise_a_product() -> None:
    """A product recognised by configuration counts towards a vaccination certificate."""
    comirnaty = dataclasses.replace(DEFAULT_VACCINES["Comirnaty"], recognised=True)
    config = PolicyConfig(vaccines={**DEFAULT_VACCINES, "Comirnaty": comirnaty})
    record = person(shot("Comirnaty", 1, ago(50)), shot("Comirnaty", 2, ago(29)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.VACCINE_NOT_RECOGNISED
    assert grant(decide(record, NOW, config)).product == comirnaty


def test_custom_vaccination_window() -> None:
    """vaccination_valid_days comes from the configuration."""
    config = PolicyConfig(vaccination_valid_days=30)
    doses = sputnik(ago(50), ago(29))
    assert grant(decide(person(*doses), NOW, config)).valid_until == moscow_midnight(ago(-1))
    late = sputnik(ago(50), ago(30))
    assert reason(decide(person(*late), moscow_midnight(TODAY), config)) is (
        DenialReason.BASIS_EXPIRED
    )


# --- 2. recovery and antibodies ----------------------------------------------------------


@pytest.mark.parametrize("confirmation", list(Confirmation))
def test_recovered_episode_grants_recovery(confirmation: Confirmation) -> None:
    """An episode with a recovery date, any default confirmation: recovery for 180 days."""
    episode = illness(ago(40), ago(20), confirmation)
    result = grant(decide(person(episode), NOW, CONFIG))
    assert result.kind is CertificateKind.RECOVERY
    assert result.basis_kind is BasisKind.RECOVERY
    assert result.basis == (episode,)
    assert result.product is None
    assert result.valid_from == moscow_midnight(ago(20))
    assert result.valid_until == moscow_midnight(ago(20)) + timedelta(days=180)


def test_recovery_expires_exactly_180_days_after_recovery() -> None:
    """At the 180th day's midnight the recovery no longer counts."""
    record = person(illness(ago(200), ago(180)))
    assert reason(decide(record, moscow_midnight(TODAY), CONFIG)) is DenialReason.BASIS_EXPIRED
    assert isinstance(decide(record, moscow_midnight(TODAY) - SECOND, CONFIG), Grant)


def test_recovery_dated_in_the_future_neither_counts_nor_expires() -> None:
    """A recovery dated tomorrow is no basis yet: NO_RECORDS, not BASIS_EXPIRED."""
    record = person(illness(ago(70), ago(-1)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_unaccepted_confirmation_is_no_basis() -> None:
    """A confirmation missing from recovery_confirmations gives no recovery, fresh or old."""
    config = PolicyConfig(recovery_confirmations=frozenset({Confirmation.PCR}))
    fresh = person(illness(ago(40), ago(20), Confirmation.CT))
    old = person(illness(ago(400), ago(380), Confirmation.DOCUMENTS))
    assert reason(decide(fresh, NOW, config)) is DenialReason.NO_RECORDS
    assert reason(decide(old, NOW, config)) is DenialReason.NO_RECORDS
    assert isinstance(decide(fresh, NOW, CONFIG), Grant)


def test_custom_recovery_window() -> None:
    """recovery_valid_days comes from the configuration."""
    config = PolicyConfig(recovery_valid_days=30)
    record = person(illness(ago(60), ago(30)))
    assert reason(decide(record, NOW, config)) is DenialReason.BASIS_EXPIRED
    assert grant(decide(record, NOW, CONFIG)).valid_until == moscow_midnight(ago(-150))


def test_positive_igg_grants_recovery_from_the_sample_day() -> None:
    """Antibodies found: a recovery certificate from the sample's Moscow midnight, 180 days."""
    sampled = datetime(2021, 7, 9, 22, 30, tzinfo=UTC)  # 2021-07-10 01:30 MSK
    result = igg(sampled)
    decision = grant(decide(person(result), NOW, CONFIG))
    assert decision.kind is CertificateKind.RECOVERY
    assert decision.basis_kind is BasisKind.ANTIBODIES
    assert decision.basis == (result,)
    assert decision.valid_from == moscow_midnight(date(2021, 7, 10))
    assert decision.valid_until == moscow_midnight(date(2021, 7, 10)) + timedelta(days=180)


def test_negative_igg_is_no_basis() -> None:
    """No antibodies found: nothing counts."""
    record = person(igg(NOW - timedelta(days=3), positive=False))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_igg_expires_after_its_window() -> None:
    """A positive IgG whose 180 days have passed: BASIS_EXPIRED; a custom window applies."""
    old = person(igg(moscow_midnight(ago(180)) + timedelta(hours=9)))
    assert reason(decide(old, NOW, CONFIG)) is DenialReason.BASIS_EXPIRED
    recent = person(igg(moscow_midnight(ago(20))))
    config = PolicyConfig(antibodies_valid_days=20)
    assert reason(decide(recent, NOW, config)) is DenialReason.BASIS_EXPIRED
    assert isinstance(decide(recent, NOW, CONFIG), Grant)


def test_igg_sampled_after_now_does_not_count() -> None:
    """An IgG sampled after now, even later today, is no basis yet (and not expired)."""
    for sampled in (NOW + SECOND, NOW + timedelta(days=1)):
        assert reason(decide(person(igg(sampled)), NOW, CONFIG)) is DenialReason.NO_RECORDS
    assert grant(decide(person(igg(NOW)), NOW, CONFIG)).valid_from == moscow_midnight(TODAY)


# --- 2. PCR test -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age",
    [timedelta(0), timedelta(hours=1), timedelta(hours=72) - SECOND],
    ids=["now", "1h", "72h-1s"],
)
def test_fresh_negative_pcr_grants_a_test_certificate(age: timedelta) -> None:
    """A negative PCR sampled less than 72 h ago: a test certificate from the sample instant."""
    sample = pcr(NOW - age)
    result = grant(decide(person(sample), NOW, CONFIG))
    assert result.kind is CertificateKind.TEST
    assert result.basis_kind is BasisKind.PCR_TEST
    assert result.basis == (sample,)
    assert result.valid_from == sample.sampled_at
    assert result.valid_until == sample.sampled_at + timedelta(hours=72)


@pytest.mark.parametrize(
    "age", [timedelta(hours=72), timedelta(hours=72) + SECOND], ids=["72h", "72h+1s"]
)
def test_pcr_72_hours_old_has_expired(age: timedelta) -> None:
    """At exactly 72 h the test's validity has ended (valid_until is exclusive)."""
    assert reason(decide(person(pcr(NOW - age)), NOW, CONFIG)) is DenialReason.BASIS_EXPIRED


def test_pcr_sampled_in_the_future_does_not_count() -> None:
    """A negative PCR sampled one second after now is no basis, and not expired either."""
    assert reason(decide(person(pcr(NOW + SECOND)), NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_custom_test_window() -> None:
    """test_valid_hours comes from the configuration."""
    config = PolicyConfig(test_valid_hours=24)
    assert isinstance(decide(person(pcr(NOW - timedelta(hours=23))), NOW, config), Grant)
    old = person(pcr(NOW - timedelta(hours=24)))
    assert reason(decide(old, NOW, config)) is DenialReason.BASIS_EXPIRED


# --- 3. choosing among candidates ----------------------------------------------------------


def test_the_basis_valid_longest_wins() -> None:
    """A recent recovery outlasts an old vaccination, and is chosen."""
    episode = illness(ago(30), ago(10))
    record = person(*sputnik(ago(320), ago(300)), episode, pcr(NOW - SECOND))
    assert grant(decide(record, NOW, CONFIG)).basis == (episode,)


def test_a_test_can_outlast_an_old_vaccination() -> None:
    """A vaccination with one day left loses to a fresh PCR valid for three more days."""
    sample = pcr(NOW - SECOND)
    record = person(*sputnik(ago(390), ago(364)), sample)
    assert grant(decide(record, NOW, CONFIG)).basis == (sample,)


def test_tie_vaccination_beats_recovery() -> None:
    """Same valid_until: vaccination wins over recovery."""
    doses = sputnik(ago(220), ago(200))  # until TODAY + 165 days
    episode = illness(ago(40), ago(15))  # until TODAY + 165 days
    result = grant(decide(person(episode, *doses), NOW, CONFIG))
    assert result.basis == doses
    assert result.valid_until == moscow_midnight(ago(15)) + timedelta(days=180)


def test_tie_recovery_episode_beats_antibodies() -> None:
    """Same valid_until: a recovered episode wins over a positive IgG."""
    episode = illness(ago(40), ago(15))
    antibodies = igg(moscow_midnight(ago(15)) + timedelta(hours=10))
    result = grant(decide(person(antibodies, episode), NOW, CONFIG))
    assert result.basis_kind is BasisKind.RECOVERY


def test_tie_recovery_beats_test() -> None:
    """Same valid_until: recovery wins over a PCR test."""
    episode = illness(ago(200), ago(178))  # until midnight TODAY + 2 days
    sample = pcr(moscow_midnight(ago(1)))  # until midnight TODAY + 2 days
    result = grant(decide(person(sample, episode), NOW, CONFIG))
    assert result.basis == (episode,)


def test_tie_vaccination_beats_test() -> None:
    """Same valid_until: vaccination wins over a PCR test."""
    doses = sputnik(ago(390), ago(363))  # until midnight TODAY + 2 days
    sample = pcr(moscow_midnight(ago(1)))
    assert grant(decide(person(sample, *doses), NOW, CONFIG)).basis == doses


def test_tie_antibodies_beat_test() -> None:
    """Same valid_until: a recovery certificate from antibodies wins over a PCR test."""
    config = PolicyConfig(antibodies_valid_days=3)
    antibodies = igg(moscow_midnight(ago(1)) + timedelta(hours=5))  # until midnight TODAY + 2
    sample = pcr(moscow_midnight(ago(1)))
    assert grant(decide(person(sample, antibodies), NOW, config)).basis == (antibodies,)


def test_tie_between_equal_recoveries_prefers_the_city_copy() -> None:
    """The same recovery in both registries resolves to the city's copy, in either order."""
    city = illness(ago(40), ago(15), source=CITY)
    federal = illness(ago(40), ago(15), source=FEDERAL)
    for events in ((city, federal), (federal, city)):
        assert grant(decide(person(*events), NOW, CONFIG)).basis == (city,)


# --- 4. denial reasons -------------------------------------------------------------------


def test_incomplete_recognised_series() -> None:
    """Dose 1 of a two-dose recognised product only: INCOMPLETE_VACCINATION."""
    record = person(shot("Gam-COVID-Vac", 1, ago(10)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.INCOMPLETE_VACCINATION


def test_only_second_dose_is_incomplete() -> None:
    """Dose 2 without dose 1 is an incomplete series too."""
    record = person(shot("CoviVac", 2, ago(10)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.INCOMPLETE_VACCINATION


def test_unrecognised_next_to_incomplete_recognised_is_incomplete() -> None:
    """A complete unrecognised series beside an incomplete recognised one: INCOMPLETE."""
    record = person(
        shot("Comirnaty", 1, ago(90)),
        shot("Comirnaty", 2, ago(60)),
        shot("Gam-COVID-Vac", 1, ago(10)),
    )
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.INCOMPLETE_VACCINATION


@pytest.mark.parametrize("product", ["Comirnaty", "Spikevax", "Vaxzevria", "Jcovden"])
def test_only_unrecognised_products(product: str) -> None:
    """Vaccinations of unrecognised products only: VACCINE_NOT_RECOGNISED."""
    record = person(shot(product, 1, ago(40)), shot(product, 2, ago(20)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.VACCINE_NOT_RECOGNISED


def test_incomplete_wins_over_expired() -> None:
    """An incomplete series is more specific than an expired recovery."""
    record = person(shot("Gam-COVID-Vac", 1, ago(10)), illness(ago(400), ago(380)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.INCOMPLETE_VACCINATION


def test_not_recognised_wins_over_expired() -> None:
    """Only unrecognised vaccinations beside an expired test: VACCINE_NOT_RECOGNISED."""
    record = person(shot("Jcovden", 1, ago(30)), pcr(NOW - timedelta(days=5)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.VACCINE_NOT_RECOGNISED


def test_expired_recognised_series_beside_unrecognised_is_expired() -> None:
    """Not every vaccination is unrecognised, and the recognised series expired: BASIS_EXPIRED."""
    record = person(*sputnik(ago(500), ago(480)), shot("Jcovden", 1, ago(30)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.BASIS_EXPIRED


@pytest.mark.parametrize(
    "event",
    [
        illness(date(2020, 1, 1), date(2020, 1, 20)),
        igg(datetime(2020, 3, 1, 9, tzinfo=MOSCOW)),
        pcr(NOW - timedelta(days=30)),
    ],
    ids=["recovery", "antibodies", "pcr"],
)
def test_each_kind_of_expired_basis(event: Event) -> None:
    """An expired recovery, antibody result or negative PCR: BASIS_EXPIRED."""
    assert reason(decide(person(event), NOW, CONFIG)) is DenialReason.BASIS_EXPIRED


@pytest.mark.parametrize(
    "event",
    [
        pcr(NOW - timedelta(days=30), positive=True),
        igg(NOW - timedelta(days=3), positive=False),
        illness(ago(90)),
        shot("Gam-COVID-Vac", 3, ago(10)),
        shot("Unknown-Vaccine", 1, ago(10)),
    ],
    ids=["old-positive-pcr", "negative-igg", "old-open-episode", "lone-booster", "unknown-product"],
)
def test_events_that_are_no_basis_give_no_records(event: Event) -> None:
    """Events that never were a basis give NO_RECORDS, not BASIS_EXPIRED."""
    assert reason(decide(person(event), NOW, CONFIG)) is DenialReason.NO_RECORDS


def test_unknown_products_are_ignored() -> None:
    """A product missing from the catalogue neither completes a series nor counts as a vaccine."""
    record = person(shot("Unknown-Vaccine", 1, ago(40)), shot("Unknown-Vaccine", 2, ago(20)))
    assert reason(decide(record, NOW, CONFIG)) is DenialReason.NO_RECORDS
    beside = person(shot("Unknown-Vaccine", 1, ago(40)), shot("Jcovden", 1, ago(20)))
    assert reason(decide(beside, NOW, CONFIG)) is DenialReason.VACCINE_NOT_RECOGNISED


# --- properties --------------------------------------------------------------------------

_PRODUCTS = [*DEFAULT_VACCINES, "Unknown-Vaccine"]
_SPAN = 800  # days either side of now

_days = st.integers(-_SPAN, _SPAN).map(lambda n: TODAY - timedelta(days=n))
_instants = st.integers(-_SPAN * 86_400, _SPAN * 86_400).map(lambda s: NOW - timedelta(seconds=s))
_sources = st.sampled_from(Registry)

_vaccinations = st.builds(
    Vaccination,
    product=st.sampled_from(_PRODUCTS),
    dose=st.integers(0, 4),
    day=_days,
    source=_sources,
)
_illnesses = st.builds(
    IllnessEpisode,
    diagnosed_on=_days,
    confirmation=st.sampled_from(Confirmation),
    recovered_on=st.none() | _days,
    source=_sources,
)
_lab_results = st.builds(
    LabResult,
    method=st.sampled_from(LabMethod),
    positive=st.booleans(),
    sampled_at=_instants,
    laboratory=st.sampled_from(["LAB-1", "LAB-2"]),
    source=_sources,
)
_events = st.lists(st.one_of(_vaccinations, _illnesses, _lab_results), max_size=12)
_nows = st.integers(-3 * 86_400, 3 * 86_400).map(lambda s: NOW + timedelta(seconds=s))


@given(events=_events, now=_nows)
def test_property_grants_are_valid_now(events: list[Event], now: datetime) -> None:
    """decide never raises, and any grant satisfies valid_from <= now < valid_until."""
    decision = decide(person(*events), now, CONFIG)
    if isinstance(decision, Grant):
        assert decision.valid_from <= now < decision.valid_until
        assert decision.basis
        assert all(event in events for event in decision.basis)
    else:
        assert decision.reason is not DenialReason.NOT_FOUND


@given(events=_events)
def test_property_vaccination_basis_is_a_recognised_series(events: list[Event]) -> None:
    """A vaccination grant rests on doses 1..series of one recognised product, in order."""
    decision = decide(person(*events), NOW, CONFIG)
    if isinstance(decision, Grant) and decision.kind is CertificateKind.VACCINATION:
        assert decision.product is not None
        assert decision.product.recognised
        assert [(d.product, d.dose) for d in decision.basis if isinstance(d, Vaccination)] == [
            (decision.product.code, n) for n in range(1, decision.product.doses + 1)
        ]
        assert len(decision.basis) == decision.product.doses


@given(events=_events, now=_nows, days=st.integers(-30, 60))
def test_property_active_illness_always_blocks(
    events: list[Event], now: datetime, days: int
) -> None:
    """Adding an open episode diagnosed within 60 days always yields ACTIVE_ILLNESS."""
    today = now.astimezone(MOSCOW).date()
    record = person(*events, illness(today - timedelta(days=days)))
    assert decide(record, now, CONFIG) == Denial(DenialReason.ACTIVE_ILLNESS)


@given(events=_events)
def test_property_order_of_events_does_not_matter(events: list[Event]) -> None:
    """The same events in reverse order give the same decision."""
    assert decide(person(*events), NOW, CONFIG) == decide(person(*reversed(events)), NOW, CONFIG)


@given(events=_events)
def test_property_fresh_negative_pcr_grants_unless_ill(events: list[Event]) -> None:
    """A negative PCR sampled now always yields a grant, unless the person is actively ill."""
    before = decide(person(*events), NOW, CONFIG)
    after = decide(person(*events, pcr(NOW)), NOW, CONFIG)
    if before == Denial(DenialReason.ACTIVE_ILLNESS):
        assert after == before
    else:
        assert isinstance(after, Grant)
        assert after.valid_until >= NOW + timedelta(hours=72)


@given(events=_events)
def test_property_grant_is_valid_longest(events: list[Event]) -> None:
    """No single event of the record, alone, gives a grant valid longer than the chosen one."""
    decision = decide(person(*events), NOW, CONFIG)
    if not isinstance(decision, Grant):
        return
    for event in events:
        alone = decide(person(event), NOW, CONFIG)
        if isinstance(alone, Grant):
            assert alone.valid_until <= decision.valid_until
