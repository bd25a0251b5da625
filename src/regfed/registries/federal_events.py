"""Parsing the federal registry's ``medical_events`` documents: pure functions, no I/O.

Each event carries a JSON document whose shape depends on its type (registries README,
"Events"). The registry is not ours and its documents are not validated by its schema,
so every document is parsed defensively: one that is not JSON, not an object, lacks a
required key, has a value of the wrong type or an unknown code makes that ONE event
unusable. It is skipped, counted and logged by its event id (never by content, which may
be personal data), and the lookup goes on. Unknown keys are ignored.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from regfed.domain.model import (
    Confirmation,
    IllnessEpisode,
    LabMethod,
    LabResult,
    Registry,
    Vaccination,
    moscow_date,
)
from regfed.domain.vaccines import VaccineProduct

logger = logging.getLogger(__name__)

# A sanity bound: no product needs more doses, and a larger number is a data error.
MAX_DOSE = 10

_TEST_RESULTS = {"NEGATIVE": False, "POSITIVE": True}


class UnusableEventError(ValueError):
    """An event whose document cannot be used; the message is fixed text, never content."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One ``medical_events`` row as the adapter fetched it."""

    id: int
    event_type: str
    event_at: datetime  # aware
    details: str  # the JSON document as text


@dataclass(frozen=True, slots=True)
class ParsedEvents:
    """The domain events from one citizen's documents, and how many were unusable."""

    vaccinations: tuple[Vaccination, ...] = ()
    illnesses: tuple[IllnessEpisode, ...] = ()
    lab_results: tuple[LabResult, ...] = ()
    skipped: int = 0


def load_document(details: str) -> dict[str, object]:
    """The document as a JSON object."""
    try:
        document = json.loads(details)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise UnusableEventError("details is not JSON") from None
    if not isinstance(document, dict):
        raise UnusableEventError("details is not a JSON object")
    return document


def _required(document: Mapping[str, object], key: str) -> object:
    if key not in document:
        raise UnusableEventError(f"missing key {key!r}")
    return document[key]


def _small_positive_int(document: Mapping[str, object], key: str) -> int:
    value = _required(document, key)
    # bool is an int subclass in Python; `true` is not a dose number.
    if type(value) is not int or not 1 <= value <= MAX_DOSE:
        raise UnusableEventError(f"{key!r} is not an integer from 1 to {MAX_DOSE}")
    return value


def _string(document: Mapping[str, object], key: str) -> str:
    value = _required(document, key)
    if not isinstance(value, str):
        raise UnusableEventError(f"{key!r} is not a string")
    return value


def _episode(document: Mapping[str, object]) -> uuid.UUID:
    text = _string(document, "episode")
    try:
        return uuid.UUID(text)  # any spelling uuid accepts, compared canonically
    except ValueError:
        raise UnusableEventError("'episode' is not a UUID") from None


def parse_vaccination(
    document: Mapping[str, object], event_at: datetime, vaccines: Mapping[str, VaccineProduct]
) -> Vaccination:
    """A VACCINATION document: ``{"product", "dose", "series"}``; the day is the Moscow
    date of the event.

    ``series`` is validated but not used: the catalogue says how many doses a product
    needs, so a registry's disagreement cannot shorten a series.
    """
    product = _string(document, "product")
    if product not in vaccines:
        raise UnusableEventError("'product' is not in the vaccine catalogue")
    dose = _small_positive_int(document, "dose")
    _small_positive_int(document, "series")
    return Vaccination(
        product=product, dose=dose, day=moscow_date(event_at), source=Registry.FEDERAL
    )


def parse_illness(document: Mapping[str, object]) -> tuple[uuid.UUID, Confirmation]:
    """An ILLNESS document: ``{"episode": uuid, "confirmation": PCR|ELISA|CT|DOCUMENTS}``."""
    episode = _episode(document)
    text = _string(document, "confirmation")
    try:
        confirmation = Confirmation(text)
    except ValueError:
        raise UnusableEventError("'confirmation' is not a known confirmation") from None
    return episode, confirmation


def parse_recovery(document: Mapping[str, object]) -> uuid.UUID:
    """A RECOVERY document: ``{"episode": uuid}``, the episode it closes."""
    return _episode(document)


def parse_test(document: Mapping[str, object], event_at: datetime) -> LabResult:
    """A TEST document: ``{"method": PCR|ELISA_IGG, "result": NEGATIVE|POSITIVE,
    "laboratory"}``; the sample instant is the event's."""
    text = _string(document, "method")
    try:
        method = LabMethod(text)
    except ValueError:
        raise UnusableEventError("'method' is not a known test method") from None
    result = _string(document, "result")
    if result not in _TEST_RESULTS:
        raise UnusableEventError("'result' is not NEGATIVE or POSITIVE")
    laboratory = _string(document, "laboratory")
    return LabResult(
        method=method,
        positive=_TEST_RESULTS[result],
        sampled_at=event_at,
        laboratory=laboratory,
        source=Registry.FEDERAL,
    )


@dataclass(slots=True)
class _Episode:
    diagnosed_on: date
    confirmation: Confirmation
    recovered_on: date | None = None


def parse_events(
    events: Iterable[RawEvent], vaccines: Mapping[str, VaccineProduct]
) -> ParsedEvents:
    """All of one citizen's events, ILLNESS and RECOVERY paired by episode.

    ``events`` come in ``event_at`` order, so for an episode the first ILLNESS is the
    diagnosis and the first RECOVERY on or after its day is the recovery; a repeated
    ILLNESS or RECOVERY of an episode, a RECOVERY with no ILLNESS, and a RECOVERY before
    the diagnosis day are unusable.
    """
    vaccinations: list[Vaccination] = []
    lab_results: list[LabResult] = []
    episodes: dict[uuid.UUID, _Episode] = {}
    recoveries: list[tuple[int, uuid.UUID, date]] = []
    skipped = 0

    def skip(event_id: int, reason: str) -> None:
        nonlocal skipped
        skipped += 1
        logger.warning("federal event %d skipped: %s", event_id, reason)

    for event in events:
        try:
            document = load_document(event.details)
            if event.event_type == "VACCINATION":
                vaccinations.append(parse_vaccination(document, event.event_at, vaccines))
            elif event.event_type == "TEST":
                lab_results.append(parse_test(document, event.event_at))
            elif event.event_type == "ILLNESS":
                episode, confirmation = parse_illness(document)
                if episode in episodes:
                    raise UnusableEventError("a second ILLNESS of the same episode")
                episodes[episode] = _Episode(moscow_date(event.event_at), confirmation)
            elif event.event_type == "RECOVERY":
                # Paired after the loop: a RECOVERY may be stored before its ILLNESS.
                recoveries.append((event.id, parse_recovery(document), moscow_date(event.event_at)))
            else:
                raise UnusableEventError("unknown event type")
        except UnusableEventError as exc:
            skip(event.id, str(exc))

    for event_id, episode_id, day in recoveries:
        found = episodes.get(episode_id)
        if found is None:
            skip(event_id, "RECOVERY of an episode with no ILLNESS")
        elif day < found.diagnosed_on:
            skip(event_id, "RECOVERY before the diagnosis")
        elif found.recovered_on is not None:
            skip(event_id, "a second RECOVERY of the same episode")
        else:
            found.recovered_on = day

    # Insertion order is diagnosis order, because events come in event_at order.
    illnesses = tuple(
        IllnessEpisode(e.diagnosed_on, e.confirmation, e.recovered_on, Registry.FEDERAL)
        for e in episodes.values()
    )
    return ParsedEvents(tuple(vaccinations), illnesses, tuple(lab_results), skipped)
