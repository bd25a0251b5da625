"""The demo people: fictional, each exercising one rule of the eligibility policy.

``seed_demo`` writes them into the two registries; the README lists them (see
:func:`readme_table`) so a user can try every outcome by hand. Event times are given
relative to "now" (days or hours ago), so the demo works on any day. Names and numbers
are invented; the SNILS numbers carry valid check digits so the API accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from regfed.domain.identifiers import fold_name
from regfed.registries.federal import format_snils_federal


@dataclass(frozen=True, slots=True)
class Dose:
    """A vaccine dose given ``days_ago`` (a date-only event)."""

    product: str
    dose: int
    days_ago: int


@dataclass(frozen=True, slots=True)
class Illness:
    """A COVID-19 episode diagnosed ``diagnosed_days_ago``; None: not recovered."""

    diagnosed_days_ago: int
    confirmation: str  # PCR | ELISA | CT | DOCUMENTS
    recovered_days_ago: int | None = None


@dataclass(frozen=True, slots=True)
class LabTest:
    """A laboratory result sampled ``hours_ago``."""

    method: str  # PCR | ELISA_IGG
    positive: bool
    hours_ago: int
    laboratory: str = "LAB-CITY-01"


@dataclass(frozen=True, slots=True)
class RawDocument:
    """A federal event stored verbatim: how the demo shows malformed documents."""

    event_type: str
    details: str  # JSON text, valid JSON (the column is jsonb) but not a valid document
    days_ago: int


CityEvent = Dose | Illness | LabTest
FederalEvent = Dose | Illness | LabTest | RawDocument


@dataclass(frozen=True, slots=True)
class DemoPerson:
    """One demo person: what they type into the portal, what the registries hold, and
    what they should get.

    ``outcome`` is machine-readable (``VACCINATION``, ``RECOVERY``, ``TEST`` or
    ``DENIED:<REASON>``); ``expected`` says the same for people, in English.
    """

    key: str  # a short stable slug, for test ids and registry row ids
    last_name: str
    first_name: str
    middle_name: str
    birth_date: date  # as the person types it
    snils: str | None  # 11 digits
    oms_policy: str | None  # 16 digits; only the city knows it
    passport: str | None  # 10 digits; only the federal registry knows it
    in_city: bool
    in_federal: bool
    outcome: str
    expected: str
    city_events: tuple[CityEvent, ...] = ()
    federal_events: tuple[FederalEvent, ...] = ()
    region: int = 77  # federal region_code of registration and of the events
    # The key of the person whose identifiers this one types, and what differs: a
    # lookalike is in neither registry, and must be answered as an unknown person.
    lookalike_of: str | None = None
    lookalike_note: str = ""
    # A federal record with these events that "arrives late": not seeded, inserted by
    # ``regfed demo arrive`` (the story of applications).
    arrives: tuple[FederalEvent, ...] = ()

    def __post_init__(self) -> None:
        """Events only where the person is registered: the list is data, checked early."""
        if self.city_events and not self.in_city:
            raise ValueError(f"{self.key}: city events but not in the city registry")
        if self.federal_events and not self.in_federal:
            raise ValueError(f"{self.key}: federal events but not in the federal registry")
        if self.arrives and self.in_federal:
            raise ValueError(f"{self.key}: a late federal record for someone already there")

    def arrived(self) -> DemoPerson:
        """This person once their late federal record has arrived."""
        if not self.arrives:
            raise ValueError(f"{self.key}: no record arrives late for this person")
        return replace(self, in_federal=True, federal_events=self.arrives, arrives=())

    @property
    def registries(self) -> str:
        """Where the person is registered, for the README."""
        if self.lookalike_of is not None:
            return f"neither ({self.lookalike_note})"
        if self.arrives:
            return f"neither (federal after `regfed demo arrive {self.last_name}`)"
        flags = (("city", self.in_city), ("federal", self.in_federal))
        present = [name for name, flag in flags if flag]
        return " + ".join(present) if present else "neither"


_SPUTNIK_V = "Gam-COVID-Vac"

# One person per line group, positional where the meaning is plain; formatting kept by hand.
# fmt: off
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "city-sputnik-v", "Белова", "Мария", "Сергеевна", date(1985, 4, 12),
        "14628735990", "7753100000000101", None, in_city=True, in_federal=False,
        outcome="VACCINATION", expected="vaccination, Sputnik V, city",
        city_events=(Dose(_SPUTNIK_V, 1, 81), Dose(_SPUTNIK_V, 2, 60)),
    ),
    DemoPerson(
        "federal-only-light", "Григорьев", "Алексей", "Николаевич", date(1979, 9, 23),
        "15239481774", None, "4611583920", in_city=False, in_federal=True, region=50,
        outcome="VACCINATION",
        expected="vaccination, Sputnik Light, federal (no city record: fallback)",
        federal_events=(Dose("Sputnik-Light", 1, 30),),
    ),
    DemoPerson(
        "merged-series", "Смирнов", "Дмитрий", "Андреевич", date(1990, 1, 30),
        "16380527469", "7753100000000202", "4512304958", in_city=True, in_federal=True,
        region=50, outcome="VACCINATION",
        expected="vaccination, Sputnik V: dose 1 in the city + dose 2 only in federal",
        city_events=(Dose(_SPUTNIK_V, 1, 100),),
        federal_events=(Dose(_SPUTNIK_V, 2, 79),),
    ),
    DemoPerson(
        "same-doses-both", "Кузнецова", "Елена", "Викторовна", date(1968, 7, 8),
        "17426395891", "7753100000000303", "4509118273", in_city=True, in_federal=True,
        outcome="VACCINATION",
        expected="vaccination, Sputnik V, city (the same doses in federal counted once)",
        city_events=(Dose(_SPUTNIK_V, 1, 120), Dose(_SPUTNIK_V, 2, 99)),
        federal_events=(Dose(_SPUTNIK_V, 1, 120), Dose(_SPUTNIK_V, 2, 99)),
    ),
    DemoPerson(
        "recovered-city", "Соколов", "Игорь", "Павлович", date(1972, 11, 2),
        "18547203686", "7753100000000404", None, in_city=True, in_federal=False,
        outcome="RECOVERY", expected="recovery, city case confirmed by PCR, recovered 50 days ago",
        city_events=(Illness(70, "PCR", 50),),
    ),
    DemoPerson(
        "recovered-federal", "Морозова", "Ольга", "Дмитриевна", date(1983, 3, 19),
        "19653084705", "7753100000000505", "4515672019", in_city=True, in_federal=True,
        outcome="RECOVERY",
        expected="recovery, federal ILLNESS (CT) + RECOVERY; the city knows her, no events",
        federal_events=(Illness(90, "CT", 75),),
    ),
    DemoPerson(
        "antibodies", "Волков", "Сергей", "Игоревич", date(1995, 6, 27),
        "20364817548", "7753100000000606", None, in_city=True, in_federal=False,
        outcome="RECOVERY", expected="recovery, positive ELISA IgG antibodies 20 days ago, city",
        city_events=(LabTest("ELISA_IGG", True, 20 * 24),),
    ),
    DemoPerson(
        "negative-pcr", "Новикова", "Анна", "Александровна", date(2001, 2, 14),
        "21475938283", "7753100000000707", None, in_city=True, in_federal=False,
        outcome="TEST", expected="test, negative PCR sampled 1 day ago, city",
        city_events=(LabTest("PCR", False, 24),),
    ),
    DemoPerson(
        "active-illness", "Фёдоров", "Михаил", "Олегович", date(1960, 10, 5),
        "22586149383", "7753100000000808", None, in_city=True, in_federal=False,
        outcome="DENIED:ACTIVE_ILLNESS",
        expected="denied: ACTIVE_ILLNESS (city case 10 days ago, not recovered) despite "
        "full Sputnik V",
        city_events=(Dose(_SPUTNIK_V, 1, 200), Dose(_SPUTNIK_V, 2, 179), Illness(10, "PCR")),
    ),
    DemoPerson(
        "positive-pcr", "Лебедева", "Татьяна", "Юрьевна", date(1988, 12, 21),
        "23697251400", None, "4518740261", in_city=False, in_federal=True,
        outcome="DENIED:ACTIVE_ILLNESS",
        expected="denied: ACTIVE_ILLNESS (positive PCR 5 days ago, federal)",
        federal_events=(LabTest("PCR", True, 5 * 24, "INVITRO-77"),),
    ),
    DemoPerson(
        "incomplete", "Козлов", "Андрей", "Викторович", date(1977, 5, 16),
        "24708362577", "7753100000000909", None, in_city=True, in_federal=False,
        outcome="DENIED:INCOMPLETE_VACCINATION",
        expected="denied: INCOMPLETE_VACCINATION (one Sputnik V dose, 15 days ago)",
        city_events=(Dose(_SPUTNIK_V, 1, 15),),
    ),
    DemoPerson(
        "not-recognised", "Павлова", "Наталья", "Игоревна", date(1992, 8, 9),
        "25819473612", None, "4020935817", in_city=False, in_federal=True, region=78,
        outcome="DENIED:VACCINE_NOT_RECOGNISED",
        expected="denied: VACCINE_NOT_RECOGNISED (two Comirnaty doses, federal)",
        federal_events=(Dose("Comirnaty", 1, 150), Dose("Comirnaty", 2, 129)),
    ),
    DemoPerson(
        "expired", "Семёнов", "Николай", "Петрович", date(1955, 2, 28),
        "26920584799", "7753100000001010", None, in_city=True, in_federal=False,
        outcome="DENIED:BASIS_EXPIRED",
        expected="denied: BASIS_EXPIRED (Sputnik V completed 400 days ago)",
        city_events=(Dose(_SPUTNIK_V, 1, 421), Dose(_SPUTNIK_V, 2, 400)),
    ),
    DemoPerson(
        "no-records", "Егорова", "Светлана", "Михайловна", date(1999, 9, 1),
        "27131695872", "7753100000001111", None, in_city=True, in_federal=False,
        outcome="DENIED:NO_RECORDS",
        expected="denied: NO_RECORDS (known to the city, no events)",
    ),
    DemoPerson(
        "unknown", "Николаев", "Павел", "Сергеевич", date(1986, 4, 4),
        "28242706978", None, None, in_city=False, in_federal=False,
        outcome="DENIED:NOT_FOUND", expected="denied: NOT_FOUND (in neither registry)",
    ),
    DemoPerson(
        "malformed-federal", "Орлова", "Ирина", "Владимировна", date(1981, 10, 30),
        "29353817003", None, "4521064738", in_city=False, in_federal=True,
        outcome="VACCINATION",
        expected="vaccination, CoviVac, federal (4 malformed event documents skipped)",
        federal_events=(
            RawDocument("VACCINATION", '"CoviVac"', 80),  # not an object
            RawDocument("VACCINATION", '{"product": "CoviVac", "dose": "1", "series": 2}', 70),
            Dose("CoviVac", 1, 70),
            RawDocument("TEST", '{"method": "PCR", "result": "UNCLEAR", "laboratory": "L"}', 60),
            RawDocument("RECOVERY", '{"episode": "5f0c6d1e-8b7a-4c3d-9e2f-1a0b9c8d7e6f"}', 55),
            Dose("CoviVac", 2, 49),
        ),
    ),
    DemoPerson(
        "wrong-birth-date", "Белова", "Мария", "Сергеевна", date(1985, 4, 21),
        "14628735990", "7753100000000101", None, in_city=False, in_federal=False,
        lookalike_of="city-sputnik-v",
        lookalike_note="the identifiers are registered with another birth date",
        outcome="DENIED:NOT_FOUND",
        expected="denied: NOT_FOUND (the first person's SNILS and OMS, wrong birth date)",
    ),
    DemoPerson(
        "wrong-name", "Иванов", "Иван", "", date(1985, 4, 12),
        "14628735990", None, None, in_city=False, in_federal=False,
        lookalike_of="city-sputnik-v",
        lookalike_note="the SNILS and birth date are registered under another name",
        outcome="DENIED:NOT_FOUND",
        expected="denied: NOT_FOUND (the first person's SNILS and birth date, another name: "
        "knowing both is not enough)",
    ),
    DemoPerson(
        "arrives-late", "Зайцев", "Артём", "Ильич", date(1993, 7, 14),
        "30158294753", None, "4523771902", in_city=False, in_federal=False, region=50,
        outcome="DENIED:NOT_FOUND",
        expected="denied: NOT_FOUND; an application gets vaccination, Sputnik V, federal "
        "once the record arrives (README, Applications)",
        arrives=(Dose(_SPUTNIK_V, 1, 45), Dose(_SPUTNIK_V, 2, 24)),
    ),
)
# fmt: on


def late_person(name: str) -> DemoPerson:
    """The demo person whose record arrives late, by last name (any case, ё or е) or key;
    ValueError naming the ones there are otherwise."""
    late = [p for p in DEMO_PEOPLE if p.arrives]
    for person in late:
        if name == person.key or fold_name(name) == fold_name(person.last_name):
            return person
    known = ", ".join(p.last_name for p in late)
    raise ValueError(f"no demo person's record arrives late under that name (there is: {known})")


def readme_rows() -> list[tuple[str, str, str, str, str]]:
    """(name, SNILS as people write it, birth date, registries, expected outcome) per person."""
    return [
        (
            " ".join(filter(None, (p.last_name, p.first_name, p.middle_name))),
            format_snils_federal(p.snils) if p.snils else "—",
            p.birth_date.isoformat(),
            p.registries,
            p.expected,
        )
        for p in DEMO_PEOPLE
    ]


def readme_table() -> str:
    """The demo people as a Markdown table for the README."""
    lines = [
        "| name | SNILS | birth date | registries | expected |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in readme_rows()]
    return "\n".join(lines) + "\n"
