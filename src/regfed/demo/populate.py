"""A synthetic population for load tests: N people in both registries, fast and deterministic.

``populate`` REPLACES the contents of the two registry databases (like ``seed_demo``) with
N people in a realistic mix: registered in the city only, the federal registry only or
both; vaccinated (mostly Sputnik V, some Sputnik Light, EpiVacCorona and CoviVac, a few
products not recognised in Russia), partly vaccinated, recovered, tested (a negative PCR
in the last 72 hours), ill (an open episode or a recent positive PCR), or known with no
events at all. Rows go in with PostgreSQL COPY, in batches, in one transaction per
registry; the tables are created from the published DDL when absent, and nothing else
is created: regfed may not add indexes to databases it does not own.

Every person is a pure function of ``(index, seed)`` (:func:`population_person`), so a
load generator can write request bodies for the same people without reading the
database. Identifiers are derived from the index and unique: SNILS ``100 000 000 + index``
with valid check digits, an OMS policy for city people, a passport for federal people.
Event times are relative to ``now``, as in the demo.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from regfed.demo.people import Dose, Illness, LabTest
from regfed.demo.seed import CITY_TABLES, FEDERAL_TABLES, prepare_registry
from regfed.domain.identifiers import snils_check_digits
from regfed.domain.model import moscow_date, moscow_midnight
from regfed.domain.vaccines import DEFAULT_VACCINES
from regfed.registries.federal import format_passport_federal, format_snils_federal

# The first nine SNILS digits of person i are SNILS_BASE + i (well above the unchecked range).
SNILS_BASE = 100_000_000
MAX_PEOPLE = 899_999_999
DEFAULT_BATCH = 10_000
# Each person's events get ids (index + 1) * _IDS_PER_PERSON + k: stable whatever the batching.
_IDS_PER_PERSON = 16
_CITIZEN_NAMESPACE = uuid.UUID("9b0f8c52-4e1d-4f7a-8a63-5d2c7e1b9f40")


class Category(enum.StrEnum):
    """What a person's records amount to (the outcome follows from it, see
    :attr:`PopulatedPerson.expected_outcome`)."""

    VACCINATED = "vaccinated"
    PARTLY_VACCINATED = "partly_vaccinated"
    RECOVERED = "recovered"
    TESTED = "tested"
    ILL = "ill"
    UNKNOWN = "unknown"  # registered, no events


_CATEGORY_WEIGHTS = {
    Category.VACCINATED: 48,
    Category.PARTLY_VACCINATED: 7,
    Category.RECOVERED: 12,
    Category.TESTED: 10,
    Category.ILL: 5,
    Category.UNKNOWN: 18,
}
_CATEGORIES = tuple(_CATEGORY_WEIGHTS)
_CATEGORY_CUMULATIVE = tuple(
    sum(list(_CATEGORY_WEIGHTS.values())[: i + 1]) for i in range(len(_CATEGORIES))
)

# (product code, days between doses), weights: mostly Sputnik V, a few unrecognised.
_VACCINATIONS = (
    ("Gam-COVID-Vac", 21, 78),
    ("Sputnik-Light", 0, 10),
    ("EpiVacCorona", 21, 4),
    ("CoviVac", 14, 5),
    ("Comirnaty", 21, 1),
    ("Spikevax", 28, 1),
    ("Vaxzevria", 56, 0.5),
    ("Jcovden", 0, 0.5),
)
_TWO_DOSE_RECOGNISED = (("Gam-COVID-Vac", 85), ("EpiVacCorona", 7), ("CoviVac", 8))
_CONFIRMATIONS = (("PCR", 70), ("ELISA", 10), ("CT", 15), ("DOCUMENTS", 5))
_REGIONS = ((77, 70), (50, 25), (78, 5))
_FACILITIES = ("GP-003", "GP-012", "GP-027", "GP-045", "GP-102", "HOSP-15")
_CITY_LABS = ("LAB-CITY-01", "LAB-CITY-02", "LAB-CITY-07")
_FEDERAL_LABS = ("INVITRO-77", "HELIX-50", "CMD-78", "GEMOTEST-77")

# (male, female) surnames, first names and patronymics: small lists, many combinations.
_SURNAMES = (
    ("Иванов", "Иванова"), ("Смирнов", "Смирнова"), ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"), ("Васильев", "Васильева"), ("Петров", "Петрова"),
    ("Соколов", "Соколова"), ("Михайлов", "Михайлова"), ("Новиков", "Новикова"),
    ("Фёдоров", "Фёдорова"), ("Морозов", "Морозова"), ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"), ("Лебедев", "Лебедева"), ("Семёнов", "Семёнова"),
    ("Егоров", "Егорова"), ("Павлов", "Павлова"), ("Козлов", "Козлова"),
    ("Степанов", "Степанова"), ("Николаев", "Николаева"), ("Орлов", "Орлова"),
    ("Андреев", "Андреева"), ("Макаров", "Макарова"), ("Никитин", "Никитина"),
    ("Захаров", "Захарова"), ("Зайцев", "Зайцева"), ("Соловьёв", "Соловьёва"),
    ("Борисов", "Борисова"), ("Яковлев", "Яковлева"), ("Григорьев", "Григорьева"),
    ("Романов", "Романова"), ("Воробьёв", "Воробьёва"), ("Сергеев", "Сергеева"),
    ("Кузьмин", "Кузьмина"), ("Фролов", "Фролова"), ("Белов", "Белова"),
    ("Жуковский", "Жуковская"), ("Тарасов", "Тарасова"), ("Ким", "Ким"),
    ("Римский-Корсаков", "Римская-Корсакова"),
)  # fmt: skip
_MALE_NAMES = (
    "Александр", "Алексей", "Андрей", "Артём", "Борис", "Владимир", "Дмитрий", "Евгений",
    "Иван", "Игорь", "Илья", "Кирилл", "Максим", "Михаил", "Николай", "Олег", "Павел",
    "Роман", "Сергей", "Юрий",
)  # fmt: skip
_FEMALE_NAMES = (
    "Алёна", "Анастасия", "Анна", "Валентина", "Дарья", "Екатерина", "Елена", "Ирина",
    "Ксения", "Мария", "Наталья", "Ольга", "Полина", "Светлана", "София", "Татьяна",
    "Юлия", "Людмила", "Вера", "Анна-Мария",
)  # fmt: skip
_PATRONYMICS = (
    ("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"),
    ("Андреевич", "Андреевна"), ("Борисович", "Борисовна"), ("Викторович", "Викторовна"),
    ("Владимирович", "Владимировна"), ("Дмитриевич", "Дмитриевна"),
    ("Евгеньевич", "Евгеньевна"), ("Иванович", "Ивановна"), ("Игоревич", "Игоревна"),
    ("Михайлович", "Михайловна"), ("Николаевич", "Николаевна"), ("Олегович", "Олеговна"),
    ("Павлович", "Павловна"), ("Петрович", "Петровна"), ("Сергеевич", "Сергеевна"),
    ("Юрьевич", "Юрьевна"), ("Ильич", "Ильинична"),
)  # fmt: skip
_EARLIEST_BIRTH = date(1935, 1, 1)
_BIRTH_SPAN_DAYS = 25_000  # up to mid-2003


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    """One value from (value, weight) pairs."""
    point = rng.random() * sum(w for _, w in weighted)
    for value, weight in weighted:
        point -= weight
        if point < 0:
            return value
    return weighted[-1][0]


def snils_for(index: int) -> str:
    """Person ``index``'s SNILS: 11 digits, valid check digits, unique per index."""
    first9 = f"{SNILS_BASE + index:09d}"
    return first9 + snils_check_digits(first9)


def oms_for(index: int) -> str:
    """Person ``index``'s OMS policy number: 16 digits, unique per index."""
    return f"7799{index:012d}"


def passport_for(index: int) -> str:
    """Person ``index``'s passport, series and number: 10 digits, unique per index."""
    series, number = divmod(index, 1_000_000)
    return f"{4500 + series:04d}{number:06d}"


CityEvent = Dose | Illness | LabTest


@dataclass(frozen=True, slots=True)
class PopulatedPerson:
    """One synthetic person: what they type into the portal and what the registries hold.

    Event times are relative ("days ago"), so the same person is valid on any day.
    ``oms_policy`` is set for city people, ``passport`` for federal people.
    """

    index: int
    category: Category
    last_name: str
    first_name: str
    middle_name: str  # empty: no patronymic
    birth_date: date
    snils: str  # 11 digits
    oms_policy: str | None  # 16 digits
    passport: str | None  # 10 digits
    in_city: bool
    in_federal: bool
    region: int
    product: str | None = None  # the vaccine, for the (partly) vaccinated
    city_events: tuple[CityEvent, ...] = field(default=())
    federal_events: tuple[CityEvent, ...] = field(default=())

    @property
    def registries(self) -> str:
        """``"city"``, ``"federal"`` or ``"both"``."""
        if self.in_city and self.in_federal:
            return "both"
        return "city" if self.in_city else "federal"

    @property
    def expected_outcome(self) -> str:
        """The outcome the default policy gives at the populate instant: ``VACCINATION``,
        ``RECOVERY``, ``TEST`` or ``DENIED:<REASON>`` (as ``DemoPerson.outcome``)."""
        if self.category is Category.VACCINATED:
            assert self.product is not None
            recognised = DEFAULT_VACCINES[self.product].recognised
            return "VACCINATION" if recognised else "DENIED:VACCINE_NOT_RECOGNISED"
        return {
            Category.PARTLY_VACCINATED: "DENIED:INCOMPLETE_VACCINATION",
            Category.RECOVERED: "RECOVERY",
            Category.TESTED: "TEST",
            Category.ILL: "DENIED:ACTIVE_ILLNESS",
            Category.UNKNOWN: "DENIED:NO_RECORDS",
        }[self.category]

    def request_person(self) -> dict[str, str]:
        """The ``regfed.v1.Person`` a portal sends for them, as JSON (keyed by SNILS)."""
        person = {
            "last_name": self.last_name,
            "first_name": self.first_name,
            "birth_date": self.birth_date.isoformat(),
            "snils": self.snils,
        }
        if self.middle_name:
            person["middle_name"] = self.middle_name
        return person


def population_person(index: int, seed: int) -> PopulatedPerson:
    """Person ``index`` of the population for ``seed``: the same every time."""
    if not 0 <= index < MAX_PEOPLE:
        raise ValueError(f"index must be in [0, {MAX_PEOPLE})")
    rng = random.Random((seed << 40) ^ index)  # noqa: S311 - synthetic data, not secrets
    point = rng.random() * _CATEGORY_CUMULATIVE[-1]
    category = next(
        c for c, bound in zip(_CATEGORIES, _CATEGORY_CUMULATIVE, strict=True) if point < bound
    )
    where = rng.random()  # city only 45 %, federal only 15 %, both 40 %
    in_city, in_federal = where < 0.45 or where >= 0.6, where >= 0.45
    female = rng.random() < 0.54
    surname = rng.choice(_SURNAMES)[female]
    first = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
    patronymic = "" if rng.random() < 0.03 else rng.choice(_PATRONYMICS)[female]
    birth = _EARLIEST_BIRTH + timedelta(days=rng.randrange(_BIRTH_SPAN_DAYS))
    product, events = _events(rng, category)
    if category is not Category.UNKNOWN and category is not Category.TESTED and rng.random() < 0.15:
        # An old negative PCR: history that counts for nothing today.
        days = rng.randint(10, 300)
        events.append(LabTest("PCR", False, days * 24 + rng.randrange(24)))
    city_events: list[CityEvent] = []
    federal_events: list[CityEvent] = []
    for event in events:
        if in_city and in_federal:
            place = rng.random()
            if place < 0.75:
                city_events.append(event)
            if place >= 0.55:
                federal_events.append(event)
        else:
            (city_events if in_city else federal_events).append(event)
    if in_city:
        city_events = [_with_lab(e, rng, _CITY_LABS) for e in city_events]
    federal_events = [_with_lab(e, rng, _FEDERAL_LABS) for e in federal_events]
    return PopulatedPerson(
        index=index,
        category=category,
        last_name=surname,
        first_name=first,
        middle_name=patronymic,
        birth_date=birth,
        snils=snils_for(index),
        oms_policy=oms_for(index) if in_city else None,
        passport=passport_for(index) if in_federal else None,
        in_city=in_city,
        in_federal=in_federal,
        region=_pick(rng, _REGIONS),
        product=product,
        city_events=tuple(city_events),
        federal_events=tuple(federal_events),
    )


def _with_lab(event: CityEvent, rng: random.Random, labs: Sequence[str]) -> CityEvent:
    if isinstance(event, LabTest):
        return LabTest(event.method, event.positive, event.hours_ago, rng.choice(labs))
    return event


def _series(rng: random.Random, product: str, gap: int, last_days_ago: int) -> list[CityEvent]:
    doses = DEFAULT_VACCINES[product].doses
    return [
        Dose(product, dose, last_days_ago + (doses - dose) * (gap + rng.randrange(4)))
        for dose in range(1, doses + 1)
    ]


def _events(rng: random.Random, category: Category) -> tuple[str | None, list[CityEvent]]:
    """The vaccine (if any) and the events of a person of ``category``."""
    if category is Category.VACCINATED:
        product, gap = _pick(rng, [((p, g), w) for p, g, w in _VACCINATIONS])
        return product, _series(rng, product, gap, rng.randint(1, 330))
    if category is Category.PARTLY_VACCINATED:
        product = _pick(rng, _TWO_DOSE_RECOGNISED)
        return product, [Dose(product, 1, rng.randint(1, 60))]
    if category is Category.RECOVERED:
        if rng.random() < 0.1:  # antibodies found, no recorded illness
            return None, [LabTest("ELISA_IGG", True, rng.randint(1, 170) * 24)]
        recovered = rng.randint(1, 170)
        diagnosed = recovered + rng.randint(7, 30)
        return None, [Illness(diagnosed, _pick(rng, _CONFIRMATIONS), recovered)]
    if category is Category.TESTED:
        return None, [LabTest("PCR", False, rng.randint(1, 70))]
    if category is Category.ILL:
        events: list[CityEvent] = []
        if rng.random() < 0.3:  # ill despite a full course long ago
            events += _series(rng, "Gam-COVID-Vac", 21, rng.randint(100, 300))
        if rng.random() < 0.5:
            events.append(Illness(rng.randint(0, 50), _pick(rng, _CONFIRMATIONS)))
        else:
            events.append(LabTest("PCR", True, rng.randint(1, 13 * 24)))
        return None, events
    return None, []


@dataclass(frozen=True, slots=True)
class PopulationSummary:
    """What ``populate`` wrote."""

    people: int
    seed: int
    seconds: float
    categories: dict[str, int]  # people per Category value
    registries: dict[str, int]  # people per "city" | "federal" | "both"
    rows: dict[str, int]  # rows per table


Rows = dict[str, list[tuple[Any, ...]]]


class _Dates:
    """Memoised dates and instants relative to ``now`` (many people share each day)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.today = moscow_date(now)
        self._days: dict[int, date] = {}
        self._midnights: dict[int, datetime] = {}
        self._hours: dict[int, datetime] = {}

    def day(self, days_ago: int) -> date:
        found = self._days.get(days_ago)
        if found is None:
            found = self._days[days_ago] = self.today - timedelta(days=days_ago)
        return found

    def midnight(self, days_ago: int) -> datetime:
        found = self._midnights.get(days_ago)
        if found is None:
            found = self._midnights[days_ago] = moscow_midnight(self.day(days_ago))
        return found

    def hours(self, hours_ago: int) -> datetime:
        found = self._hours.get(hours_ago)
        if found is None:
            found = self._hours[hours_ago] = self.now - timedelta(hours=hours_ago)
        return found


def citizen_id(index: int, seed: int) -> uuid.UUID:
    """Person ``index``'s federal ``citizens.id``: a version-5 UUID whose node field is the
    index, so ids ascend with the index (cheap appends to the primary key)."""
    base = uuid.uuid5(_CITIZEN_NAMESPACE, f"population/{seed}").int
    return uuid.UUID(int=(base >> 48 << 48) | index)


def _rows(people: Sequence[PopulatedPerson], seed: int, dates: _Dates) -> tuple[Rows, Rows]:
    """The city and federal rows for a batch of people."""
    city: Rows = {table: [] for table in CITY_TABLES}
    federal: Rows = {table: [] for table in FEDERAL_TABLES}
    base = uuid.uuid5(_CITIZEN_NAMESPACE, f"population/{seed}").int >> 48 << 48
    for p in people:
        first_id = (p.index + 1) * _IDS_PER_PERSON
        if p.in_city:
            patient_id = p.index + 1
            city["patients"].append(
                (
                    patient_id, p.oms_policy, p.snils, p.last_name, p.first_name,
                    p.middle_name or None, p.birth_date,
                )
            )  # fmt: skip
            for k, event in enumerate(p.city_events, start=first_id):
                if isinstance(event, Dose):
                    city["immunizations"].append(
                        (
                            k, patient_id, event.product, event.dose, dates.day(event.days_ago),
                            _FACILITIES[(p.index + event.dose) % len(_FACILITIES)],
                        )
                    )  # fmt: skip
                elif isinstance(event, Illness):
                    recovered = event.recovered_days_ago
                    city["covid_cases"].append(
                        (
                            k, patient_id, dates.day(event.diagnosed_days_ago),
                            event.confirmation,
                            None if recovered is None else dates.day(recovered),
                        )
                    )  # fmt: skip
                else:
                    city["lab_results"].append(
                        (
                            k, patient_id, event.method, event.positive,
                            dates.hours(event.hours_ago), event.laboratory,
                        )
                    )  # fmt: skip
        if p.in_federal:
            citizen = uuid.UUID(int=base | p.index)
            assert p.passport is not None
            federal["citizens"].append(
                (
                    citizen, format_snils_federal(p.snils), format_passport_federal(p.passport),
                    p.last_name, p.first_name, p.middle_name or None, p.birth_date, p.region,
                )
            )  # fmt: skip
            events = federal["medical_events"]
            k = first_id
            for n, event in enumerate(p.federal_events):
                if isinstance(event, Dose):
                    series = DEFAULT_VACCINES[event.product].doses
                    at = dates.midnight(event.days_ago)
                    details = (
                        f'{{"product": "{event.product}", "dose": {event.dose}, '
                        f'"series": {series}}}'
                    )
                    events.append((k, citizen, "VACCINATION", at, details, p.region, at))
                    k += 1
                elif isinstance(event, Illness):
                    episode = uuid.UUID(int=citizen.int ^ ((n + 1) << 64))
                    at = dates.midnight(event.diagnosed_days_ago)
                    details = f'{{"episode": "{episode}", "confirmation": "{event.confirmation}"}}'
                    events.append((k, citizen, "ILLNESS", at, details, p.region, at))
                    k += 1
                    if event.recovered_days_ago is not None:
                        at = dates.midnight(event.recovered_days_ago)
                        details = f'{{"episode": "{episode}"}}'
                        events.append((k, citizen, "RECOVERY", at, details, p.region, at))
                        k += 1
                else:
                    at = dates.hours(event.hours_ago)
                    result = "POSITIVE" if event.positive else "NEGATIVE"
                    details = (
                        f'{{"method": "{event.method}", "result": "{result}", '
                        f'"laboratory": "{event.laboratory}"}}'
                    )
                    events.append((k, citizen, "TEST", at, details, p.region, at))
                    k += 1
    return city, federal


async def _copy(conn: asyncpg.Connection, rows: Rows) -> None:
    for table, records in rows.items():
        if records:
            await conn.copy_records_to_table(table, records=records)


async def populate(
    city_dsn: str,
    federal_dsn: str,
    *,
    people: int,
    seed: int,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> PopulationSummary:
    """Replace both registries' rows with ``people`` synthetic people (see the module doc).

    ``progress`` is called after each batch with the number of people just written (an
    increment, as ``click.progressbar``'s ``update`` takes). Both registries are written in
    one transaction each and committed together at the end; then both are ANALYZEd.
    """
    if not 0 <= people <= MAX_PEOPLE:
        raise ValueError(f"people must be in [0, {MAX_PEOPLE}]")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    started = time.perf_counter()
    categories = dict.fromkeys((c.value for c in Category), 0)
    registries = dict.fromkeys(("city", "federal", "both"), 0)
    rows = dict.fromkeys((*CITY_TABLES, *FEDERAL_TABLES), 0)
    dates = _Dates(now)
    city = await asyncpg.connect(city_dsn)
    try:
        federal = await asyncpg.connect(federal_dsn)
        try:
            async with city.transaction(), federal.transaction():
                await prepare_registry(city, "city", CITY_TABLES)
                await prepare_registry(federal, "federal", FEDERAL_TABLES)
                starts = iter(range(0, people, batch_size))

                def build(start: int) -> tuple[list[PopulatedPerson], Rows, Rows]:
                    stop = min(start + batch_size, people)
                    batch = [population_person(i, seed) for i in range(start, stop)]
                    return (batch, *_rows(batch, seed, dates))

                def next_batch() -> asyncio.Task[tuple[list[PopulatedPerson], Rows, Rows]] | None:
                    start = next(starts, None)
                    return None if start is None else asyncio.create_task(
                        asyncio.to_thread(build, start)
                    )  # fmt: skip

                # The next batch is built in a thread while both servers load this one (on two
                # cores it measured about the same as building in line: the disk dominates).
                building = next_batch()
                while building is not None:
                    batch, city_rows, federal_rows = await building
                    building = next_batch()
                    await asyncio.gather(_copy(city, city_rows), _copy(federal, federal_rows))
                    for person in batch:
                        categories[person.category.value] += 1
                        registries[person.registries] += 1
                    for table, records in (*city_rows.items(), *federal_rows.items()):
                        rows[table] += len(records)
                    if progress is not None:
                        progress(len(batch))
                await federal.execute(
                    "SELECT setval(pg_get_serial_sequence('medical_events', 'id'),"
                    " coalesce(max(id), 0) + 1, false) FROM medical_events"
                )
            await city.execute(f"ANALYZE {', '.join(CITY_TABLES)}")
            await federal.execute(f"ANALYZE {', '.join(FEDERAL_TABLES)}")
        finally:
            await federal.close()
    finally:
        await city.close()
    return PopulationSummary(
        people=people,
        seed=seed,
        seconds=time.perf_counter() - started,
        categories=categories,
        registries=registries,
        rows=rows,
    )
