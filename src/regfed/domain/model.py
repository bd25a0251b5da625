"""The domain model every registry adapter maps its rows onto."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

# "Today" and date-only events are Moscow dates; Moscow has kept UTC+3 all year since 2014.
MOSCOW = timezone(timedelta(hours=3), "MSK")


def moscow_midnight(day: date) -> datetime:
    """The instant a date-only event is stored at: 00:00 Moscow time that day."""
    return datetime(day.year, day.month, day.day, tzinfo=MOSCOW)


def moscow_date(instant: datetime) -> date:
    """The Moscow calendar date of an aware instant."""
    return instant.astimezone(MOSCOW).date()


class Registry(enum.Enum):
    """A registry regfed federates."""

    CITY = "city"
    FEDERAL = "federal"


class Confirmation(enum.Enum):
    """How an illness episode was confirmed."""

    PCR = "PCR"
    ELISA = "ELISA"
    CT = "CT"
    DOCUMENTS = "DOCUMENTS"


class LabMethod(enum.Enum):
    """A laboratory test method."""

    PCR = "PCR"
    ELISA_IGG = "ELISA_IGG"


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """Who is asking, normalised: identifiers are bare digits, names stripped.

    At least one identifier is set (the API validates that before a query is built).
    """

    last_name: str
    first_name: str
    middle_name: str
    birth_date: date
    snils: str | None = None  # 11 digits
    oms_policy: str | None = None  # 16 digits
    passport: str | None = None  # 10 digits: series (4) + number (6)


@dataclass(frozen=True, slots=True)
class Vaccination:
    """One vaccine dose given."""

    product: str  # registry product code, e.g. "Gam-COVID-Vac"
    dose: int  # 1 for the first dose/component, 2 for the second, ...
    day: date
    source: Registry


@dataclass(frozen=True, slots=True)
class IllnessEpisode:
    """One COVID-19 illness episode; ``recovered_on`` is None while it goes on."""

    diagnosed_on: date
    confirmation: Confirmation
    recovered_on: date | None
    source: Registry


@dataclass(frozen=True, slots=True)
class LabResult:
    """One laboratory result: PCR (positive = virus found) or ELISA IgG (positive = antibodies)."""

    method: LabMethod
    positive: bool
    sampled_at: datetime  # aware
    laboratory: str
    source: Registry


Event = Vaccination | IllnessEpisode | LabResult


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """What one registry (or the merge of both) knows about a person.

    Names are the registry's spelling; identifiers are normalised to bare digits.
    """

    registry: Registry
    last_name: str
    first_name: str
    middle_name: str
    birth_date: date
    snils: str | None = None
    oms_policy: str | None = None
    passport: str | None = None
    vaccinations: tuple[Vaccination, ...] = ()
    illnesses: tuple[IllnessEpisode, ...] = ()
    lab_results: tuple[LabResult, ...] = ()
    # Events the adapter could not use (malformed documents, unknown products).
    skipped_events: int = field(default=0, compare=False)


class CertificateKind(enum.Enum):
    """What a certificate certifies."""

    VACCINATION = "vaccination"
    RECOVERY = "recovery"
    TEST = "test"


class DenialReason(enum.Enum):
    """Why no certificate is issued (DESIGN.md, "Eligibility policy")."""

    NOT_FOUND = "not_found"
    ACTIVE_ILLNESS = "active_illness"
    INCOMPLETE_VACCINATION = "incomplete_vaccination"
    VACCINE_NOT_RECOGNISED = "vaccine_not_recognised"
    BASIS_EXPIRED = "basis_expired"
    NO_RECORDS = "no_records"
