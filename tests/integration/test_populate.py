"""The synthetic population for load tests, written into real PostgreSQL registries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from regfed.demo.populate import (
    Category,
    PopulationSummary,
    citizen_id,
    populate,
    population_person,
)
from regfed.demo.seed import CITY_TABLES, FEDERAL_TABLES
from regfed.domain.identifiers import normalise_snils
from regfed.domain.model import PersonQuery, Registry
from regfed.domain.policy import Grant, PolicyConfig, decide
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.federation.merge import merge
from regfed.registries.city import CityRegistry
from regfed.registries.federal import FederalRegistry, format_snils_federal
from tests.conftest import CreateDatabase

NOW = datetime(2021, 11, 15, 9, 30, tzinfo=UTC)
PEOPLE = 2_000
SEED = 7

pytestmark = pytest.mark.postgres


async def dump(dsn: str, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, in primary-key order."""
    conn = await asyncpg.connect(dsn)
    try:
        return {
            t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1")]  # noqa: S608
            for t in tables
        }
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def populated(create_database: CreateDatabase) -> tuple[str, str, PopulationSummary]:
    """Two empty databases populated with PEOPLE people (the tables created by populate)."""
    city, federal = await create_database(), await create_database()
    summary = await populate(city, federal, people=PEOPLE, seed=SEED, now=NOW)
    return city, federal, summary


async def test_same_seed_gives_identical_contents(
    populated: tuple[str, str, PopulationSummary],
) -> None:
    """Populating again with the same seed (in small batches) writes identical rows."""
    city, federal, _ = populated
    before = await dump(city, CITY_TABLES), await dump(federal, FEDERAL_TABLES)
    done: list[int] = []
    await populate(
        city, federal, people=PEOPLE, seed=SEED, now=NOW, progress=done.append, batch_size=300
    )
    after = await dump(city, CITY_TABLES), await dump(federal, FEDERAL_TABLES)
    assert after == before
    assert sum(done) == PEOPLE
    assert len(done) == 7


async def test_mix_has_every_category_and_registry_kind(
    populated: tuple[str, str, PopulationSummary],
) -> None:
    """The summary counts people of every category and every registry combination."""
    _, _, summary = populated
    assert set(summary.categories) == {c.value for c in Category}
    assert min(summary.categories.values()) > 0
    assert min(summary.registries.values()) > 0
    assert sum(summary.categories.values()) == sum(summary.registries.values()) == PEOPLE
    assert min(summary.rows.values()) > 0
    products = {population_person(i, SEED).product for i in range(PEOPLE)}
    assert {"Gam-COVID-Vac", "Sputnik-Light", "EpiVacCorona", "CoviVac"} < products
    assert any(p is not None and not DEFAULT_VACCINES[p].recognised for p in products)


async def test_every_snils_passes_the_checksum_and_is_unique(
    populated: tuple[str, str, PopulationSummary],
) -> None:
    """Every stored SNILS is one the API accepts, and no two people share one."""
    city, federal, _ = populated
    conn = await asyncpg.connect(city)
    try:
        city_snils = [r[0] for r in await conn.fetch("SELECT snils FROM patients")]
    finally:
        await conn.close()
    conn = await asyncpg.connect(federal)
    try:
        federal_snils = [r[0] for r in await conn.fetch("SELECT snils FROM citizens")]
    finally:
        await conn.close()
    for snils in city_snils + federal_snils:
        normalise_snils(snils)
    assert len(set(city_snils)) == len(city_snils)


async def test_population_person_matches_the_database(
    populated: tuple[str, str, PopulationSummary],
) -> None:
    """population_person(i) describes exactly the rows stored for person i."""
    city, federal, _ = populated
    city_conn = await asyncpg.connect(city)
    federal_conn = await asyncpg.connect(federal)
    try:
        for index in (0, 1, 2, 3, 500, 1234, PEOPLE - 1):
            person = population_person(index, SEED)
            patient = await city_conn.fetchrow(
                "SELECT * FROM patients WHERE snils = $1::bpchar", person.snils
            )
            assert (patient is not None) == person.in_city
            if patient is not None:
                assert patient["oms_policy"] == person.oms_policy
                assert patient["last_name"] == person.last_name
                assert patient["first_name"] == person.first_name
                assert (patient["middle_name"] or "") == person.middle_name
                assert patient["birth_date"] == person.birth_date
                events = 0
                for table in ("immunizations", "covid_cases", "lab_results"):
                    events += await city_conn.fetchval(
                        f"SELECT count(*) FROM {table} WHERE patient_id = $1",  # noqa: S608
                        patient["patient_id"],
                    )
                assert events == len(person.city_events)
            citizen = await federal_conn.fetchrow(
                "SELECT * FROM citizens WHERE snils = $1", format_snils_federal(person.snils)
            )
            assert (citizen is not None) == person.in_federal
            if citizen is not None:
                assert citizen["id"] == citizen_id(index, SEED)
                assert person.passport is not None
                assert citizen["passport"].replace(" ", "") == person.passport
                assert citizen["surname"] == person.last_name
                assert citizen["date_of_birth"] == person.birth_date
    finally:
        await city_conn.close()
        await federal_conn.close()


async def test_adapters_find_people_by_snils(
    populated: tuple[str, str, PopulationSummary],
) -> None:
    """The adapters find people by SNILS exactly where registered, and the policy gives
    each the outcome their category promises."""
    city_dsn, federal_dsn, _ = populated
    async with (
        asyncpg.create_pool(city_dsn, min_size=1, max_size=2) as city_pool,
        asyncpg.create_pool(federal_dsn, min_size=1, max_size=2) as federal_pool,
    ):
        city = CityRegistry(city_pool, DEFAULT_VACCINES)
        federal = FederalRegistry(federal_pool, DEFAULT_VACCINES)
        for index in range(0, PEOPLE, 13):
            person = population_person(index, SEED)
            query = PersonQuery(
                person.last_name,
                person.first_name,
                person.middle_name,
                person.birth_date,
                snils=person.snils,
            )
            in_city, in_federal = await city.find(query), await federal.find(query)
            assert (in_city is not None, in_federal is not None) == (
                person.in_city,
                person.in_federal,
            )
            for record, registry in ((in_city, Registry.CITY), (in_federal, Registry.FEDERAL)):
                if record is not None:
                    assert record.registry is registry
                    assert record.snils == person.snils
                    assert record.skipped_events == 0
                    assert record.first_name == person.first_name
            decision = decide(merge([r for r in (in_city, in_federal) if r]), NOW, PolicyConfig())
            outcome = (
                decision.kind.name
                if isinstance(decision, Grant)
                else f"DENIED:{decision.reason.name}"
            )
            assert outcome == person.expected_outcome, (index, person)


def test_population_person_is_deterministic() -> None:
    """The same index and seed give the same person; another seed, another person."""
    assert population_person(42, 1) == population_person(42, 1)
    assert population_person(42, 1).snils == population_person(42, 2).snils
    assert [population_person(i, 1) for i in range(50)] != [
        population_person(i, 2) for i in range(50)
    ]
