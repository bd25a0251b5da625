"""The federal registry adapter against a real PostgreSQL holding the federal schema."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
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
from regfed.registries.federal import FederalRegistry
from tests.conftest import CreateDatabase

BIRTH = date(1975, 12, 3)
SNILS = "11223344595"
SNILS_STORED = "112-233-445 95"
PASSPORT = "4510123456"
PASSPORT_STORED = "4510 123456"
OTHER_SNILS_STORED = "123-456-789 64"
OTHER_PASSPORT_STORED = "4600 654321"
FEDERAL = Registry.FEDERAL


@pytest.fixture(scope="module")
async def federal_dsn(create_database: CreateDatabase) -> str:
    """A database with the federal registry's schema, shared by this module's tests."""
    return await create_database(registry_ddl("federal"))


@pytest.fixture(scope="module")
async def pool(federal_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the federal database."""
    async with asyncpg.create_pool(federal_dsn, min_size=1, max_size=2) as created:
        yield created


@pytest.fixture(autouse=True)
async def _empty(pool: asyncpg.Pool) -> None:
    """Each test starts with an empty registry."""
    await pool.execute("TRUNCATE citizens, medical_events")


@pytest.fixture
def federal(pool: asyncpg.Pool) -> FederalRegistry:
    """The adapter under test."""
    return FederalRegistry(pool, DEFAULT_VACCINES)


def query(**identifiers: Any) -> PersonQuery:
    """A query for Ёлкина Анна (typed with е for ё, no patronymic) born on BIRTH, unless
    overridden, with the given identifiers."""
    birth = identifiers.pop("birth_date", BIRTH)
    names = identifiers.pop("names", ("Елкина", "Анна", ""))
    last, first, middle = names
    return PersonQuery(last, first, middle, birth, **identifiers)


async def add_citizen(
    pool: asyncpg.Pool,
    snils: str | None = SNILS_STORED,
    passport: str | None = PASSPORT_STORED,
    birth: date = BIRTH,
    patronymic: str | None = "Сергеевна",
    names: tuple[str, str] = ("Ёлкина", "Анна"),
) -> uuid.UUID:
    """Insert one citizen; returns its id."""
    citizen_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO citizens VALUES ($1, $2, $3, $4, $5, $6, $7, 77)",
        citizen_id,
        snils,
        passport,
        *names,
        patronymic,
        birth,
    )
    return citizen_id


async def add_event(
    pool: asyncpg.Pool, citizen_id: uuid.UUID, event_type: str, at: datetime, details: object
) -> int:
    """Insert one event; ``details`` is dumped to JSON unless it already is text."""
    text = details if isinstance(details, str) else json.dumps(details)
    event_id: int = await pool.fetchval(
        "INSERT INTO medical_events (citizen_id, event_type, event_at, details, region_code)"
        " VALUES ($1, $2, $3, $4::jsonb, 50) RETURNING id",
        citizen_id,
        event_type,
        at,
        text,
    )
    return event_id


def msk(day: date, hour: int = 0) -> datetime:
    """An instant on ``day`` in Moscow time."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=MOSCOW)


async def test_match_by_snils_in_the_federal_format(
    pool: asyncpg.Pool, federal: FederalRegistry
) -> None:
    """Bare SNILS digits find a citizen stored as 'XXX-XXX-XXX YY'; identifiers come back bare."""
    await add_citizen(pool)
    record = await federal.find(query(snils=SNILS))
    assert record is not None
    assert record.registry is FEDERAL
    assert (record.last_name, record.first_name, record.middle_name) == (
        "Ёлкина",
        "Анна",
        "Сергеевна",
    )
    assert (record.birth_date, record.snils, record.passport) == (BIRTH, SNILS, PASSPORT)


async def test_match_by_passport(pool: asyncpg.Pool, federal: FederalRegistry) -> None:
    """Bare passport digits find a citizen stored as 'SSSS NNNNNN' who has no SNILS."""
    await add_citizen(pool, snils=None, patronymic=None)
    record = await federal.find(query(passport=PASSPORT))
    assert record is not None
    assert (record.snils, record.passport, record.middle_name) == (None, PASSPORT, "")


async def test_wrong_birth_date_is_not_a_match(
    pool: asyncpg.Pool, federal: FederalRegistry
) -> None:
    """An identifier with another birth date is not found, like an unknown one."""
    await add_citizen(pool)
    assert await federal.find(query(snils=SNILS, birth_date=date(1975, 12, 4))) is None
    assert await federal.find(query(passport=PASSPORT, birth_date=date(1957, 12, 3))) is None


async def test_other_names_are_not_a_match(pool: asyncpg.Pool, federal: FederalRegistry) -> None:
    """Right identifiers and birth date with another name: not found, like an unknown one."""
    await add_citizen(pool)
    for names in (("Иванов", "Иван", ""), ("Ёлкина", "Анна", "Петровна"), ("A" * 100, "A", "")):
        assert await federal.find(query(snils=SNILS, names=names)) is None
        assert await federal.find(query(passport=PASSPORT, names=names)) is None


async def test_the_candidate_whose_names_agree_is_the_person(
    pool: asyncpg.Pool, federal: FederalRegistry
) -> None:
    """The SNILS of one citizen and the passport of another: the one whose names agree is
    taken."""
    await add_citizen(
        pool, snils=SNILS_STORED, passport=OTHER_PASSPORT_STORED, names=("Петров", "Олег")
    )
    await add_citizen(pool, snils=OTHER_SNILS_STORED, passport=PASSPORT_STORED)
    record = await federal.find(query(snils=SNILS, passport=PASSPORT))
    assert record is not None
    assert (record.last_name, record.passport) == ("Ёлкина", PASSPORT)


async def test_oms_only_is_not_queried() -> None:
    """With only an OMS policy there is nothing to ask: None, no query at all."""
    closed = await asyncpg.create_pool(min_size=0, host="127.0.0.1", port=1)
    await closed.close()  # any query on this pool would raise
    registry = FederalRegistry(closed, DEFAULT_VACCINES)
    assert await registry.find(query(oms_policy="7700000000000011")) is None


async def test_snils_match_wins_over_passport_match(
    pool: asyncpg.Pool, federal: FederalRegistry
) -> None:
    """Identifiers matching two citizens: the SNILS one is taken, with its own events."""
    by_passport = await add_citizen(pool, snils=OTHER_SNILS_STORED, passport=PASSPORT_STORED)
    by_snils = await add_citizen(pool, snils=SNILS_STORED, passport=OTHER_PASSPORT_STORED)
    vaccine = {"product": "Sputnik-Light", "dose": 1, "series": 1}
    await add_event(pool, by_passport, "VACCINATION", msk(date(2021, 6, 1)), vaccine)
    await add_event(pool, by_snils, "VACCINATION", msk(date(2021, 6, 2)), vaccine)
    for _ in range(3):  # whatever the uuids' order
        record = await federal.find(query(snils=SNILS, passport=PASSPORT))
        assert record is not None
        assert record.snils == SNILS
        assert [v.day for v in record.vaccinations] == [date(2021, 6, 2)]


async def test_events_of_every_kind_are_mapped(
    pool: asyncpg.Pool, federal: FederalRegistry
) -> None:
    """Vaccinations, paired illness episodes and tests become domain events."""
    citizen = await add_citizen(pool)
    other = await add_citizen(pool, snils=OTHER_SNILS_STORED, passport=OTHER_PASSPORT_STORED)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    sputnik = "Gam-COVID-Vac"
    await add_event(pool, other, "VACCINATION", msk(date(2021, 1, 1)), {"product": "CoviVac",
        "dose": 1, "series": 2})  # fmt: skip
    await add_event(pool, citizen, "VACCINATION", msk(date(2021, 7, 22)),
        {"product": sputnik, "dose": 2, "series": 2})  # fmt: skip
    await add_event(pool, citizen, "VACCINATION", msk(date(2021, 7, 1)),
        {"product": sputnik, "dose": 1, "series": 2, "lot": "I-1234"})  # fmt: skip
    await add_event(pool, citizen, "ILLNESS", msk(date(2020, 11, 2)),
        {"episode": first, "confirmation": "DOCUMENTS"})  # fmt: skip
    await add_event(pool, citizen, "RECOVERY", msk(date(2020, 11, 25)), {"episode": first})
    await add_event(pool, citizen, "ILLNESS", msk(date(2021, 10, 5)),
        {"episode": second, "confirmation": "ELISA"})  # fmt: skip
    await add_event(pool, citizen, "TEST", msk(date(2021, 9, 1), 11),
        {"method": "PCR", "result": "NEGATIVE", "laboratory": "INVITRO-77"})  # fmt: skip
    await add_event(pool, citizen, "TEST", msk(date(2021, 3, 1), 9),
        {"method": "ELISA_IGG", "result": "POSITIVE", "laboratory": "HEMOTEST"})  # fmt: skip
    record = await federal.find(query(passport=PASSPORT))
    assert record is not None
    assert record.vaccinations == (
        Vaccination(sputnik, 1, date(2021, 7, 1), FEDERAL),
        Vaccination(sputnik, 2, date(2021, 7, 22), FEDERAL),
    )
    assert record.illnesses == (
        IllnessEpisode(date(2020, 11, 2), Confirmation.DOCUMENTS, date(2020, 11, 25), FEDERAL),
        IllnessEpisode(date(2021, 10, 5), Confirmation.ELISA, None, FEDERAL),
    )
    assert record.lab_results == (
        LabResult(LabMethod.ELISA_IGG, True, msk(date(2021, 3, 1), 9), "HEMOTEST", FEDERAL),
        LabResult(LabMethod.PCR, False, msk(date(2021, 9, 1), 11), "INVITRO-77", FEDERAL),
    )
    assert record.skipped_events == 0


async def test_malformed_documents_are_skipped_and_counted(
    pool: asyncpg.Pool, federal: FederalRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad documents of every kind are skipped, counted and logged by id; good ones survive."""
    citizen = await add_citizen(pool)
    day = msk(date(2021, 5, 1))
    bad = [
        ("VACCINATION", '"Gam-COVID-Vac"'),  # not an object
        ("VACCINATION", "[1, 2]"),
        ("VACCINATION", {"product": "Gam-COVID-Vac", "dose": "2", "series": 2}),
        ("VACCINATION", {"product": "X-Vac", "dose": 1, "series": 2}),
        ("VACCINATION", {"product": "Gam-COVID-Vac", "series": 2}),
        ("ILLNESS", {"episode": "nope", "confirmation": "PCR"}),
        ("ILLNESS", {"episode": str(uuid.uuid4()), "confirmation": "RUMOUR"}),
        ("RECOVERY", {"episode": str(uuid.uuid4())}),  # no such ILLNESS
        ("RECOVERY", {}),
        ("TEST", {"method": "PCR", "result": "MAYBE", "laboratory": "L"}),
        ("TEST", {"method": "PCR", "result": "NEGATIVE"}),
    ]
    ids = [await add_event(pool, citizen, kind, day, details) for kind, details in bad]
    await add_event(pool, citizen, "VACCINATION", day,
        {"product": "Sputnik-Light", "dose": 1, "series": 1})  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="regfed.registries.federal_events"):
        record = await federal.find(query(snils=SNILS))
    assert record is not None
    assert record.vaccinations == (Vaccination("Sputnik-Light", 1, date(2021, 5, 1), FEDERAL),)
    assert (record.illnesses, record.lab_results) == ((), ())
    assert record.skipped_events == len(bad)
    assert len(caplog.records) == len(bad)
    assert all(f"event {event_id} " in caplog.text for event_id in ids)
    for secret in (SNILS_STORED, PASSPORT_STORED, "Ёлкина", "RUMOUR", "MAYBE"):
        assert secret not in caplog.text


async def test_lookup_is_one_statement(federal_dsn: str) -> None:
    """A lookup of a citizen with several events is exactly one query."""
    async with asyncpg.create_pool(federal_dsn, min_size=1, max_size=1) as single:
        citizen = await add_citizen(single)
        await add_event(single, citizen, "TEST", msk(date(2021, 5, 1)),
            {"method": "PCR", "result": "NEGATIVE", "laboratory": "L"})  # fmt: skip
        await add_event(single, citizen, "ILLNESS", msk(date(2021, 5, 2)),
            {"episode": str(uuid.uuid4()), "confirmation": "PCR"})  # fmt: skip
        registry = FederalRegistry(single, DEFAULT_VACCINES)
        # The first lookup on a connection also prepares the statement and has asyncpg
        # introspect record[] once; the steady state is what is counted.
        assert await registry.find(query(snils=SNILS)) is not None
        logged: list[str] = []
        async with single.acquire() as conn:
            reset_query = conn.get_reset_query()
            conn.add_query_logger(lambda q: logged.append(q.query))
        record = await registry.find(query(snils=SNILS, passport=PASSPORT))
        await asyncio.sleep(0)  # query loggers are called soon, not at once
    assert record is not None
    assert (len(record.lab_results), len(record.illnesses)) == (1, 1)
    statements = [q for q in logged if q != reset_query]  # the pool resets on release
    assert len(statements) == 1
    assert "FROM citizens" in statements[0]


async def test_closed_pool_raises_registry_error(federal_dsn: str) -> None:
    """A closed pool is a RegistryError, not an asyncpg exception."""
    closed = await asyncpg.create_pool(federal_dsn, min_size=1, max_size=1)
    await closed.close()
    with pytest.raises(RegistryError, match="federal registry") as caught:
        await FederalRegistry(closed, DEFAULT_VACCINES).find(query(snils=SNILS))
    assert SNILS_STORED not in str(caught.value)


async def test_dropped_database_raises_registry_error(
    create_database: CreateDatabase, pg_server_dsn: str
) -> None:
    """A pool whose database has been dropped raises RegistryError."""
    dsn = await create_database(registry_ddl("federal"))
    async with asyncpg.create_pool(dsn, min_size=0, max_size=1) as doomed:
        name = await doomed.fetchval("SELECT current_database()")
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        with pytest.raises(RegistryError):
            await FederalRegistry(doomed, DEFAULT_VACCINES).find(query(passport=PASSPORT))
