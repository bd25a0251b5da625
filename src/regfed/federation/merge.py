"""Merging what the two registries know about one person.

The city record, when there is one, leads: its names and events stand, and the federal
registry fills in events the city does not have (other regions, clinics the city does not
run). The same event in both counts once, the city's copy winning. With no city match the
federal record stands alone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from typing import TypeVar

from regfed.domain.model import (
    IllnessEpisode,
    LabResult,
    PersonRecord,
    Vaccination,
    moscow_date,
)

E = TypeVar("E")


def _vaccination_key(v: Vaccination) -> Hashable:
    return (v.product, v.dose, v.day)


def _episode_key(e: IllnessEpisode) -> Hashable:
    # An episode is the same illness when it was diagnosed the same day; how each registry
    # recorded its confirmation may differ.
    return e.diagnosed_on


def _lab_key(r: LabResult) -> Hashable:
    # Registries store sample times with different precision; a result of the same method
    # and outcome sampled the same Moscow day is the same test.
    return (r.method, r.positive, moscow_date(r.sampled_at))


def _union(lead: Iterable[E], extra: Iterable[E], key: Callable[[E], Hashable]) -> tuple[E, ...]:
    """``lead`` in full, plus each event of ``extra`` whose key ``lead`` lacks."""
    merged = list(lead)
    seen = {key(e) for e in merged}
    for event in extra:
        k = key(event)
        if k not in seen:
            seen.add(k)
            merged.append(event)
    return tuple(merged)


def merge(city: PersonRecord | None, federal: PersonRecord | None) -> PersonRecord | None:
    """One record for the person: city-led, federal filling in; None when neither knows them."""
    if city is None:
        return federal
    if federal is None:
        return city
    return replace(
        city,
        snils=city.snils or federal.snils,
        oms_policy=city.oms_policy or federal.oms_policy,
        passport=city.passport or federal.passport,
        vaccinations=_union(city.vaccinations, federal.vaccinations, _vaccination_key),
        illnesses=_union(city.illnesses, federal.illnesses, _episode_key),
        lab_results=_union(city.lab_results, federal.lab_results, _lab_key),
        skipped_events=city.skipped_events + federal.skipped_events,
    )
