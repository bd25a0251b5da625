"""The eligibility policy (DESIGN.md, "Eligibility policy"): records + now -> decision.

A pure function: no I/O, no clock of its own. Every window is configuration.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from regfed.domain.model import (
    CertificateKind,
    Confirmation,
    DenialReason,
    Event,
    IllnessEpisode,
    LabMethod,
    LabResult,
    PersonRecord,
    Registry,
    Vaccination,
    moscow_date,
    moscow_midnight,
)
from regfed.domain.vaccines import DEFAULT_VACCINES, VaccineProduct


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The policy's windows and vaccine catalogue (defaults from DESIGN.md)."""

    vaccines: Mapping[str, VaccineProduct] = field(default_factory=lambda: DEFAULT_VACCINES)
    illness_active_days: int = 60
    positive_pcr_block_days: int = 14
    vaccination_valid_days: int = 365
    recovery_valid_days: int = 180
    antibodies_valid_days: int = 180
    test_valid_hours: int = 72
    recovery_confirmations: frozenset[Confirmation] = frozenset(Confirmation)


class BasisKind(enum.Enum):
    """Which rule a grant rests on (antibodies give a recovery certificate)."""

    VACCINATION = "vaccination"
    RECOVERY = "recovery"
    ANTIBODIES = "antibodies"
    PCR_TEST = "pcr_test"


@dataclass(frozen=True, slots=True)
class Grant:
    """A certificate the person may have.

    ``basis`` holds the events it rests on: for a vaccination the doses 1..series in dose
    order; for a recovery the episode; for antibodies or a test the lab result.
    """

    kind: CertificateKind
    basis_kind: BasisKind
    valid_from: datetime
    valid_until: datetime
    basis: tuple[Event, ...]
    product: VaccineProduct | None = None  # vaccination only


@dataclass(frozen=True, slots=True)
class Denial:
    """No certificate, and why."""

    reason: DenialReason


Decision = Grant | Denial


def decide(record: PersonRecord | None, now: datetime, config: PolicyConfig) -> Decision:
    """Apply the policy to what the registries know (None: nobody knows the person).

    ``now`` must be timezone-aware (ValueError otherwise); "today" is its Moscow date.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if record is None:
        return Denial(DenialReason.NOT_FOUND)
    today = moscow_date(now)
    if _has_active_illness(record, now, today, config):
        return Denial(DenialReason.ACTIVE_ILLNESS)
    doses = _given_doses(record, today, config)
    candidates = list(_candidates(record, doses, now, config))
    current = [c for c in candidates if c.valid_from <= now < c.valid_until]
    if current:
        return min(current, key=_preference)
    expired = any(c.valid_until <= now for c in candidates)
    return Denial(_denial_reason(doses, expired=expired, config=config))


# --- 1. active illness -------------------------------------------------------------------


def _has_active_illness(
    record: PersonRecord, now: datetime, today: date, config: PolicyConfig
) -> bool:
    """Whether an open episode or a recent positive PCR blocks every certificate."""
    return _open_episode(record, today, config) or _recent_positive_pcr(record, now, config)


def _open_episode(record: PersonRecord, today: date, config: PolicyConfig) -> bool:
    """An episode with no recovery diagnosed at most ``illness_active_days`` days ago.

    A diagnosis dated after today also counts: it is an illness we must not overlook.
    """
    limit = timedelta(days=config.illness_active_days)
    return any(
        episode.recovered_on is None and today - episode.diagnosed_on <= limit
        for episode in record.illnesses
    )


def _recent_positive_pcr(record: PersonRecord, now: datetime, config: PolicyConfig) -> bool:
    """A positive PCR sampled in ``[now - positive_pcr_block_days, now]`` not followed by a
    recovery recorded on or after the sample's Moscow day."""
    limit = timedelta(days=config.positive_pcr_block_days)
    for result in record.lab_results:
        if result.method is not LabMethod.PCR or not result.positive:
            continue
        if not timedelta(0) <= now - result.sampled_at <= limit:
            continue
        sample_day = moscow_date(result.sampled_at)
        if not any(
            episode.recovered_on is not None and episode.recovered_on >= sample_day
            for episode in record.illnesses
        ):
            return True
    return False


# --- 2. candidates -----------------------------------------------------------------------

# Preference on equal validity (DESIGN.md: vaccination, then recovery, then test); an
# illness episode is stronger evidence of recovery than an antibody result.
_BASIS_RANK: Mapping[BasisKind, int] = {
    BasisKind.VACCINATION: 0,
    BasisKind.RECOVERY: 1,
    BasisKind.ANTIBODIES: 2,
    BasisKind.PCR_TEST: 3,
}

# The city's copy of an event leads (DESIGN.md, "Federation"); used only to break ties.
_SOURCE_RANK: Mapping[Registry, int] = {Registry.CITY: 0, Registry.FEDERAL: 1}

# Doses of one product already given, by dose number; each holds the latest dose recorded
# under that number.
_DosesByProduct = dict[str, dict[int, Vaccination]]


def _given_doses(record: PersonRecord, today: date, config: PolicyConfig) -> _DosesByProduct:
    """Doses of catalogued products given by today, keyed by product code and dose number.

    Products missing from the catalogue are ignored (adapters drop them already), and so is
    a dose dated after today: it has not been given yet. A dose number recorded several
    times keeps its latest day (the city's copy on an equal day).
    """
    doses: _DosesByProduct = {}
    for shot in record.vaccinations:
        if shot.product not in config.vaccines or shot.day > today:
            continue
        by_number = doses.setdefault(shot.product, {})
        known = by_number.get(shot.dose)
        if known is None or _dose_key(shot) > _dose_key(known):
            by_number[shot.dose] = shot
    return doses


def _dose_key(shot: Vaccination) -> tuple[date, int]:
    """Which of two records of the same dose wins: the later day, then the city's copy."""
    return shot.day, -_SOURCE_RANK[shot.source]


def _complete_series(doses: Mapping[int, Vaccination], series: int) -> tuple[Vaccination, ...]:
    """Doses 1..series in dose order, or () when any of them is missing."""
    if all(number in doses for number in range(1, series + 1)):
        return tuple(doses[number] for number in range(1, series + 1))
    return ()


def _candidates(
    record: PersonRecord, doses: _DosesByProduct, now: datetime, config: PolicyConfig
) -> Iterator[Grant]:
    """Every grant some basis would give, whatever its validity relative to now.

    A lab result sampled after now does not exist yet: without this, an IgG sampled later
    today would count from today's midnight.
    """
    yield from _vaccination_candidates(doses, config)
    yield from _recovery_candidates(record.illnesses, config)
    yield from _lab_candidates((r for r in record.lab_results if r.sampled_at <= now), config)


def _vaccination_candidates(doses: _DosesByProduct, config: PolicyConfig) -> Iterator[Grant]:
    """One grant per recognised product whose series is complete, from the last dose's day."""
    for code, by_number in doses.items():
        product = config.vaccines[code]
        if not product.recognised:
            continue
        series = _complete_series(by_number, product.doses)
        if not series:
            continue
        valid_from = moscow_midnight(max(shot.day for shot in series))
        yield Grant(
            kind=CertificateKind.VACCINATION,
            basis_kind=BasisKind.VACCINATION,
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=config.vaccination_valid_days),
            basis=series,
            product=product,
        )


def _recovery_candidates(
    episodes: Iterable[IllnessEpisode], config: PolicyConfig
) -> Iterator[Grant]:
    """One grant per recovered episode with an accepted confirmation, from the recovery day."""
    for episode in episodes:
        if episode.recovered_on is None:
            continue
        if episode.confirmation not in config.recovery_confirmations:
            continue
        valid_from = moscow_midnight(episode.recovered_on)
        yield Grant(
            kind=CertificateKind.RECOVERY,
            basis_kind=BasisKind.RECOVERY,
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=config.recovery_valid_days),
            basis=(episode,),
        )


def _lab_candidates(results: Iterable[LabResult], config: PolicyConfig) -> Iterator[Grant]:
    """Grants from lab results: a positive ELISA IgG from its sample day, a negative PCR
    from its sample instant."""
    for result in results:
        if result.method is LabMethod.ELISA_IGG and result.positive:
            valid_from = moscow_midnight(moscow_date(result.sampled_at))
            yield Grant(
                kind=CertificateKind.RECOVERY,
                basis_kind=BasisKind.ANTIBODIES,
                valid_from=valid_from,
                valid_until=valid_from + timedelta(days=config.antibodies_valid_days),
                basis=(result,),
            )
        elif result.method is LabMethod.PCR and not result.positive:
            yield Grant(
                kind=CertificateKind.TEST,
                basis_kind=BasisKind.PCR_TEST,
                valid_from=result.sampled_at,
                valid_until=result.sampled_at + timedelta(hours=config.test_valid_hours),
                basis=(result,),
            )


# --- 3. choice ---------------------------------------------------------------------------


def _preference(grant: Grant) -> tuple[timedelta, int, timedelta, tuple[str, ...]]:
    """Sort key, smallest first: latest ``valid_until``, then the basis rank, then the
    latest ``valid_from``, then a stable key so equal grants always resolve the same way."""
    epoch = moscow_midnight(date(1970, 1, 1))
    return (
        -(grant.valid_until - epoch),
        _BASIS_RANK[grant.basis_kind],
        -(grant.valid_from - epoch),
        _stable_key(grant),
    )


def _stable_key(grant: Grant) -> tuple[str, ...]:
    """A total, deterministic order among grants of one kind with equal validity."""
    if grant.product is not None:
        return (grant.product.code,)
    event = grant.basis[0]
    source = str(_SOURCE_RANK[event.source])
    if isinstance(event, IllnessEpisode):
        return (source, event.diagnosed_on.isoformat(), event.confirmation.value)
    if isinstance(event, LabResult):
        return (source, event.sampled_at.isoformat(), event.laboratory)
    return (source,)


# --- 4. denial ---------------------------------------------------------------------------


def _denial_reason(doses: _DosesByProduct, *, expired: bool, config: PolicyConfig) -> DenialReason:
    """The most specific reason when nothing counts (NOT_FOUND is decided earlier)."""
    if any(_is_incomplete(by_number, config.vaccines[code]) for code, by_number in doses.items()):
        return DenialReason.INCOMPLETE_VACCINATION
    if doses and not any(config.vaccines[code].recognised for code in doses):
        return DenialReason.VACCINE_NOT_RECOGNISED
    if expired:
        return DenialReason.BASIS_EXPIRED
    return DenialReason.NO_RECORDS


def _is_incomplete(doses: Mapping[int, Vaccination], product: VaccineProduct) -> bool:
    """A recognised product with some, but not all, of its doses 1..series given."""
    numbers = range(1, product.doses + 1)
    return (
        product.recognised
        and any(number in doses for number in numbers)
        and not all(number in doses for number in numbers)
    )
