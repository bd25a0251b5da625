"""Merging what the registries know about one person.

The leading record stands — its names and events — and each other record fills in the
events it lacks (the federal registry knows other regions and clinics the city does not
run). The same event in two records counts once, the leading copy winning. Which record
leads is the federation's choice (``fanout.Upstream.leads``): the city's when there is one,
else the federal one alone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
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


def _fill(lead: PersonRecord, extra: PersonRecord) -> PersonRecord:
    """``lead`` with what ``extra`` knows and ``lead`` does not."""
    return replace(
        lead,
        snils=lead.snils or extra.snils,
        oms_policy=lead.oms_policy or extra.oms_policy,
        passport=lead.passport or extra.passport,
        vaccinations=_union(lead.vaccinations, extra.vaccinations, _vaccination_key),
        illnesses=_union(lead.illnesses, extra.illnesses, _episode_key),
        lab_results=_union(lead.lab_results, extra.lab_results, _lab_key),
        skipped_events=lead.skipped_events + extra.skipped_events,
    )


def merge(records: Sequence[PersonRecord]) -> PersonRecord | None:
    """One record for the person: the first of ``records`` leads, each next one fills in;
    None when no registry knows them."""
    if not records:
        return None
    merged = records[0]
    for extra in records[1:]:
        merged = _fill(merged, extra)
    return merged
