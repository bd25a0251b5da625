"""``regfed serve --workers 2``: two server processes on one port, stopped together."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from regfed.demo.people import DEMO_PEOPLE
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.integration.harness import demo_settings, person_message

pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def serving(target: str) -> bool:
    """Whether the server at ``target`` says SERVING within a bounded wait."""
    for _ in range(100):
        try:
            async with grpc.aio.insecure_channel(target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)  # type: ignore[attr-defined]
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.2)
    return False


async def test_workers_share_the_port_and_stop_together(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """Two workers answer on one port; SIGTERM to the supervisor stops every process."""
    settings = await demo_settings(create_database, tmp_path)
    target = f"127.0.0.1:{free_port()}"
    env = dict(
        os.environ,
        REGFED_STORE_DSN=settings.store_dsn or "",
        REGFED_CITY_DSN=settings.city_dsn or "",
        REGFED_FEDERAL_DSN=settings.federal_dsn or "",
        REGFED_HOME=str(tmp_path),
        REGFED_KEYS_DIR=str(settings.keys_dir),
        REGFED_APPLICATION_KEY_FILE=str(settings.application_key_file),
        REGFED_LISTEN=target,
        REGFED_DRAIN_DELAY="0",
    )
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "regfed", "serve", "--workers", "2", env=env
    )
    try:
        assert await serving(target)
        person = next(p for p in DEMO_PEOPLE if p.outcome == "VACCINATION")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.CertificateServiceStub(channel)
            request = pb.IssueRequest(person=person_message(person))
            replies = await asyncio.gather(*(stub.Issue(request, timeout=10) for _ in range(8)))
        assert {r.outcome for r in replies} == {pb.OUTCOME_ISSUED}
        assert len({r.certificate.uvci for r in replies}) == 1
    finally:
        supervisor.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            status = await supervisor.wait()
    assert status == 0
    assert not await serving_once(target)


async def serving_once(target: str) -> bool:
    """Whether anything answers at ``target`` now."""
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)  # type: ignore[attr-defined]
    except grpc.aio.AioRpcError:
        return False
    return True


async def test_workers_report_one_metrics_view(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """With --workers 2 the supervisor serves /metrics for both: the calls each worker
    answered add up in one grpc_server_handled_total."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    settings = await demo_settings(create_database, tmp_path)
    target, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = dict(
        os.environ,
        REGFED_STORE_DSN=settings.store_dsn or "",
        REGFED_CITY_DSN=settings.city_dsn or "",
        REGFED_FEDERAL_DSN=settings.federal_dsn or "",
        REGFED_HOME=str(tmp_path),
        REGFED_KEYS_DIR=str(settings.keys_dir),
        REGFED_APPLICATION_KEY_FILE=str(settings.application_key_file),
        REGFED_LISTEN=target,
        REGFED_METRICS_LISTEN=metrics,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "regfed", "serve", "--workers", "2", env=env
    )
    calls = 12
    try:
        assert await serving(target)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.CertificateServiceStub(channel)
            await asyncio.gather(
                *(stub.GetTrustList(pb.GetTrustListRequest(), timeout=10) for _ in range(calls))
            )

        def scrape() -> float:
            url = f"http://{metrics}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:  # loopback
                text = response.read().decode()
            return sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "grpc_server_handled_total"
                and sample.labels.get("grpc_method") == "GetTrustList"
            )

        # Each worker hands its call metrics over within a second (api/observe.py).
        for _ in range(50):  # bounded: 50 scrapes, 0.1 s apart
            if await asyncio.to_thread(scrape) >= calls:
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(scrape) == calls
    finally:
        supervisor.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await supervisor.wait()
