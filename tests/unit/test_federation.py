"""Fan-out to the registries: concurrency, deadlines, named outcomes. Fakes, not mocks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import pytest

from regfed.breaker import CircuitBreaker
from regfed.domain.model import PersonQuery, PersonRecord, Registry, Vaccination
from regfed.errors import RegistryError
from regfed.federation.fanout import Federation, SourceStatus, Upstream
from regfed.registries.base import RegistryAdapter

QUERY = PersonQuery("Иванов", "Иван", "", date(1980, 3, 14), snils="11223344595")


def record(registry: Registry) -> PersonRecord:
    return PersonRecord(registry, "Иванов", "Иван", "", date(1980, 3, 14), snils="11223344595")


def federation_of(registries: Sequence[RegistryAdapter], timeout: float) -> Federation:
    """The registries in order, each with ``timeout``, the city leading."""
    return Federation([Upstream(r, timeout, leads=r.registry is Registry.CITY) for r in registries])


@dataclass
class FakeRegistry:
    """A registry that answers after ``delay`` seconds with ``answer`` (or raises it)."""

    registry: Registry
    answer: PersonRecord | Exception | None
    delay: float = 0.0

    asked: int = 0

    def keyed_on(self, query: PersonQuery) -> bool:
        return True

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        self.asked += 1
        await asyncio.sleep(self.delay)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_both_matched_merge_city_led() -> None:
    """Both registries match: the merged record is the city's, and nothing is degraded."""
    federation = federation_of(
        [
            FakeRegistry(Registry.CITY, record(Registry.CITY)),
            FakeRegistry(Registry.FEDERAL, record(Registry.FEDERAL)),
        ],
        timeout=1.0,
    )
    lookup = await federation.lookup(QUERY)
    assert [s.status for s in lookup.sources] == [SourceStatus.MATCHED, SourceStatus.MATCHED]
    assert lookup.record is not None
    assert lookup.record.registry is Registry.CITY
    assert not lookup.degraded


@dataclass
class RendezvousRegistry:
    """A registry that answers only once every registry has been asked."""

    registry: Registry
    barrier: asyncio.Barrier

    def keyed_on(self, query: PersonQuery) -> bool:
        return True

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        await self.barrier.wait()
        return None


async def test_registries_are_asked_concurrently() -> None:
    """Both registries are in flight at once (asked one after the other, neither would answer)."""
    barrier = asyncio.Barrier(2)
    federation = federation_of(
        [RendezvousRegistry(Registry.CITY, barrier), RendezvousRegistry(Registry.FEDERAL, barrier)],
        timeout=5.0,
    )
    lookup = await federation.lookup(QUERY)
    assert [s.status for s in lookup.sources] == [SourceStatus.NOT_FOUND] * 2
    assert lookup.record is None


async def test_slow_registry_times_out_and_the_other_answers() -> None:
    """A registry past its deadline is TIMED_OUT; the other's record stands, degraded."""
    federation = federation_of(
        [
            FakeRegistry(Registry.CITY, record(Registry.CITY), delay=5),
            FakeRegistry(Registry.FEDERAL, record(Registry.FEDERAL)),
        ],
        timeout=0.1,
    )
    lookup = await federation.lookup(QUERY)
    assert lookup.sources[0].status is SourceStatus.TIMED_OUT
    assert lookup.record is not None
    assert lookup.record.registry is Registry.FEDERAL
    assert lookup.degraded
    assert not lookup.unanswered


async def test_callers_deadline_bounds_each_registry() -> None:
    """The caller's remaining time caps the registry timeout."""
    federation = federation_of([FakeRegistry(Registry.CITY, None, delay=30)], timeout=60)
    lookup = await federation.lookup(QUERY, remaining=0.1)
    assert lookup.sources[0].status is SourceStatus.TIMED_OUT
    assert lookup.unanswered


@pytest.mark.parametrize("error", [RegistryError("down"), RuntimeError("adapter bug")])
async def test_failing_registry_is_reported_not_raised(error: Exception) -> None:
    """Registry errors, and even adapter bugs, become FAILED outcomes."""
    federation = federation_of(
        [
            FakeRegistry(Registry.CITY, error),
            FakeRegistry(Registry.FEDERAL, record(Registry.FEDERAL)),
        ],
        timeout=1,
    )
    lookup = await federation.lookup(QUERY)
    assert lookup.sources[0].status is SourceStatus.FAILED
    assert lookup.sources[1].status is SourceStatus.MATCHED
    assert lookup.degraded


async def test_cancellation_propagates() -> None:
    """Cancelling the caller cancels the lookup; it is not reported as a failure."""
    federation = federation_of([FakeRegistry(Registry.CITY, None, delay=5)], timeout=10)
    task = asyncio.create_task(federation.lookup(QUERY))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("last", "first", "middle", "same"),
    [
        ("ИВАНОВ", "иван", "", True),  # case does not matter
        ("Иванов", "Иван", "Иванович", True),
        ("Иванов", "Иван", "", True),  # a patronymic counts only when both give one
        ("Иванов", "Иван", "Петрович", False),  # both give one: it counts
        ("Иваноф", "Иван", "", False),
        ("Иванов", "Пётр", "Иванович", False),
    ],
)
async def test_a_record_is_the_person_only_when_the_names_agree(
    last: str, first: str, middle: str, same: bool
) -> None:
    """A record found by identifier and birth date is a match only if the names agree;
    otherwise it is NOT_FOUND and nothing of it is kept (whatever the adapter returned)."""
    registry_record = PersonRecord(
        Registry.CITY, "Иванов", "Иван", "Иванович", date(1980, 3, 14), snils="11223344595"
    )
    query = PersonQuery(last, first, middle, date(1980, 3, 14), snils="11223344595")
    federation = federation_of([FakeRegistry(Registry.CITY, registry_record)], timeout=1)
    lookup = await federation.lookup(query)
    if same:
        assert lookup.sources[0].status is SourceStatus.MATCHED
        assert lookup.record is not None
    else:
        assert lookup.sources[0].status is SourceStatus.NOT_FOUND
        assert lookup.sources[0].record is None
        assert lookup.record is None
    assert not lookup.degraded


async def test_yo_and_hyphens_are_folded_when_names_are_compared() -> None:
    """ "Фёдоров" and "Федоров", "Анна-Мария" and "Анна Мария" are the same names."""
    registry_record = PersonRecord(Registry.CITY, "Федоров", "Анна Мария", "", date(1960, 10, 5))
    query = PersonQuery("Фёдоров", "Анна-Мария", "", date(1960, 10, 5), snils="22586149383")
    federation = federation_of([FakeRegistry(Registry.CITY, registry_record)], timeout=1)
    assert (await federation.lookup(query)).sources[0].status is SourceStatus.MATCHED


async def test_the_leading_upstream_leads_wherever_it_is_listed() -> None:
    """Merge roles are data: the leading upstream's record leads though listed last, and a
    third registry fills in."""
    city, federal = record(Registry.CITY), record(Registry.FEDERAL)
    partner = replace(
        record(Registry.FEDERAL),
        vaccinations=(Vaccination("Sputnik-Light", 1, date(2026, 3, 1), Registry.FEDERAL),),
    )
    lookup = await Federation(
        [
            Upstream(FakeRegistry(Registry.FEDERAL, federal), 1.0),
            Upstream(FakeRegistry(Registry.FEDERAL, partner), 1.0),
            Upstream(FakeRegistry(Registry.CITY, city), 1.0, leads=True),
        ]
    ).lookup(QUERY)
    assert lookup.record is not None
    assert lookup.record.registry is Registry.CITY
    assert lookup.record.vaccinations == partner.vaccinations
    assert [s.registry for s in lookup.sources] == [
        Registry.FEDERAL,
        Registry.FEDERAL,
        Registry.CITY,
    ]


# --- circuit breakers --------------------------------------------------------------------


class SteppedClock:
    """A monotonic clock for breakers that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guarded(adapter: FakeRegistry, clock: SteppedClock, timeout: float = 1.0) -> Federation:
    """One upstream with a breaker that opens after 3 failures and probes after 5 s."""
    breaker = CircuitBreaker("city registry", failures=3, reset_after=5.0, clock=clock)
    return Federation([Upstream(adapter, timeout, leads=True, breaker=breaker)])


async def test_an_open_breaker_answers_failed_without_asking() -> None:
    """After consecutive failures the registry is not asked: FAILED at once."""
    clock = SteppedClock()
    dead = FakeRegistry(Registry.CITY, RegistryError("down"))
    federation = guarded(dead, clock)
    for _ in range(3):
        assert (await federation.lookup(QUERY)).sources[0].status is SourceStatus.FAILED
    assert dead.asked == 3
    lookup = await federation.lookup(QUERY)
    assert lookup.sources[0].status is SourceStatus.FAILED
    assert dead.asked == 3  # not asked: the breaker is open


async def test_one_probe_after_the_reset_closes_the_breaker() -> None:
    """Once the reset time has passed one call probes; its success closes the breaker."""
    clock = SteppedClock()
    registry = FakeRegistry(Registry.CITY, RegistryError("down"))
    federation = guarded(registry, clock)
    for _ in range(3):
        await federation.lookup(QUERY)
    registry.answer = record(Registry.CITY)  # it is back
    assert (await federation.lookup(QUERY)).sources[0].status is SourceStatus.FAILED
    clock.now += 5.0
    assert (await federation.lookup(QUERY)).sources[0].status is SourceStatus.MATCHED
    assert (await federation.lookup(QUERY)).sources[0].status is SourceStatus.MATCHED
    assert registry.asked == 5


async def test_a_timeout_of_the_callers_own_deadline_does_not_count_against_the_registry() -> None:
    """Only a registry that used up its own timeout counts as failing."""
    clock = SteppedClock()
    slow = FakeRegistry(Registry.CITY, None, delay=5)
    federation = guarded(slow, clock, timeout=1.0)
    for _ in range(5):
        lookup = await federation.lookup(QUERY, remaining=0.01)
        assert lookup.sources[0].status is SourceStatus.TIMED_OUT
    assert slow.asked == 5  # the breaker never opened


async def test_a_registry_without_the_querys_identifiers_is_not_asked() -> None:
    """A registry the query has no key for answers NOT_FOUND without a call, even with its
    breaker open: it could not know the person anyway."""

    @dataclass
    class PassportOnly(FakeRegistry):
        def keyed_on(self, query: PersonQuery) -> bool:
            return query.passport is not None

    registry = PassportOnly(Registry.FEDERAL, RegistryError("down"))
    lookup = await Federation([Upstream(registry, 1.0)]).lookup(QUERY)
    assert lookup.sources[0].status is SourceStatus.NOT_FOUND
    assert not lookup.degraded
    assert registry.asked == 0
