"""The city registry adapter against a real PostgreSQL holding the city schema."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from regfed.demo.schema import registry_ddl
from regfed.domain.model import (
    MOSCOW,
    Confirmation,
    IllnessEpisode,
    LabMethod,
    LabResult,
    PersonQuery,
    Registry,
    Vaccination,
)
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.errors import RegistryError
from regfed.registries.city import CityRegistry
from tests.conftest import CreateDatabase

BIRTH = date(1980, 5, 17)
SNILS = "11223344595"
OMS = "7700000000000011"
OTHER_SNILS = "12345678964"
OTHER_OMS = "7700000000000022"


@pytest.fixture(scope="module")
async def city_dsn(create_database: CreateDatabase) -> str:
    """A database with the city registry's schema, shared by this module's tests."""
    return await create_database(registry_ddl("city"))


@pytest.fixture(scope="module")
async def pool(city_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the city database."""
    async with asyncpg.create_pool(city_dsn, min_size=1, max_size=2) as created:
        yield created


@pytest.fixture(autouse=True)
async def _empty(pool: asyncpg.Pool) -> None:
    """Each test starts with an empty registry."""
    await pool.execute("TRUNCATE patients, immunizations, covid_cases, lab_results")


@pytest.fixture
def city(pool: asyncpg.Pool) -> CityRegistry:
    """The adapter under test."""
    return CityRegistry(pool, DEFAULT_VACCINES)


def query(**identifiers: Any) -> PersonQuery:
    """A query for Сидоров Пётр Петрович (as a person might type him: lower case, е for
    ё) born on BIRTH, unless overridden, with the given identifiers."""
    birth = identifiers.pop("birth_date", BIRTH)
    names = identifiers.pop("names", ("сидоров", "Петр", "Петрович"))
    last, first, middle = names
    return PersonQuery(last, first, middle, birth, **identifiers)


async def add_patient(
    pool: asyncpg.Pool,
    patient_id: int,
    snils: str | None = SNILS,
    oms: str | None = OMS,
    birth: date = BIRTH,
    middle_name: str | None = "Петрович",
    names: tuple[str, str] = ("Сидоров", "Пётр"),
) -> None:
    """Insert one patient."""
    await pool.execute(
        "INSERT INTO patients VALUES ($1, $2, $3, $4, $5, $6, $7)",
        patient_id,
        oms,
        snils,
        *names,
        middle_name,
        birth,
    )


async def test_match_by_snils(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """A patient is found by SNILS and birth date, with the registry's names."""
    await add_patient(pool, 1)
    record = await city.find(query(snils=SNILS))
    assert record is not None
    assert record.registry is Registry.CITY
    assert (record.last_name, record.first_name, record.middle_name) == (
        "Сидоров",
        "Пётр",
        "Петрович",
    )
    assert (record.birth_date, record.snils, record.oms_policy) == (BIRTH, SNILS, OMS)
    assert (record.vaccinations, record.illnesses, record.lab_results) == ((), (), ())


async def test_match_by_oms_policy(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """A patient without SNILS is found by the OMS policy."""
    await add_patient(pool, 1, snils=None, middle_name=None)
    record = await city.find(query(oms_policy=OMS))
    assert record is not None
    assert (record.snils, record.oms_policy, record.middle_name) == (None, OMS, "")


async def test_one_identifier_matching_is_enough(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """A wrong OMS policy next to the right SNILS still finds the patient."""
    await add_patient(pool, 1)
    assert await city.find(query(snils=SNILS, oms_policy=OTHER_OMS)) is not None


async def test_wrong_birth_date_is_not_a_match(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """An identifier with another birth date is not found, like an unknown one."""
    await add_patient(pool, 1)
    assert await city.find(query(snils=SNILS, birth_date=BIRTH + timedelta(days=1))) is None
    assert await city.find(query(oms_policy=OMS, birth_date=date(1980, 1, 1))) is None


@pytest.mark.parametrize(
    "names",
    [
        ("Иванов", "Иван", ""),  # someone else's name
        ("Сидоров", "Павел", "Петрович"),  # another given name
        ("Сидоров", "Пётр", "Иванович"),  # both give a patronymic, and they differ
        ("\x00", "\x00", ""),
    ],
)
async def test_other_names_are_not_a_match(
    pool: asyncpg.Pool, city: CityRegistry, names: tuple[str, str, str]
) -> None:
    """Right SNILS and birth date with other names: not found, like an unknown person."""
    await add_patient(pool, 1)
    assert await city.find(query(snils=SNILS, names=names)) is None
    assert await city.find(query(oms_policy=OMS, names=names)) is None


async def test_names_are_compared_folded(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """Case, ё/е, hyphens and spacing do not matter; a patronymic only counts when both
    sides have one."""
    await add_patient(pool, 1, names=("Сидоров-Ёлкин", "Пётр"), middle_name=None)
    for names in (("СИДОРОВ ЕЛКИН", "петр", "Иванович"), (" Сидоров  -  Ёлкин", "Пётр", "")):
        record = await city.find(query(snils=SNILS, names=names))
        assert record is not None
        assert record.last_name == "Сидоров-Ёлкин"  # the registry's spelling


async def test_the_candidate_whose_names_agree_is_the_person(
    pool: asyncpg.Pool, city: CityRegistry
) -> None:
    """The SNILS of one patient and the OMS policy of another: the one whose names agree
    is taken, not simply the SNILS match."""
    await add_patient(pool, 1, snils=SNILS, oms=OTHER_OMS, names=("Кузнецов", "Павел"))
    await add_patient(pool, 2, snils=OTHER_SNILS, oms=OMS)
    record = await city.find(query(snils=SNILS, oms_policy=OMS))
    assert record is not None
    assert (record.last_name, record.oms_policy) == ("Сидоров", OMS)


async def test_nothing_of_a_record_with_other_names_is_read(
    pool: asyncpg.Pool, city: CityRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A record that is not the person is dropped before its events are read: not even a
    skipped event is logged (that would tell that the identifier exists)."""
    await add_patient(pool, 1)
    await pool.execute(
        "INSERT INTO immunizations VALUES (1, 1, 'NovaVax-X', 1, '2021-06-01', 'F1')"
    )
    with caplog.at_level(logging.DEBUG):
        assert await city.find(query(snils=SNILS, names=("Иванов", "Иван", ""))) is None
    assert caplog.records == []


async def test_unknown_identifier_is_none(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """A SNILS the city does not know is not found."""
    await add_patient(pool, 1)
    assert await city.find(query(snils=OTHER_SNILS)) is None


async def test_passport_only_is_not_queried() -> None:
    """With only a passport there is nothing to ask the city: None, no query at all."""
    closed = await asyncpg.create_pool(min_size=0, host="127.0.0.1", port=1)
    await closed.close()  # any query on this pool would raise
    assert await CityRegistry(closed, DEFAULT_VACCINES).find(query(passport="4510123456")) is None


async def test_snils_match_wins_over_oms_match(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """Identifiers matching two patients: the SNILS one is taken, whatever the ids."""
    await add_patient(pool, 1, snils=OTHER_SNILS, oms=OMS)
    await add_patient(pool, 2, snils=SNILS, oms=OTHER_OMS)
    await pool.execute(
        "INSERT INTO immunizations VALUES (1, 1, 'Sputnik-Light', 1, '2021-06-01', 'F1'),"
        " (2, 2, 'Gam-COVID-Vac', 1, '2021-06-02', 'F1')"
    )
    record = await city.find(query(snils=SNILS, oms_policy=OMS))
    assert record is not None
    assert record.snils == SNILS
    assert [v.product for v in record.vaccinations] == ["Gam-COVID-Vac"]


async def test_events_of_every_kind_are_mapped(pool: asyncpg.Pool, city: CityRegistry) -> None:
    """Immunizations, COVID-19 cases and lab results become domain events, in order."""
    await add_patient(pool, 1)
    await add_patient(pool, 2, snils=OTHER_SNILS, oms=OTHER_OMS)  # events not to be mixed in
    sampled = datetime(2021, 9, 1, 10, 30, tzinfo=MOSCOW)
    await pool.execute(
        """
        INSERT INTO immunizations VALUES
            (10, 1, 'Gam-COVID-Vac', 2, '2021-07-22', 'GP-12'),
            (11, 1, 'Gam-COVID-Vac', 1, '2021-07-01', 'GP-12'),
            (12, 2, 'CoviVac', 1, '2021-07-01', 'GP-3');
        INSERT INTO covid_cases VALUES
            (20, 1, '2020-11-02', 'CT', '2020-11-20'),
            (21, 1, '2021-10-01', 'PCR', NULL),
            (22, 2, '2021-10-01', 'ELISA', NULL);
        INSERT INTO lab_results VALUES
            (30, 1, 'ELISA_IGG', true, '2021-08-01 09:00+03', 'LAB-7'),
            (31, 1, 'PCR', false, '2021-09-01 10:30+03', 'LAB-8'),
            (32, 2, 'PCR', true, '2021-09-01 10:30+03', 'LAB-8');
        """
    )
    record = await city.find(query(snils=SNILS))
    assert record is not None
    city_ = Registry.CITY
    assert record.vaccinations == (
        Vaccination("Gam-COVID-Vac", 1, date(2021, 7, 1), city_),
        Vaccination("Gam-COVID-Vac", 2, date(2021, 7, 22), city_),
    )
    assert record.illnesses == (
        IllnessEpisode(date(2020, 11, 2), Confirmation.CT, date(2020, 11, 20), city_),
        IllnessEpisode(date(2021, 10, 1), Confirmation.PCR, None, city_),
    )
    assert record.lab_results == (
        LabResult(
            LabMethod.ELISA_IGG, True, datetime(2021, 8, 1, 9, tzinfo=MOSCOW), "LAB-7", city_
        ),
        LabResult(LabMethod.PCR, False, sampled, "LAB-8", city_),
    )
    assert record.skipped_events == 0


async def test_unknown_product_is_skipped_and_counted(
    pool: asyncpg.Pool, city: CityRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A product code not in the catalogue is skipped, counted and logged without names."""
    await add_patient(pool, 1)
    await pool.execute(
        "INSERT INTO immunizations VALUES (1, 1, 'NovaVax-X', 1, '2021-06-01', 'F1'),"
        " (2, 1, 'Sputnik-Light', 1, '2021-06-02', 'F1')"
    )
    with caplog.at_level(logging.WARNING, logger="regfed.registries.city"):
        record = await city.find(query(snils=SNILS))
    assert record is not None
    assert [v.product for v in record.vaccinations] == ["Sputnik-Light"]
    assert record.skipped_events == 1
    assert "NovaVax-X" in caplog.text
    assert SNILS not in caplog.text
    assert "Сидоров" not in caplog.text


async def test_lookup_is_one_statement(city_dsn: str) -> None:
    """A lookup of a person with events of every kind is exactly one query."""
    async with asyncpg.create_pool(city_dsn, min_size=1, max_size=1) as single:
        await add_patient(single, 1)
        await single.execute(
            "INSERT INTO immunizations VALUES (1, 1, 'Gam-COVID-Vac', 1, '2021-06-01', 'F');"
            "INSERT INTO covid_cases VALUES (1, 1, '2021-01-01', 'PCR', '2021-01-20');"
            "INSERT INTO lab_results VALUES (1, 1, 'PCR', false, now(), 'L')"
        )
        city = CityRegistry(single, DEFAULT_VACCINES)
        # The first lookup on a connection also prepares the statement and has asyncpg
        # introspect record[] once; the steady state is what is counted.
        assert await city.find(query(snils=SNILS)) is not None
        logged: list[str] = []
        async with single.acquire() as conn:
            reset_query = conn.get_reset_query()
            conn.add_query_logger(lambda q: logged.append(q.query))
        record = await city.find(query(snils=SNILS))
        await asyncio.sleep(0)  # query loggers are called soon, not at once
    assert record is not None
    assert len(record.vaccinations) == len(record.illnesses) == len(record.lab_results) == 1
    statements = [q for q in logged if q != reset_query]  # the pool resets on release
    assert len(statements) == 1
    assert "FROM patients" in statements[0]


async def test_closed_pool_raises_registry_error(city_dsn: str) -> None:
    """A closed pool is a RegistryError, not an asyncpg exception."""
    closed = await asyncpg.create_pool(city_dsn, min_size=1, max_size=1)
    await closed.close()
    with pytest.raises(RegistryError, match="city registry") as caught:
        await CityRegistry(closed, DEFAULT_VACCINES).find(query(snils=SNILS))
    assert SNILS not in str(caught.value)


async def test_dropped_database_raises_registry_error(
    create_database: CreateDatabase, pg_server_dsn: str
) -> None:
    """A pool whose database has been dropped raises RegistryError."""
    dsn = await create_database(registry_ddl("city"))
    async with asyncpg.create_pool(dsn, min_size=0, max_size=1) as doomed:
        name = await doomed.fetchval("SELECT current_database()")
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        with pytest.raises(RegistryError):
            await CityRegistry(doomed, DEFAULT_VACCINES).find(query(snils=SNILS))


async def test_unreachable_server_raises_registry_error() -> None:
    """A server refusing connections raises RegistryError."""
    async with asyncpg.create_pool(
        "postgresql://regfed@127.0.0.1:1/nowhere", min_size=0, max_size=1
    ) as nowhere:
        with pytest.raises(RegistryError):
            await CityRegistry(nowhere, DEFAULT_VACCINES).find(query(snils=SNILS))


async def test_missing_schema_raises_registry_error(create_database: CreateDatabase) -> None:
    """A database without the city tables raises RegistryError naming no SQL."""
    dsn = await create_database()
    async with asyncpg.create_pool(dsn, min_size=0, max_size=1) as empty:
        with pytest.raises(RegistryError) as caught:
            await CityRegistry(empty, DEFAULT_VACCINES).find(query(oms_policy=OMS))
    assert "SELECT" not in str(caught.value)
    assert "42P01" in str(caught.value)


async def test_caller_timeout_is_not_translated(
    pool: asyncpg.Pool, city: CityRegistry, city_dsn: str
) -> None:
    """The caller's asyncio.timeout cancels a blocked lookup and surfaces as TimeoutError."""
    await add_patient(pool, 1)
    locker = await asyncpg.connect(city_dsn)
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await city.find(query(snils=SNILS))
    finally:
        await locker.close()
    assert await city.find(query(snils=SNILS)) is not None  # the pool is still usable


async def test_codes_outside_the_published_lists_are_skipped(
    create_database: CreateDatabase,
) -> None:
    """Should the city widen its code lists, the new rows are skipped and counted."""
    dsn = await create_database(
        registry_ddl("city"),
        "ALTER TABLE covid_cases DROP CONSTRAINT covid_cases_confirmed_by_check;"
        "ALTER TABLE lab_results DROP CONSTRAINT lab_results_test_check",
    )
    async with asyncpg.create_pool(dsn, min_size=1, max_size=1) as widened:
        await add_patient(widened, 1)
        await widened.execute(
            "INSERT INTO covid_cases VALUES (1, 1, '2021-01-01', 'XRAY', NULL),"
            " (2, 1, '2021-03-01', 'PCR', '2021-03-20');"
            "INSERT INTO lab_results VALUES (1, 1, 'ANTIGEN', true, now(), 'L'),"
            " (2, 1, 'PCR', false, now(), 'L')"
        )
        record = await CityRegistry(widened, DEFAULT_VACCINES).find(query(snils=SNILS))
    assert record is not None
    assert [e.confirmation for e in record.illnesses] == [Confirmation.PCR]
    assert [r.method for r in record.lab_results] == [LabMethod.PCR]
    assert record.skipped_events == 2
