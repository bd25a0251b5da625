"""The fault drills: the real server (``regfed serve`` in a child process) against real
PostgreSQL, with a TCP proxy in front of a dependency to black-hole, slow, refuse or cut
it, and a PostgreSQL of the drills' own to kill.

Slow drills are marked ``drill``: ``make drills`` runs every drill, ``make test`` only the
quick ones. Each drill records its figures (latencies under the fault, recovery times,
counts); they are printed as a table at the end of the run (and written as JSON to
``$REGFED_DRILL_FIGURES`` when it is set).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from regfed.demo.populate import PopulatedPerson, populate, population_person
from regfed.demo.schema import registry_ddl
from regfed.keystore.signing import generate_signing_key
from tests.conftest import CreateDatabase
from tests.drills.pg import KillablePostgres
from tests.drills.proxy import FaultProxy, Upstream, through

PEOPLE = 600
SEED = 9

FIGURES: list[tuple[str, str, str]] = []


def record(drill: str, figure: str, value: object) -> None:
    """Note one figure of a drill for the summary table."""
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    FIGURES.append((drill, figure, text))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The drills' figures, as a Markdown table."""
    if not FIGURES:
        return
    terminalreporter.section("drill figures")
    terminalreporter.write_line("| drill | figure | value |")
    terminalreporter.write_line("|---|---|---|")
    for drill, figure, value in FIGURES:
        terminalreporter.write_line(f"| {drill} | {figure} | {value} |")
    path = os.environ.get("REGFED_DRILL_FIGURES")
    if path:
        Path(path).write_text(json.dumps(FIGURES, ensure_ascii=False, indent=1))


@dataclass(frozen=True, slots=True)
class Population:
    """The registries the drills ask, filled with synthetic people."""

    city: str  # DSNs
    federal: str
    people: tuple[PopulatedPerson, ...]

    def where(self, predicate: Callable[[PopulatedPerson], bool]) -> list[PopulatedPerson]:
        """The people for whom ``predicate`` holds."""
        return [p for p in self.people if predicate(p)]

    def eligible(self, registries: str) -> list[PopulatedPerson]:
        """People who get a certificate, registered in ``registries`` (city/federal/both)."""
        return self.where(
            lambda p: p.registries == registries and not p.expected_outcome.startswith("DENIED")
        )


@pytest.fixture(scope="session")
async def population(create_database: CreateDatabase) -> Population:
    """Both registries with the same synthetic people for every drill (read-only to
    regfed, so they are shared)."""
    city = await create_database(registry_ddl("city"))
    federal = await create_database(registry_ddl("federal"))
    await populate(city, federal, people=PEOPLE, seed=SEED, now=datetime.now(UTC))
    return Population(city, federal, tuple(population_person(i, SEED) for i in range(PEOPLE)))


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signing key for every drill's server."""
    keys = tmp_path_factory.mktemp("drill-keys")
    keys.chmod(0o700)
    generate_signing_key(keys, "drill-signer")
    return keys


@pytest.fixture
async def proxies() -> AsyncIterator[Callable[[str], Awaitable[tuple[FaultProxy, str]]]]:
    """A factory: ``proxy, dsn = await proxies(dsn)`` puts a fault proxy in front of the
    server of ``dsn``; every proxy made is closed after the test."""
    made: list[FaultProxy] = []

    async def make(dsn: str) -> tuple[FaultProxy, str]:
        proxy = FaultProxy(Upstream.of_dsn(dsn))
        await proxy.start()
        made.append(proxy)
        return proxy, through(dsn, proxy.port)

    yield make
    for proxy in made:
        await proxy.close()


@pytest.fixture(scope="session")
def killable_pg() -> Iterator[KillablePostgres]:
    """The drills' own PostgreSQL, which they may kill."""
    server = KillablePostgres()
    server.start_first()
    try:
        yield server
    finally:
        server.destroy()
