"""Merging the city and federal records of one person."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from regfed.domain.model import (
    MOSCOW,
    Confirmation,
    IllnessEpisode,
    LabMethod,
    LabResult,
    PersonRecord,
    Registry,
    Vaccination,
)
from regfed.federation.merge import merge

CITY = PersonRecord(
    registry=Registry.CITY,
    last_name="Иванов",
    first_name="Иван",
    middle_name="Иванович",
    birth_date=date(1980, 3, 14),
    snils="11223344595",
    oms_policy="7700000000000001",
)
FEDERAL = replace(
    CITY,
    registry=Registry.FEDERAL,
    last_name="ИВАНОВ",
    oms_policy=None,
    passport="4510123456",
)


def test_no_city_record_falls_back_to_federal() -> None:
    """With no city match the federal record stands alone."""
    assert merge([FEDERAL]) is FEDERAL


def test_neither_registry_knows_the_person() -> None:
    """Nobody knows the person: no record."""
    assert merge([]) is None


def test_city_leads_names_and_federal_fills_identifiers() -> None:
    """The city's spelling wins; identifiers missing in the city come from the federal record."""
    merged = merge([CITY, FEDERAL])
    assert merged is not None
    assert merged.registry is Registry.CITY
    assert merged.last_name == "Иванов"
    assert merged.passport == "4510123456"
    assert merged.oms_policy == "7700000000000001"


def test_same_dose_in_both_counts_once_city_copy_wins() -> None:
    """A dose recorded in both registries appears once, from the city."""
    dose1_city = Vaccination("Gam-COVID-Vac", 1, date(2026, 1, 10), Registry.CITY)
    dose1_fed = Vaccination("Gam-COVID-Vac", 1, date(2026, 1, 10), Registry.FEDERAL)
    dose2_fed = Vaccination("Gam-COVID-Vac", 2, date(2026, 1, 31), Registry.FEDERAL)
    merged = merge(
        [
            replace(CITY, vaccinations=(dose1_city,)),
            replace(FEDERAL, vaccinations=(dose1_fed, dose2_fed)),
        ]
    )
    assert merged is not None
    assert merged.vaccinations == (dose1_city, dose2_fed)


def test_same_episode_and_same_test_count_once() -> None:
    """An episode diagnosed the same day, and a test of the same kind the same day, are one."""
    city_case = IllnessEpisode(date(2026, 5, 1), Confirmation.PCR, date(2026, 5, 20), Registry.CITY)
    fed_case = IllnessEpisode(date(2026, 5, 1), Confirmation.CT, None, Registry.FEDERAL)
    other_case = IllnessEpisode(
        date(2025, 1, 1), Confirmation.PCR, date(2025, 1, 15), Registry.FEDERAL
    )
    sampled = datetime(2026, 11, 25, 9, 30, tzinfo=MOSCOW)
    city_pcr = LabResult(LabMethod.PCR, False, sampled, "LAB1", Registry.CITY)
    fed_pcr = LabResult(
        LabMethod.PCR, False, sampled.replace(hour=0, minute=0), "L", Registry.FEDERAL
    )
    merged = merge(
        [
            replace(CITY, illnesses=(city_case,), lab_results=(city_pcr,)),
            replace(FEDERAL, illnesses=(fed_case, other_case), lab_results=(fed_pcr,)),
        ]
    )
    assert merged is not None
    assert merged.illnesses == (city_case, other_case)
    assert merged.lab_results == (city_pcr,)


def test_skipped_events_add_up() -> None:
    """Unusable events of both registries are counted together."""
    merged = merge([replace(CITY, skipped_events=1), replace(FEDERAL, skipped_events=2)])
    assert merged is not None
    assert merged.skipped_events == 3


def test_a_third_record_fills_in_after_the_second() -> None:
    """Records fill in in order: a third registry adds what neither of the first two had."""
    dose1 = Vaccination("Gam-COVID-Vac", 1, date(2026, 1, 10), Registry.CITY)
    dose2 = Vaccination("Gam-COVID-Vac", 2, date(2026, 1, 31), Registry.FEDERAL)
    dose2_again = replace(dose2, source=Registry.CITY)
    merged = merge(
        [
            replace(CITY, vaccinations=(dose1,)),
            replace(FEDERAL, vaccinations=(dose2,)),
            replace(FEDERAL, vaccinations=(dose2_again,), skipped_events=4),
        ]
    )
    assert merged is not None
    assert merged.vaccinations == (dose1, dose2)
    assert merged.skipped_events == 4
