"""A registry black-holed, slow, refusing, or both down, under concurrent Issue load.

What must hold (DESIGN.md, "Federation"; issue 9): every call is bounded by the registry
timeout (p99 asserted with a generous margin: this is a bound, not a benchmark); an answer
resting on one registry says so (``degraded``, the silent registry FAILED or TIMED_OUT);
no denial that the silent registry could overturn is given (UNAVAILABLE instead); the
registry's circuit breaker opens, and closes by itself once the registry is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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
from tests.drills.proxy import FaultProxy
from tests.drills.server import ServerProcess, server_env

pytestmark = pytest.mark.postgres

Proxies = Callable[[str], Awaitable[tuple[FaultProxy, str]]]
ANSWERED = (pb.SOURCE_STATUS_MATCHED, pb.SOURCE_STATUS_NOT_FOUND)
SILENT = (pb.SOURCE_STATUS_FAILED, pb.SOURCE_STATUS_TIMED_OUT)
REGISTRY: dict[str, Any] = {"city": pb.REGISTRY_CITY, "federal": pb.REGISTRY_FEDERAL}


def check_answer(call: Call, faulty: set[Any], mode: str) -> None:
    """The invariants of one answer given while the ``faulty`` registries misbehave."""
    assert call.code in ("OK", "UNAVAILABLE"), call
    if call.code != "OK":
        return
    response: pb.IssueResponse = call.response
    statuses: dict[Any, Any] = {s.registry: s.status for s in response.sources}
    assert response.degraded == any(s in SILENT for s in statuses.values())
    if mode != "slow":
        assert all(statuses[r] in SILENT for r in faulty), statuses
    if response.outcome == pb.OUTCOME_DENIED and response.degraded:
        # Only an active illness stands while a registry is silent.
        assert response.denial.reason == pb.DENIAL_REASON_ACTIVE_ILLNESS
    if response.outcome == pb.OUTCOME_ISSUED:
        # A certificate rests only on registries that answered.
        sources = {e.source for e in response.certificate.basis}
        assert all(statuses[s] == pb.SOURCE_STATUS_MATCHED for s in sources), statuses


async def drill(
    name: str,
    population: Population,
    proxies: Proxies,
    create_database: CreateDatabase,
    keys_dir: Path,
    home: Path,
    *,
    faulty: tuple[str, ...],
    mode: str,
    delay: float = 0.0,
    timeout: float = 2.0,
    seconds: float = 6.0,
    workers: int = 8,
) -> None:
    """Run Issue load for ``seconds`` with the ``faulty`` registries in ``mode``, then
    restore them and wait for the breakers to close."""
    city_proxy, city = await proxies(population.city)
    federal_proxy, federal = await proxies(population.federal)
    proxy = {"city": city_proxy, "federal": federal_proxy}
    store = await create_database()
    server = ServerProcess(
        server_env(
            home,
            keys_dir,
            store=store,
            city=city,
            federal=federal,
            registry_timeout=timeout,
            registry_pool_size=4,
        )
    )
    await server.start()
    people = (
        population.eligible("city")[:20]
        + population.eligible("federal")[:20]
        + population.eligible("both")[:20]
        + population.where(lambda p: p.expected_outcome.startswith("DENIED"))[:20]
    )
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub: Any = pb_grpc.CertificateServiceStub(channel)

            async def issue(worker: int, n: int) -> Call:
                person = people[(worker * 7 + n) % len(people)]
                return await timed(lambda: stub.Issue(issue_request(person), timeout=30))

            # Warm: every pool connection open and its statements prepared.
            warm = await closed_loop(workers, issue, seconds=1.0)
            assert set(codes(warm)) == {"OK"}, codes(warm)

            for registry in faulty:
                await proxy[registry].set(mode, delay)
            calls = await closed_loop(workers, issue, seconds=seconds)
            for call in calls:
                check_answer(call, {REGISTRY[r] for r in faulty}, mode)
            latencies = [c.latency for c in calls]
            p50, p99, worst = (
                percentile(latencies, 0.5),
                percentile(latencies, 0.99),
                max(latencies),
            )
            record(
                name,
                "calls (OK / UNAVAILABLE)",
                f"{codes(calls)['OK']} / {codes(calls)['UNAVAILABLE']}",
            )
            record(name, "p50 / p99 / max latency, s", f"{p50:.3f} / {p99:.3f} / {worst:.3f}")
            degraded = sum(1 for c in calls if c.code == "OK" and c.response.degraded)
            record(name, "degraded answers", degraded)
            # The bound: the registry timeout, with a generous margin for a loaded machine.
            assert p99 <= timeout * 1.5, (p50, p99, worst)
            assert worst <= timeout + 2.0, (p50, p99, worst)

            if mode in ("blackhole", "refuse"):
                for registry in faulty:
                    assert server.count(f"{registry} registry: circuit open") >= 1, server.log
                # With the breaker open, calls no longer wait on the dead registry.
                opened = min(t for t, line in server.lines if "registry: circuit open" in line)
                after = [c.latency for c in calls if c.started > opened + 0.1]
                if after:
                    record(name, "p50 latency with the breaker open, s", percentile(after, 0.5))
                    assert percentile(after, 0.5) <= timeout / 2

            for registry in faulty:
                await proxy[registry].set("pass")
            restored = time.monotonic()
            # The breakers close by themselves: some call probes, succeeds, and closes them.
            probe_people = population.eligible("both")[:10]
            async with asyncio.timeout(30):
                while True:
                    person = probe_people[int(time.monotonic() * 10) % len(probe_people)]
                    call = await timed(partial(stub.Issue, issue_request(person), timeout=30))
                    assert call.code in ("OK", "UNAVAILABLE"), call
                    if call.code == "OK" and not call.response.degraded:
                        break
                    await asyncio.sleep(0.05)
            record(
                name, "back to non-degraded answers after restore, s", time.monotonic() - restored
            )
            if mode in ("blackhole", "refuse"):
                for registry in faulty:
                    await server.wait_for(f"{registry} registry: circuit closed", timeout=10)
        assert server.count("Traceback") <= 1, server.log
    finally:
        assert await server.stop() == 0


async def test_city_registry_black_holed_quick(
    population: Population,
    proxies: Proxies,
    create_database: CreateDatabase,
    keys_dir: Path,
    tmp_path: Path,
) -> None:
    """The city registry black-holed: calls bounded by the registry timeout, degraded
    answers or UNAVAILABLE, the breaker opens and closes (a short run for make test)."""
    await drill(
        "city black-holed (quick, timeout 1 s)",
        population,
        proxies,
        create_database,
        keys_dir,
        tmp_path,
        faulty=("city",),
        mode="blackhole",
        timeout=1.0,
        seconds=3.0,
        workers=6,
    )


@pytest.mark.drill
@pytest.mark.parametrize(
    ("faulty", "mode", "delay"),
    [
        (("city",), "blackhole", 0.0),
        (("city",), "slow", 1.5),
        (("city",), "refuse", 0.0),
        (("federal",), "blackhole", 0.0),
        (("federal",), "slow", 1.5),
        (("federal",), "refuse", 0.0),
        (("city", "federal"), "blackhole", 0.0),
        (("city", "federal"), "refuse", 0.0),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else str(v),
)
async def test_registry_fault(
    population: Population,
    proxies: Proxies,
    create_database: CreateDatabase,
    keys_dir: Path,
    tmp_path: Path,
    faulty: tuple[str, ...],
    mode: str,
    delay: float,
) -> None:
    """Each registry black-holed, slow (1.5 s), refusing, and both down, with the default
    2 s registry timeout."""
    label = f"{' + '.join(faulty)} {mode}" + (f" {delay} s" if delay else "")
    await drill(
        label,
        population,
        proxies,
        create_database,
        keys_dir,
        tmp_path,
        faulty=faulty,
        mode=mode,
        delay=delay,
    )
