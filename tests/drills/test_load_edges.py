"""Overload, and SIGTERM under load: a busy server stays healthy to its probes, and a
stopping one lets every call that reached it finish."""

from __future__ import annotations

import asyncio
import re
import time
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest

from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.drills.conftest import Population, record
from tests.drills.load import Call, closed_loop, codes, issue_request, percentile, timed
from tests.drills.server import NOT_SERVING, SERVING, Health, HealthWatch, ServerProcess, server_env

pytestmark = pytest.mark.postgres


async def test_overload_leaves_health_checks_through(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """Beyond the cap calls are refused at once with RESOURCE_EXHAUSTED, while every health
    check during the overload is answered SERVING, at once."""
    name = "overload (cap 4, 16 slow calls at once)"
    city_proxy, city = await proxies(population.city)
    server = ServerProcess(
        server_env(
            tmp_path,
            keys_dir,
            store=await create_database(),
            city=city,
            federal=population.federal,
            max_concurrent_rpcs=4,
            registry_pool_size=8,
        )
    )
    await server.start()
    health = Health(server.target)
    people = population.eligible("city")[:16]
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub: Any = pb_grpc.CertificateServiceStub(channel)
            # Four connections open with their statements prepared, so that once the link is
            # slow each lookup is one slow round trip.
            warm = await asyncio.gather(*(stub.Issue(issue_request(p)) for p in people[:4]))
            assert {w.outcome for w in warm} == {pb.OUTCOME_ISSUED}
            await city_proxy.set("slow", 1.0)
            calls = [
                asyncio.create_task(timed(partial(stub.Issue, issue_request(p), timeout=10)))
                for p in people
            ]
            await asyncio.sleep(0.2)
            checks: list[Call] = []
            for _ in range(20):
                checks.append(await timed(partial(health.status, timeout=2)))
                await asyncio.sleep(0.02)
            done = await asyncio.gather(*calls)
        refused = [c for c in done if c.code == "RESOURCE_EXHAUSTED"]
        admitted = [c for c in done if c.code == "OK"]
        assert len(admitted) + len(refused) == len(done), codes(done)
        assert len(refused) >= len(people) - 4
        assert max(c.latency for c in refused) < 0.5
        assert all(c.response == SERVING for c in checks)
        assert max(c.latency for c in checks) < 0.5
        record(name, "calls admitted / refused", f"{len(admitted)} / {len(refused)}")
        record(name, "max latency of a refusal, s", max(c.latency for c in refused))
        record(
            name,
            "health checks SERVING, max latency s",
            f"{len(checks)}/{len(checks)}, {max(c.latency for c in checks):.3f}",
        )
    finally:
        await health.close()
        assert await server.stop() == 0


async def test_sigterm_under_load(
    population: Population,
    create_database: CreateDatabase,
    proxies: Any,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """SIGTERM with fast and slow calls in flight: NOT_SERVING at once, calls still taken
    during the drain delay, every call that reached a handler finishes within the grace,
    exit 0."""
    name = "SIGTERM under load (drain 1 s, grace 3 s)"
    drain, grace = 1.0, 3.0
    city_proxy, city = await proxies(population.city)
    server = ServerProcess(
        server_env(
            tmp_path,
            keys_dir,
            store=await create_database(),
            city=city,
            federal=population.federal,
            drain_delay=drain,
            grace=grace,
            registry_pool_size=8,
        )
    )
    await server.start()
    slow_people = population.eligible("city")[:8]
    stop_naive = asyncio.Event()
    stop_polite = asyncio.Event()
    try:
        async with (
            grpc.aio.insecure_channel(server.target) as channel,
            HealthWatch(server.target, every=0.02) as watch,
        ):
            stub: Any = pb_grpc.CertificateServiceStub(channel)
            # Eight connections open with their statements prepared, so that once the link
            # is slow each lookup is one slow round trip (1 s).
            warm = await asyncio.gather(
                *(stub.Issue(issue_request(p), timeout=10) for p in slow_people)
            )
            codes_to_verify = [w.certificate.qr_payload for w in warm[:4]]
            await city_proxy.set("slow", 1.0)

            async def verify(worker: int, n: int) -> Call:
                request = pb.VerifyRequest(qr_payload=codes_to_verify[(worker + n) % 4])
                return await timed(lambda: stub.Verify(request, timeout=10))

            async def naive() -> list[Call]:
                # A client that never looks at health: it keeps calling until the end.
                return await closed_loop(3, verify, until=stop_naive)

            async def polite() -> list[Call]:
                # A load balancer's client: it stops sending once health says NOT_SERVING.
                return await closed_loop(3, verify, until=stop_polite)

            def slow(person: Any) -> asyncio.Task[Call]:
                return asyncio.create_task(
                    timed(lambda: stub.Issue(issue_request(person), timeout=10))
                )

            naive_load = asyncio.create_task(naive())
            polite_load = asyncio.create_task(polite())
            await asyncio.sleep(0.5)
            before = [slow(p) for p in slow_people[:4]]  # in flight at SIGTERM
            await asyncio.sleep(0.5)
            signalled = time.monotonic()
            server.signal()
            first_not_serving = None
            async with asyncio.timeout(5):
                while first_not_serving is None:
                    first_not_serving = watch.first(NOT_SERVING, signalled)
                    await asyncio.sleep(0.01)
            stop_polite.set()
            await asyncio.sleep(drain / 2)
            during = [slow(p) for p in slow_people[4:]]  # reach handlers during the drain
            status = await server.wait_exit(drain + grace + 5)
            exited = time.monotonic()
            stop_naive.set()
            naive_calls, polite_calls = await naive_load, await polite_load
            slow_calls = await asyncio.gather(*before, *during)
        assert status == 0
        assert first_not_serving - signalled <= 0.3
        assert all(c.code == "OK" for c in slow_calls), codes(slow_calls)
        assert all(c.code == "OK" for c in polite_calls), codes(polite_calls)
        naive_codes = codes(naive_calls)
        assert set(naive_codes) <= {"OK", "UNAVAILABLE", "CANCELLED"}, naive_codes
        stopped = re.search(r"stopped: (\d+) calls were in flight, (\d+) cut off", server.log)
        assert stopped is not None, server.log
        assert stopped.group(2) == "0"
        accepted_during_drain = sum(
            1 for c in naive_calls if c.code == "OK" and signalled < c.started < signalled + drain
        )
        assert accepted_during_drain > 0
        record(name, "NOT_SERVING after SIGTERM, s", first_not_serving - signalled)
        record(name, "exit after SIGTERM, s (status)", f"{exited - signalled:.3f} ({status})")
        record(
            name,
            "slow calls in flight / finished OK",
            f"{len(slow_calls)} / {codes(slow_calls)['OK']}",
        )
        record(name, "calls taken during the drain", accepted_during_drain)
        record(name, "naive client codes", dict(naive_codes))
        record(name, "polite client codes", dict(codes(polite_calls)))
        record(
            name,
            "in flight at stop / cut off by the grace",
            f"{stopped.group(1)} / {stopped.group(2)}",
        )
        latency = [c.latency for c in slow_calls]
        record(
            name,
            "slow call latency p50 / max, s",
            f"{percentile(latency, 0.5):.3f} / {max(latency):.3f}",
        )
    finally:
        await server.stop()
