"""Applications over real PostgreSQL, wired by hand: the store, two registry databases, the
real federation, Issue and application use cases, and reconcilers on a clock the test
moves (so "the next pass" needs no waiting)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from regfed.demo.people import DemoPerson, Dose
from regfed.demo.populate import snils_for
from regfed.demo.schema import registry_ddl
from regfed.demo.seed import arrive
from regfed.domain.model import PersonQuery
from regfed.domain.policy import PolicyConfig
from regfed.federation.fanout import FederatedLookup, Federation, Upstream
from regfed.hcert.keys import SigningKey
from regfed.postgres.pool import create_pool
from regfed.registries.base import RegistryAdapter
from regfed.registries.city import CityRegistry
from regfed.registries.federal import FederalRegistry
from regfed.service.applications import ApplicationService, ApplicationView, Schedule
from regfed.service.issuing import IssueService
from regfed.service.personkey import PersonKeyer
from regfed.service.ports import ApplicationCategory, ApplicationStore
from regfed.service.reconciler import Reconciler
from regfed.service.sealing import Sealer
from regfed.store.applications import ApplicationStore as PostgresApplicationStore
from regfed.store.certificates import CertificateStore
from regfed.store.migrate import migrate
from tests.conftest import CreateDatabase
from tests.unit.service.fakes import FakeTally, FixedClock, signer, signing_key

INTERVAL = timedelta(seconds=60)
TTL = timedelta(days=30)
CONTACT = "zaitsev.late@example.org"


def missing_person(index: int) -> DemoPerson:
    """A person in neither registry whose federal record (full Sputnik V) can arrive."""
    return DemoPerson(
        f"late-{index}", "Опоздалов", f"Имя{index}", "Тестович", date(1980, 1, 1),
        snils_for(900_000 + index), None, None, in_city=False, in_federal=False,
        outcome="DENIED:NOT_FOUND", expected="NOT_FOUND until the record arrives",
        arrives=(Dose("Gam-COVID-Vac", 1, 50), Dose("Gam-COVID-Vac", 2, 29)),
    )  # fmt: skip


def query_of(person: DemoPerson) -> PersonQuery:
    """What the portal sends for ``person``."""
    return PersonQuery(
        person.last_name, person.first_name, person.middle_name, person.birth_date,
        snils=person.snils, oms_policy=person.oms_policy, passport=person.passport,
    )  # fmt: skip


class CountingLookup:
    """The real federation, counting how often each person (by SNILS) is looked up."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation
        self.asked: Counter[str | None] = Counter()

    async def lookup(self, query: PersonQuery, remaining: float | None = None) -> FederatedLookup:
        self.asked[query.snils] += 1
        return await self.federation.lookup(query, remaining)


class World:
    """Every real part of applications but the gRPC server."""

    def __init__(
        self,
        store_dsn: str,
        federal_dsn: str,
        pools: dict[str, asyncpg.Pool],
        key: SigningKey,
        clock: FixedClock,
    ) -> None:
        self.store_dsn = store_dsn
        self.federal_dsn = federal_dsn
        self.pools = pools
        self.key = key
        self.clock = clock
        self.sealer = Sealer(secrets.token_bytes(32))
        self.schedule = Schedule(interval=INTERVAL, max_backoff=timedelta(hours=1), ttl=TTL)
        self.certificates = CertificateStore(pools["store"])
        self.store = PostgresApplicationStore(pools["store"])
        self.lookup = CountingLookup(self.federation())
        self.service = self.application_service()

    def federation(
        self, city: RegistryAdapter | None = None, federal: RegistryAdapter | None = None
    ) -> Federation:
        """The real federation; ``city``/``federal`` replace an adapter (an outage)."""
        vaccines = PolicyConfig().vaccines
        return Federation(
            [
                Upstream(city or CityRegistry(self.pools["city"], vaccines), 2.0, leads=True),
                Upstream(federal or FederalRegistry(self.pools["federal"], vaccines), 2.0),
            ]
        )

    def application_service(self, lookup: Any = None) -> ApplicationService:
        """The application use case over Issue, over ``lookup`` (default: the counting one)."""
        keyer = PersonKeyer(b"p" * 32)
        issuing = IssueService(
            federation=lookup or self.lookup,
            policy=PolicyConfig(),
            store=self.certificates,
            denials=FakeTally(),
            signer=signer(self.key, self.clock),
            keyer=keyer,
            clock=self.clock,
        )
        return ApplicationService(
            issuing=issuing,
            store=self.store,
            sealer=self.sealer,
            keyer=keyer,
            signer=signer(self.key, self.clock),
            schedule=self.schedule,
            clock=self.clock,
        )

    def reconciler(
        self,
        *,
        service: ApplicationService | None = None,
        store: ApplicationStore | None = None,
        concurrency: int = 4,
        batch: int = 8,
    ) -> Reconciler:
        """A reconciler as the server runs it, unthrottled, on the test's clock."""
        return Reconciler(
            service or self.service,
            store or self.store,
            interval=INTERVAL.total_seconds(),
            concurrency=concurrency,
            rate=1_000_000.0,
            postpone=timedelta(hours=1),
            batch=batch,
            clock=self.clock,
        )

    async def submit(
        self, person: DemoPerson, category: ApplicationCategory = ApplicationCategory.OTHER
    ) -> ApplicationView:
        """``person`` applies."""
        return await self.service.submit(query_of(person), contact=CONTACT, category=category)

    async def arrive(self, people: Iterable[DemoPerson]) -> None:
        """The people's federal records arrive, dated relative to the test's clock."""
        for person in people:
            await arrive(self.federal_dsn, person, self.clock.now)

    def next_pass(self) -> None:
        """Move the clock past every pending application's next check (first re-checks are
        one interval apart)."""
        self.clock.advance(INTERVAL + timedelta(seconds=1))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of the service database, read directly."""
        return list(await self.pools["store"].fetch(sql, *args))

    async def certificate_count(self) -> int:
        """Certificates in the store."""
        return int(await self.pools["store"].fetchval("SELECT count(*) FROM certificates"))


@asynccontextmanager
async def world_over(create_database: CreateDatabase) -> AsyncIterator[World]:
    """A World over fresh databases: empty registries (their schemas only), a migrated
    store; closed on exit."""
    store = await create_database()
    city = await create_database(registry_ddl("city"))
    federal = await create_database(registry_ddl("federal"))
    conn = await asyncpg.connect(store)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pools: dict[str, asyncpg.Pool] = {}
    try:
        for name, dsn in (("store", store), ("city", city), ("federal", federal)):
            pools[name] = await create_pool(dsn, 10)
        now = datetime.now(UTC)
        yield World(store, federal, pools, signing_key(now), FixedClock(now))
    finally:
        for pool in pools.values():
            await pool.close()
