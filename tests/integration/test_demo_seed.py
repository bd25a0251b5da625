"""The demo people and seeding them into both registries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from regfed.demo.people import (
    DEMO_PEOPLE,
    Dose,
    Illness,
    LabTest,
    RawDocument,
    late_person,
    readme_table,
)
from regfed.demo.schema import registry_ddl
from regfed.demo.seed import arrive, seed_demo
from regfed.domain.identifiers import normalise_snils
from regfed.domain.model import PersonQuery, Registry
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.registries.base import RegistryAdapter
from regfed.registries.city import CityRegistry
from regfed.registries.federal import FederalRegistry
from tests.conftest import CreateDatabase

NOW = datetime(2021, 11, 15, 9, 30, tzinfo=UTC)

CITY_COUNTS = {
    "patients": sum(p.in_city for p in DEMO_PEOPLE),
    "immunizations": sum(isinstance(e, Dose) for p in DEMO_PEOPLE for e in p.city_events),
    "covid_cases": sum(isinstance(e, Illness) for p in DEMO_PEOPLE for e in p.city_events),
    "lab_results": sum(isinstance(e, LabTest) for p in DEMO_PEOPLE for e in p.city_events),
}
FEDERAL_COUNTS = {
    "citizens": sum(p.in_federal for p in DEMO_PEOPLE),
    # A recovered Illness is two events: ILLNESS and RECOVERY.
    "medical_events": sum(
        2 if isinstance(e, Illness) and e.recovered_days_ago is not None else 1
        for p in DEMO_PEOPLE
        for e in p.federal_events
    ),
}


async def table_counts(dsn: str, tables: dict[str, int]) -> dict[str, int]:
    """The number of rows of each table in ``tables``."""
    conn = await asyncpg.connect(dsn)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}  # noqa: S608
    finally:
        await conn.close()


def query_for(person_index: int) -> PersonQuery:
    """The query the portal would build for a demo person."""
    p = DEMO_PEOPLE[person_index]
    return PersonQuery(
        p.last_name, p.first_name, p.middle_name, p.birth_date, p.snils, p.oms_policy, p.passport
    )


async def test_seed_creates_tables_and_reseeds(create_database: CreateDatabase) -> None:
    """Seeding empty databases creates the schema; seeding again replaces the rows."""
    city, federal = await create_database(), await create_database()
    await seed_demo(city, federal, NOW)
    await seed_demo(city, federal, NOW + timedelta(days=3))
    assert await table_counts(city, CITY_COUNTS) == CITY_COUNTS
    assert await table_counts(federal, FEDERAL_COUNTS) == FEDERAL_COUNTS
    assert min(CITY_COUNTS.values()) > 0


async def test_reseed_moves_events_with_now(create_database: CreateDatabase) -> None:
    """A re-seed on a later day dates every event relative to the new now."""
    city = await create_database(registry_ddl("city"))
    federal = await create_database(registry_ddl("federal"))
    await seed_demo(city, federal, NOW)
    conn = await asyncpg.connect(city)
    try:
        before = await conn.fetchval("SELECT max(administered_on) FROM immunizations")
        await seed_demo(city, federal, NOW + timedelta(days=10))
        after = await conn.fetchval("SELECT max(administered_on) FROM immunizations")
    finally:
        await conn.close()
    assert after - before == timedelta(days=10)


async def test_partial_schema_is_refused(create_database: CreateDatabase) -> None:
    """A registry database with only some of its tables is not guessed at."""
    city = await create_database("CREATE TABLE patients (patient_id bigint)")
    federal = await create_database()
    with pytest.raises(RuntimeError, match="only some"):
        await seed_demo(city, federal, NOW)


def test_every_demo_snils_passes_the_checksum() -> None:
    """Every demo SNILS is one the API accepts."""
    for person in DEMO_PEOPLE:
        assert person.snils is not None
        assert normalise_snils(person.snils) == person.snils


def test_demo_people_cover_every_outcome() -> None:
    """Each certificate kind and each denial reason has a demo person."""
    outcomes = {p.outcome for p in DEMO_PEOPLE}
    reasons = {
        "ACTIVE_ILLNESS", "INCOMPLETE_VACCINATION", "VACCINE_NOT_RECOGNISED",
        "BASIS_EXPIRED", "NO_RECORDS", "NOT_FOUND",
    }  # fmt: skip
    assert outcomes == {"VACCINATION", "RECOVERY", "TEST"} | {f"DENIED:{r}" for r in reasons}
    assert len({p.key for p in DEMO_PEOPLE}) == len(DEMO_PEOPLE)
    assert any(isinstance(e, RawDocument) for p in DEMO_PEOPLE for e in p.federal_events)
    registered = {(p.snils, p.birth_date) for p in DEMO_PEOPLE if p.in_city or p.in_federal}
    assert len(registered) == sum(p.in_city or p.in_federal for p in DEMO_PEOPLE)


def test_readme_table_has_a_row_per_person() -> None:
    """The README table lists every demo person with a formatted SNILS."""
    lines = readme_table().splitlines()
    assert len(lines) == 2 + len(DEMO_PEOPLE)
    assert "| Белова Мария Сергеевна | 146-287-359 90 | 1985-04-12 | city |" in lines[2]


async def test_adapters_find_each_demo_person_where_registered(
    create_database: CreateDatabase,
) -> None:
    """Every demo person is found by each adapter exactly where the list says."""
    city_dsn = await create_database(registry_ddl("city"))
    federal_dsn = await create_database(registry_ddl("federal"))
    await seed_demo(city_dsn, federal_dsn, NOW)
    async with (
        asyncpg.create_pool(city_dsn, min_size=1, max_size=2) as city_pool,
        asyncpg.create_pool(federal_dsn, min_size=1, max_size=2) as federal_pool,
    ):
        city: RegistryAdapter = CityRegistry(city_pool, DEFAULT_VACCINES)
        federal: RegistryAdapter = FederalRegistry(federal_pool, DEFAULT_VACCINES)
        for index, person in enumerate(DEMO_PEOPLE):
            in_city = await city.find(query_for(index))
            in_federal = await federal.find(query_for(index))
            assert (in_city is not None, in_federal is not None) == (
                person.in_city,
                person.in_federal,
            ), person.key
            for record, registry in ((in_city, Registry.CITY), (in_federal, Registry.FEDERAL)):
                if record is not None:
                    assert record.registry is registry
                    assert record.snils == person.snils
                    assert record.last_name == person.last_name
            if in_city is not None:
                assert in_city.skipped_events == 0
                assert len(in_city.vaccinations) + len(in_city.illnesses) + len(
                    in_city.lab_results
                ) == len(person.city_events)
            if in_federal is not None:
                raw = sum(isinstance(e, RawDocument) for e in person.federal_events)
                assert in_federal.skipped_events == raw, person.key
                assert (
                    len(in_federal.vaccinations)
                    + len(in_federal.illnesses)
                    + len(in_federal.lab_results)
                    == len(person.federal_events) - raw
                )


async def test_a_late_record_arrives_and_a_reseed_takes_it_back(
    create_database: CreateDatabase,
) -> None:
    """``arrive`` puts the late person's federal record in (twice is once); the federal
    adapter then finds their full series; seeding again removes it, for the next demo."""
    person = late_person("ЗАЙЦЕВ")
    index = DEMO_PEOPLE.index(person)
    city_dsn = await create_database(registry_ddl("city"))
    federal_dsn = await create_database(registry_ddl("federal"))
    await seed_demo(city_dsn, federal_dsn, NOW)
    async with asyncpg.create_pool(federal_dsn, min_size=1, max_size=2) as pool:
        federal = FederalRegistry(pool, DEFAULT_VACCINES)
        assert await federal.find(query_for(index)) is None
        assert await arrive(federal_dsn, person, NOW) == len(person.arrives)
        assert await arrive(federal_dsn, person, NOW + timedelta(days=1)) == len(person.arrives)
        record = await federal.find(query_for(index))
        assert record is not None
        assert len(record.vaccinations) == len(person.arrives)
        await seed_demo(city_dsn, federal_dsn, NOW)
        assert await federal.find(query_for(index)) is None
    with pytest.raises(ValueError, match="Зайцев"):
        late_person("Белова")
