"""The service's own database failing under Issue load: killed and restarted, its
backends terminated, its link black-holed.

What must hold: every certificate and revocation the service acknowledged is in the
store afterwards, with no two live certificates for one person and basis; calls fail
fast and retryably (UNAVAILABLE, never INTERNAL) while the store is gone and succeed
again within a second of its return; health says NOT_SERVING during the outage and
SERVING again within a second or two; one log line per outage, not a traceback per call.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest

from regfed.demo.populate import PopulatedPerson
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.drills.conftest import Population, record
from tests.drills.load import issue_request, percentile
from tests.drills.pg import KillablePostgres
from tests.drills.server import NOT_SERVING, SERVING, HealthWatch, ServerProcess, server_env

pytestmark = pytest.mark.postgres

RETRYABLE = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


@dataclass
class Ledger:
    """What the clients were told: acknowledged certificates and revocations, every
    attempt's code, and when each success came."""

    issued: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    codes: Counter[str] = field(default_factory=Counter)
    successes: list[float] = field(default_factory=list)  # monotonic end times
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)

    def first_success_after(self, instant: float) -> float | None:
        """Seconds from ``instant`` to the first success ending after it."""
        later = [t for t in self.successes if t >= instant]
        return min(later) - instant if later else None


async def retrying(ledger: Ledger, call: Any, stop: asyncio.Event) -> Any:
    """``call()`` until it succeeds (retrying what is retryable after 50 ms), or None
    once ``stop`` is set."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = await call()
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            ledger.codes[code] += 1
            ledger.latencies.append((started, time.monotonic() - started))
            if code not in RETRYABLE:
                raise
            await asyncio.sleep(0.05)
            continue
        ledger.codes["OK"] += 1
        ended = time.monotonic()
        ledger.successes.append(ended)
        ledger.latencies.append((started, ended - started))
        return response
    return None


async def issue_load(
    target: str,
    people: list[PopulatedPerson],
    token: str,
    stop: asyncio.Event,
    *,
    workers: int = 8,
) -> Ledger:
    """Retrying clients issuing for ``people``; every third certificate is then revoked."""
    ledger = Ledger()
    operator = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = pb_grpc.CertificateServiceStub(channel)

        async def worker(index: int) -> None:
            n = 0
            while not stop.is_set():
                person = people[(index * 31 + n) % len(people)]
                n += 1
                request = issue_request(person)
                response = await retrying(ledger, lambda r=request: stub.Issue(r, timeout=10), stop)
                if response is None or response.outcome != pb.OUTCOME_ISSUED:
                    continue
                uvci = response.certificate.uvci
                ledger.issued.add(uvci)
                if n % 3 == 0 and uvci not in ledger.revoked:
                    revoke = pb.RevokeRequest(uvci=uvci, reason="drill")
                    done = await retrying(
                        ledger,
                        lambda r=revoke: stub.Revoke(r, metadata=operator, timeout=10),
                        stop,
                    )
                    if done is not None:
                        ledger.revoked.add(uvci)

        await asyncio.gather(*(worker(i) for i in range(workers)))
    return ledger


async def check_store(dsn: str, ledger: Ledger) -> None:
    """Everything acknowledged is there; no person holds two live certificates on one
    basis."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT uvci, revoked_at FROM certificates")
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM certificates WHERE revoked_at IS NULL"
            " GROUP BY person_key, basis_fingerprint HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    stored = {row["uvci"]: row["revoked_at"] for row in rows}
    assert ledger.issued <= stored.keys()
    assert all(stored[uvci] is not None for uvci in ledger.revoked)
    assert duplicates == 0


def eligible(population: Population) -> list[PopulatedPerson]:
    """People who get certificates, from every registry."""
    return (
        population.eligible("city")[:40]
        + population.eligible("federal")[:20]
        + population.eligible("both")[:40]
    )


@pytest.mark.drill
async def test_store_killed_three_times_under_load(
    population: Population,
    killable_pg: KillablePostgres,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """``pg_ctl stop -m immediate`` three times under Issue and Revoke load, then start."""
    name = "store killed x3"
    store = await killable_pg.create_database("regfed_drill_kill")
    server = ServerProcess(
        server_env(
            tmp_path, keys_dir, store=store, city=population.city, federal=population.federal
        )
    )
    await server.start()
    stop = asyncio.Event()
    outages: list[tuple[float, float]] = []
    try:
        async with HealthWatch(server.target) as health:
            load = asyncio.create_task(
                issue_load(server.target, eligible(population), server.operator_token, stop)
            )
            await asyncio.sleep(2)
            for _ in range(3):
                killed = time.monotonic()
                await killable_pg.kill()
                await asyncio.sleep(3)
                accepted = await killable_pg.restart()
                outages.append((killed, accepted))
                await asyncio.sleep(3)
            stop.set()
            ledger = await load
        await check_store(store, ledger)
        record(name, "calls by code", dict(ledger.codes))
        record(
            name,
            "certificates / revocations acknowledged",
            f"{len(ledger.issued)} / {len(ledger.revoked)}",
        )
        for number, (killed, accepted) in enumerate(outages, start=1):
            first = ledger.first_success_after(accepted)
            assert first is not None
            assert first <= 1.0, (number, first)
            assert health.seen(NOT_SERVING, killed, accepted), number
            serving = health.first(SERVING, accepted)
            assert serving is not None
            assert serving - accepted <= 2.0, (number, serving - accepted)
            record(name, f"outage {number}: first success after the store accepted, s", first)
            record(name, f"outage {number}: SERVING again after, s", serving - accepted)
            not_serving = health.first(NOT_SERVING, killed)
            assert not_serving is not None
            record(name, f"outage {number}: NOT_SERVING after the kill, s", not_serving - killed)
        during = [s for start, s in ledger.latencies if any(k <= start <= a for k, a in outages)]
        record(
            name,
            "p50 / p99 latency during outages, s",
            f"{percentile(during, 0.5):.3f} / {percentile(during, 0.99):.3f}",
        )
        assert set(ledger.codes) <= {"OK"} | RETRYABLE
        # One line per outage, not a traceback per failed call.
        assert server.count("Traceback") <= 2 * len(outages), server.log
        record(name, "log lines / tracebacks", f"{len(server.lines)} / {server.count('Traceback')}")
    finally:
        stop.set()
        assert await server.stop() == 0


@pytest.mark.drill
async def test_backends_terminated_every_two_seconds(
    population: Population,
    create_database: CreateDatabase,
    pg_server_dsn: str,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """``pg_terminate_backend`` on every backend of the store, every 2 s for 30 s."""
    name = "store backends terminated every 2 s for 30 s"
    store = await create_database()
    server = ServerProcess(
        server_env(
            tmp_path, keys_dir, store=store, city=population.city, federal=population.federal
        )
    )
    await server.start()
    database = urlsplit(store).path.lstrip("/")
    stop = asyncio.Event()
    terminated = 0
    try:
        load = asyncio.create_task(
            issue_load(server.target, eligible(population), server.operator_token, stop)
        )
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            for _ in range(15):
                await asyncio.sleep(2)
                terminated += await admin.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()) t",
                    database,
                )
        finally:
            await admin.close()
        stop.set()
        ledger = await load
        await check_store(store, ledger)
        assert set(ledger.codes) <= {"OK"} | RETRYABLE
        assert ledger.codes["OK"] > 0
        assert terminated >= 15  # the pool, the monitor and the revocation listener, each time
        record(name, "backends terminated", terminated)
        record(name, "calls by code", dict(ledger.codes))
        record(
            name,
            "certificates / revocations acknowledged",
            f"{len(ledger.issued)} / {len(ledger.revoked)}",
        )
        latencies = [s for _, s in ledger.latencies]
        record(
            name,
            "p50 / p99 latency, s",
            f"{percentile(latencies, 0.5):.3f} / {percentile(latencies, 0.99):.3f}",
        )
    finally:
        stop.set()
        assert await server.stop() == 0


async def test_store_black_holed_quick(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """The store's link black-holed under load: calls bounded by the store timeout and
    UNAVAILABLE, health NOT_SERVING, everything back when the link is."""
    name = "store black-holed (quick, store timeout 1 s)"
    store = await create_database()
    proxy, proxied = await proxies(store)
    server = ServerProcess(
        server_env(
            tmp_path,
            keys_dir,
            store=proxied,
            city=population.city,
            federal=population.federal,
            store_timeout=1.0,
        )
    )
    await server.start()
    stop = asyncio.Event()
    try:
        async with HealthWatch(server.target) as health:
            load = asyncio.create_task(
                issue_load(server.target, eligible(population), server.operator_token, stop)
            )
            await asyncio.sleep(1)
            holed = time.monotonic()
            await proxy.set("blackhole")
            await asyncio.sleep(4)
            await proxy.set("pass")
            restored = time.monotonic()
            await asyncio.sleep(2)
            stop.set()
            ledger = await load
        await check_store(store, ledger)
        assert set(ledger.codes) <= {"OK"} | RETRYABLE
        # Calls in flight when the link went count too (they started just before).
        during = [s for start, s in ledger.latencies if holed - 0.5 <= start <= restored]
        worst = max(during)
        record(name, "calls by code", dict(ledger.codes))
        record(
            name,
            "p50 / p99 / max latency while black-holed, s",
            f"{percentile(during, 0.5):.3f} / {percentile(during, 0.99):.3f} / {worst:.3f}",
        )
        # Registry lookup plus the store's bound, with a generous margin.
        assert worst <= 1.0 + 2.0
        not_serving = health.first(NOT_SERVING, holed)
        assert not_serving is not None
        assert not_serving <= restored
        record(name, "NOT_SERVING after the link went, s", not_serving - holed)
        serving = health.first(SERVING, restored)
        assert serving is not None
        assert serving - restored <= 2.0
        record(name, "SERVING again after the link came back, s", serving - restored)
        first = ledger.first_success_after(restored)
        assert first is not None
        record(name, "first success after the link came back, s", first)
    finally:
        stop.set()
        assert await server.stop() == 0
