"""The reconciler against real PostgreSQL: reconcilers sharing the work, a cancelled one,
registries down, expiry, and no personal data in clear anywhere in the service database.

The clock is the test's: "the next pass" is the clock moved past the next check, then a
pass run, never a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from regfed.demo.people import DemoPerson
from regfed.domain.model import DenialReason, PersonQuery, PersonRecord, Registry
from regfed.errors import RegistryError
from regfed.registries.federal import format_passport_federal, format_snils_federal
from regfed.service.ports import (
    ApplicationCategory,
    ApplicationRecord,
    ApplicationStatus,
    Lease,
)
from regfed.service.reconciler import Outcome
from regfed.store.applications import ApplicationStore
from tests.conftest import CreateDatabase
from tests.integration.applications_world import (
    CONTACT,
    TTL,
    CountingLookup,
    World,
    missing_person,
    query_of,
    world_over,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def world(create_database: CreateDatabase) -> AsyncIterator[World]:
    """Fresh databases: empty registries, a migrated store."""
    async with world_over(create_database) as built:
        yield built


async def statuses(world: World) -> dict[str, tuple[str, int, bool]]:
    """Each application's (status, checks, keeps its sealed person), by id."""
    rows = await world.fetch("SELECT id, status, checks, sealed_person FROM applications")
    return {str(r["id"]): (r["status"], r["checks"], r["sealed_person"] is not None) for r in rows}


async def test_data_arriving_gets_the_code_at_the_next_pass(world: World) -> None:
    """Missing from both registries: PENDING; the record arrives; the next pass issues
    the code Issue would give, and GetApplication's view carries it."""
    person = missing_person(1)
    submitted = await world.submit(person)
    assert submitted.application.status is ApplicationStatus.PENDING
    assert submitted.application.denial is DenialReason.NOT_FOUND
    await world.arrive([person])
    world.next_pass()
    report = await world.reconciler().run_pass()
    assert report.outcomes == {Outcome.ISSUED: 1}
    view = await world.service.get(submitted.application.id)
    assert view.application.status is ApplicationStatus.ISSUED
    assert view.application.checks == 2
    assert view.certificate is not None
    assert view.certificate.qr_text.startswith("HC1:")
    # Read twice, the same code: re-signed deterministically from what the store keeps.
    again = await world.service.get(submitted.application.id)
    assert again.certificate is not None
    assert again.certificate.qr_text == view.certificate.qr_text


async def test_two_reconcilers_check_each_of_200_applications_once(world: World) -> None:
    """Two reconcilers at once over 200 pending applications: each application checked
    exactly once in the pass, each eligible one issued exactly one certificate."""
    people = [missing_person(i) for i in range(200)]
    for person in people:
        await world.submit(person)
    eligible = people[::4]  # 50 of them
    await world.arrive(eligible)
    world.lookup.asked.clear()
    world.next_pass()
    first, second = world.reconciler(), world.reconciler()
    reports = await asyncio.gather(first.run_pass(), second.run_pass())

    assert world.lookup.asked == {p.snils: 1 for p in people}
    assert sum(r.checked for r in reports) == 200
    assert sum(r.outcomes.get(Outcome.ISSUED, 0) for r in reports) == len(eligible)
    after = await statuses(world)
    assert sorted(checks for _, checks, _ in after.values()) == [2] * 200
    issued = await world.fetch(
        "SELECT a.uvci, c.person_key FROM applications a JOIN certificates c USING (uvci)"
        " WHERE a.status = 'issued'"
    )
    assert len(issued) == len(eligible)
    assert await world.certificate_count() == len(eligible)
    assert len({r["person_key"] for r in issued}) == len(eligible)


class StallingStore(ApplicationStore):
    """The real store whose settle never comes: the reconciler is stopped between the
    check (the certificate already issued) and writing its outcome."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self.reached = asyncio.Event()

    async def settle(self, application: ApplicationRecord, lease: Lease) -> bool:
        self.reached.set()
        await asyncio.Event().wait()  # until cancelled
        raise AssertionError("unreachable")


async def test_a_reconciler_cancelled_between_check_and_write_loses_nothing(
    world: World,
) -> None:
    """Cancelled after checking (and issuing) but before writing: every application is
    still there, still PENDING with its sealed person; the next pass issues the same
    certificate, not a second one."""
    people = [missing_person(i) for i in range(6)]
    for person in people:
        await world.submit(person)
    await world.arrive(people[:2])
    before = await statuses(world)
    world.next_pass()
    stalling = StallingStore(world.pools["store"])
    task = asyncio.create_task(world.reconciler(store=stalling, concurrency=1, batch=6).run_pass())
    async with asyncio.timeout(30):
        await stalling.reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await statuses(world) == before  # nothing changed, nothing lost
    issued_during_the_cut = await world.fetch("SELECT uvci FROM certificates")
    assert len(issued_during_the_cut) == 1  # the first eligible one was issued, not written

    # Its lease runs out; the next pass finds everything again.
    world.clock.advance(timedelta(minutes=5))
    report = await world.reconciler().run_pass()
    assert report.checked == 6
    assert report.outcomes[Outcome.ISSUED] == 2
    assert await world.certificate_count() == 2
    uvcis = {r["uvci"] for r in await world.fetch("SELECT uvci FROM applications")}
    assert issued_during_the_cut[0]["uvci"] in uvcis


class DownRegistry:
    """A registry that is down: every lookup fails."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def keyed_on(self, query: PersonQuery) -> bool:
        return True

    async def find(self, query: PersonQuery) -> PersonRecord | None:
        raise RegistryError(f"{self.registry.value} registry: connection refused (test)")


@pytest.mark.parametrize("down", [("federal",), ("city", "federal")], ids="+".join)
async def test_a_registry_down_charges_no_check_and_closes_nothing(
    world: World, down: tuple[str, ...]
) -> None:
    """With a registry down during a pass (even past the time to live, when a denial
    would close them), no application is charged a check, closed or changed; the pass
    pauses. Once the registries are back the next pass counts its checks again."""
    people = [missing_person(i) for i in range(5)]
    for person in people:
        await world.submit(person)
    before = await statuses(world)
    world.clock.advance(TTL + timedelta(days=1))
    adapters = {name: DownRegistry(Registry(name)) for name in down}
    outage = CountingLookup(world.federation(**adapters))
    report = await world.reconciler(service=world.application_service(outage)).run_pass()

    assert report.paused
    assert report.checked == 0
    assert await statuses(world) == before
    leased = await world.fetch("SELECT 1 FROM applications WHERE lease_token IS NOT NULL")
    assert not leased  # released at once, not left to run out

    back = await world.reconciler().run_pass()
    assert back.outcomes == {Outcome.EXPIRED: 5}


async def test_an_application_past_its_ttl_expires_with_its_last_denial(world: World) -> None:
    """Older than the time to live: closed EXPIRED with the last denial, its ciphertext
    erased, no next check."""
    submitted = await world.submit(missing_person(7))
    world.clock.advance(TTL)
    report = await world.reconciler().run_pass()
    assert report.outcomes == {Outcome.EXPIRED: 1}
    (row,) = await world.fetch("SELECT * FROM applications")
    assert row["status"] == "expired"
    assert row["denial"] == DenialReason.NOT_FOUND.value
    assert row["sealed_person"] is None
    assert row["next_check_at"] is None
    assert row["closed_at"] == world.clock.now
    view = await world.service.get(submitted.application.id)
    assert view.application.status is ApplicationStatus.EXPIRED
    assert view.application.denial is DenialReason.NOT_FOUND


def personal_texts(person: DemoPerson) -> list[str]:
    """Every way an identifier, name, birth date or the contact could be written."""
    texts = [person.last_name, person.first_name, person.middle_name, CONTACT]
    texts += [person.birth_date.isoformat(), person.birth_date.strftime("%d.%m.%Y")]
    if person.snils:
        texts += [person.snils, format_snils_federal(person.snils)]
    if person.passport:
        texts += [person.passport, format_passport_federal(person.passport)]
    if person.oms_policy:
        texts.append(person.oms_policy)
    return [t for t in texts if t]


async def plain_text_hits(world: World, people: list[DemoPerson]) -> list[str]:
    """Every (table, column) of the service database where a person's data shows in clear:
    each row of each table, every value as text and, for bytes, as raw bytes too."""
    tables = await world.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    assert {"applications", "certificates"} <= {t["table_name"] for t in tables}
    needles = sorted({text for person in people for text in personal_texts(person)})
    hits: set[str] = set()
    for table in tables:
        name = table["table_name"]
        for row in await world.fetch(f'SELECT * FROM "{name}"'):  # noqa: S608 - catalog names
            for column, value in row.items():
                if value is None:
                    continue
                if isinstance(value, bytes):
                    found = [n for n in needles if n.encode("utf-8") in value]
                else:
                    found = [n for n in needles if n.casefold() in str(value).casefold()]
                hits.update(f"{name}.{column}: {n}" for n in found)
    return sorted(hits)


async def test_no_personal_data_in_clear_in_any_table(world: World) -> None:
    """No identifier, name, birth date or contact in clear in any row of any table of the
    service database: while applications are open, and after they close (issued and
    expired)."""
    people = [missing_person(i) for i in range(3)]
    people[2] = replace(people[2], passport="4599123456", oms_policy="7799100000001234")
    for person in people:
        await world.submit(person)
    assert await plain_text_hits(world, people) == []

    await world.arrive(people[:1])
    world.next_pass()
    await world.reconciler().run_pass()  # people[0] issued
    world.clock.advance(TTL)
    await world.reconciler().run_pass()  # the others expired
    closed = await world.fetch("SELECT status, sealed_person FROM applications")
    assert sorted(r["status"] for r in closed) == ["expired", "expired", "issued"]
    assert all(r["sealed_person"] is None for r in closed)
    assert await world.certificate_count() == 1
    assert await plain_text_hits(world, people) == []

    # The scan does find data in clear: a canary table holding a contact and an identifier.
    await world.fetch("CREATE TABLE canary (note text, raw bytea)")
    snils = people[1].snils or ""
    await world.fetch("INSERT INTO canary VALUES ($1, $2)", CONTACT, snils.encode())
    assert await plain_text_hits(world, people) == [
        f"canary.note: {CONTACT}",
        f"canary.raw: {snils}",
    ]


async def test_a_second_submission_returns_the_open_application(world: World) -> None:
    """One open application per person, even for submissions racing each other."""
    person = missing_person(3)
    views = await asyncio.gather(*(world.submit(person) for _ in range(8)))
    assert len({v.application.id for v in views}) == 1
    rows = await world.fetch("SELECT status FROM applications")
    assert [r["status"] for r in rows] == ["pending"]


async def test_an_unchecked_submission_is_checked_when_the_registries_answer(
    world: World,
) -> None:
    """Submitted while the registries are down: recorded PENDING with no check and no
    denial, due at once; the next pass checks it."""
    outage = world.federation(
        city=DownRegistry(Registry.CITY), federal=DownRegistry(Registry.FEDERAL)
    )
    service = world.application_service(outage)
    view = await service.submit(
        query_of(missing_person(4)), contact=CONTACT, category=ApplicationCategory.OTHER
    )
    assert view.application.status is ApplicationStatus.PENDING
    assert view.application.checks == 0
    assert view.application.denial is None
    report = await world.reconciler().run_pass()  # no clock change: it is due already
    assert report.outcomes == {Outcome.PENDING: 1}
