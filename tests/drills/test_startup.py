"""Starting with a dependency down: the server starts anyway, says what it can and cannot
do, and mends by itself; start-up is bounded, obeys SIGTERM at any moment, and an
unreachable dependency is one log line naming it, not a traceback."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.drills.conftest import Population, record
from tests.drills.load import issue_request, timed
from tests.drills.server import NOT_SERVING, SERVING, Health, ServerProcess, server_env

pytestmark = pytest.mark.postgres

STARTING = r"starting \(pid"
LISTENING = r"serving regfed\.v1 on"


def seconds_between(server: ServerProcess, first: str, then: str) -> float:
    """Seconds between the first log lines matching ``first`` and ``then``."""
    start = next(t for t, line in server.lines if re.search(first, line))
    end = next(t for t, line in server.lines if re.search(then, line))
    return end - start


async def test_store_down_at_start_then_appearing(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """The store refusing connections: the server starts NOT_SERVING (the process itself
    SERVING), Issue is UNAVAILABLE at once; when the store appears it is migrated and the
    service is SERVING within a second or two, by itself."""
    name = "start-up, store refusing"
    store = await create_database()  # empty: the server must migrate it when it appears
    proxy, proxied = await proxies(store)
    await proxy.set("refuse")
    server = ServerProcess(
        server_env(
            tmp_path, keys_dir, store=proxied, city=population.city, federal=population.federal
        )
    )
    await server.start()
    health = Health(server.target)
    try:
        record(
            name,
            "start-up (starting -> listening), s",
            seconds_between(server, STARTING, LISTENING),
        )
        assert await health.status("") == SERVING
        assert await health.status() == NOT_SERVING
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub: Any = pb_grpc.CertificateServiceStub(channel)
            person = population.eligible("city")[0]
            call = await timed(lambda: stub.Issue(issue_request(person), timeout=10))
            assert call.code == "UNAVAILABLE"
            record(
                name,
                "Issue while the store is down: code, latency s",
                f"{call.code}, {call.latency:.3f}",
            )
            assert call.latency < 1.0
            await proxy.set("pass")
            appeared = time.monotonic()
            serving = await health.until(SERVING, timeout=10)
            record(name, "SERVING after the store appeared, s", serving)
            assert time.monotonic() - appeared <= 2.0
            response = await stub.Issue(issue_request(person), timeout=10)
            assert response.outcome == pb.OUTCOME_ISSUED
        conn = await asyncpg.connect(store)
        try:
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") > 0
        finally:
            await conn.close()
        assert server.count("store unreachable") == 1, server.log
        assert server.count("Traceback") == 0, server.log
    finally:
        await health.close()
        assert await server.stop() == 0


async def test_registries_down_at_start(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """The city registry refusing and the federal one black-holed: the server starts at
    once, logs one line for each, answers UNAVAILABLE within the registry timeout, and
    answers fully once they are back."""
    name = "start-up, city refusing + federal black-holed"
    city_proxy, city = await proxies(population.city)
    federal_proxy, federal = await proxies(population.federal)
    await city_proxy.set("refuse")
    await federal_proxy.set("blackhole")
    server = ServerProcess(
        server_env(
            tmp_path,
            keys_dir,
            store=await create_database(),
            city=city,
            federal=federal,
            registry_timeout=1.0,
        )
    )
    await server.start()
    health = Health(server.target)
    try:
        started = seconds_between(server, STARTING, LISTENING)
        record(name, "start-up (starting -> listening), s", started)
        assert started < 1.0  # nothing waits on a registry at start-up
        assert await health.status() == SERVING  # the store is fine
        await server.wait_for("city registry unreachable at start-up", timeout=5)
        await server.wait_for("federal registry unreachable at start-up", timeout=5)
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub: Any = pb_grpc.CertificateServiceStub(channel)
            person = population.eligible("both")[0]
            call = await timed(lambda: stub.Issue(issue_request(person), timeout=10))
            assert call.code == "UNAVAILABLE"
            assert call.latency <= 1.0 + 1.0
            record(
                name, "Issue with both down: code, latency s", f"{call.code}, {call.latency:.3f}"
            )
            await city_proxy.set("pass")
            await federal_proxy.set("pass")
            restored = time.monotonic()
            async with asyncio.timeout(20):
                while True:
                    call = await timed(lambda: stub.Issue(issue_request(person), timeout=10))
                    if call.code == "OK" and not call.response.degraded:
                        break
                    await asyncio.sleep(0.05)
            record(name, "full answers after both came back, s", time.monotonic() - restored)
        assert server.count("registry unreachable at start-up") == 2
        assert server.count("Traceback") == 0, server.log
    finally:
        await health.close()
        assert await server.stop() == 0


async def test_sigterm_during_start_up(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """With the store black-holed the start waits for the store's first check (here up to
    10 s); SIGTERM meanwhile stops it at once, with status 0."""
    name = "start-up, SIGTERM while waiting on a black-holed store"
    proxy, proxied = await proxies(await create_database())
    await proxy.set("blackhole")
    server = ServerProcess(
        server_env(
            tmp_path,
            keys_dir,
            store=proxied,
            city=population.city,
            federal=population.federal,
            store_timeout=10.0,
        )
    )
    await server.spawn()
    try:
        await server.wait_for(STARTING, timeout=30)
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        server.signal()
        assert await server.wait_exit(5) == 0
        record(name, "exit after SIGTERM, s", time.monotonic() - signalled)
        assert server.count(LISTENING) == 0
        assert server.count("Traceback") == 0, server.log
    finally:
        await server.stop()


async def test_start_up_is_bounded_by_the_store_timeout(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """With the store black-holed the server listens after the store timeout (1 s here),
    NOT_SERVING; it does not hang."""
    name = "start-up, store black-holed"
    proxy, proxied = await proxies(await create_database())
    await proxy.set("blackhole")
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
    health = Health(server.target)
    try:
        waited = seconds_between(server, STARTING, LISTENING)
        record(name, "start-up (starting -> listening), s", waited)
        assert waited <= 1.0 + 1.0
        assert await health.status() == NOT_SERVING
        await proxy.set("pass")
        record(name, "SERVING after the link came back, s", await health.until(SERVING, timeout=10))
    finally:
        await health.close()
        assert await server.stop() == 0
