"""A registry down: answers from the other one, degraded; never a denial it could overturn.

The city registry is broken for real (its tables renamed under the running server), so
its lookups fail inside asyncpg exactly as an outage would surface.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from regfed.app import Application
from regfed.demo.people import DEMO_PEOPLE
from regfed.errors import ConfigError
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc
from tests.conftest import CreateDatabase
from tests.integration.harness import channel_to, demo_settings, person_message, running

if TYPE_CHECKING:  # the async stub type exists for type checkers only
    from regfed.v1.certificate_service_pb2_grpc import CertificateServiceAsyncStub as Stub

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def app(
    create_database: CreateDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Application]:
    """A running regfed whose city registry has lost its tables."""
    settings = await demo_settings(create_database, tmp_path_factory.mktemp("regfed-home"))
    async with running(settings) as application:
        assert settings.city_dsn is not None
        conn = await asyncpg.connect(settings.city_dsn)
        try:
            await conn.execute("ALTER TABLE patients RENAME TO patients_gone")
        finally:
            await conn.close()
        yield application


@pytest.fixture(scope="module")
async def stub(app: Application) -> AsyncIterator[Stub]:
    """A CertificateService client."""
    async with channel_to(app) as channel:
        yield pb_grpc.CertificateServiceStub(channel)


def demo(key: str) -> pb.IssueRequest:
    return pb.IssueRequest(person=person_message(next(p for p in DEMO_PEOPLE if p.key == key)))


async def test_federal_answer_is_given_degraded(stub: Stub) -> None:
    """A federal-only person is issued from the federal registry, marked degraded, and the
    city's failure is in the sources."""
    response = await stub.Issue(demo("federal-only-light"), timeout=10)
    assert response.outcome == pb.OUTCOME_ISSUED
    assert response.degraded
    statuses = {s.registry: s.status for s in response.sources}
    assert statuses == {
        pb.REGISTRY_CITY: pb.SOURCE_STATUS_FAILED,
        pb.REGISTRY_FEDERAL: pb.SOURCE_STATUS_MATCHED,
    }
    assert {e.source for e in response.certificate.basis} == {pb.REGISTRY_FEDERAL}


async def test_active_illness_stands_on_its_own(stub: Stub) -> None:
    """An active illness in the registry that answered is a denial even while the other is
    down: no data could lift it."""
    response = await stub.Issue(demo("positive-pcr"), timeout=10)
    assert response.outcome == pb.OUTCOME_DENIED
    assert response.denial.reason == pb.DENIAL_REASON_ACTIVE_ILLNESS
    assert response.degraded


@pytest.mark.parametrize("key", ["city-sputnik-v", "not-recognised", "unknown"])
async def test_a_denial_the_silent_registry_could_overturn_is_unavailable(
    stub: Stub, key: str
) -> None:
    """NOT_FOUND or any other overturnable denial is UNAVAILABLE (retryable), with RetryInfo
    and nothing about the failure's internals."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Issue(demo(key), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]  # aio errors are Calls
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    details = caught.value.details() or ""
    assert "patients" not in details
    assert "SQLSTATE" not in details


async def waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    """Whether some session waits on a lock within a bounded wait (the blocked call)."""
    for _ in range(100):
        if await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_overload_is_resource_exhausted(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """Beyond max_concurrent_rpcs, a call is refused at once with RESOURCE_EXHAUSTED; health
    checks still get through."""
    settings = await demo_settings(create_database, tmp_path)
    assert settings.city_dsn is not None
    blocker = await asyncpg.connect(settings.city_dsn)
    try:
        async with (
            running(settings, max_concurrent_rpcs=1, registry_timeout=3.0) as app,
            channel_to(app) as channel,
        ):
            stub: Stub = pb_grpc.CertificateServiceStub(channel)
            # Hold the city's tables so the first call waits on its registry.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE")
            first = stub.Issue(demo("city-sputnik-v"), timeout=10)  # in flight from here
            assert await waiting_on_a_lock(blocker)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Issue(demo("federal-only-light"), timeout=10)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Health checks do not count against the cap: a busy server is still healthy.
            health: Any = health_pb2_grpc.HealthStub(channel)
            for service in ("", "regfed.v1.CertificateService"):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            await transaction.rollback()
            assert (await first).outcome == pb.OUTCOME_ISSUED
    finally:
        await blocker.close()


async def test_the_store_down_at_start_up_is_not_serving(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """With the store refusing connections the server starts anyway, NOT_SERVING for the
    service (SERVING for the process), and Issue is UNAVAILABLE."""
    settings = await demo_settings(create_database, tmp_path)
    nowhere = "postgresql://regfed@127.0.0.1:1/nowhere"
    async with running(settings, store_dsn=nowhere) as app, channel_to(app) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        statuses = [
            (await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status
            for name in ("", "regfed.v1.CertificateService")
        ]
        assert statuses == [
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        ]
        stub: Stub = pb_grpc.CertificateServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Issue(demo("city-sputnik-v"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_call_without_a_deadline_gets_the_default_one(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """A caller that sends no deadline is bounded by REGFED_DEFAULT_DEADLINE: with the city
    registry blocked and a 30 s registry timeout, the city is TIMED_OUT on the default
    deadline and the answer comes from the federal registry alone."""
    settings = await demo_settings(create_database, tmp_path)
    assert settings.city_dsn is not None
    blocker = await asyncpg.connect(settings.city_dsn)
    try:
        async with (
            running(settings, default_deadline=2.0, registry_timeout=30.0) as app,
            channel_to(app) as channel,
        ):
            stub: Stub = pb_grpc.CertificateServiceStub(channel)
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE")
            async with asyncio.timeout(10):  # a guard for the test, not a measurement
                response = await stub.Issue(demo("federal-only-light"))  # no deadline sent
            await transaction.rollback()
        assert response.outcome == pb.OUTCOME_ISSUED
        assert response.degraded
        statuses = {s.registry: s.status for s in response.sources}
        assert statuses[pb.REGISTRY_CITY] == pb.SOURCE_STATUS_TIMED_OUT
    finally:
        await blocker.close()


async def test_a_second_server_on_the_same_address_refuses_to_start(
    create_database: CreateDatabase, tmp_path: Path
) -> None:
    """A single server does not silently share its port (no SO_REUSEPORT by default)."""
    settings = await demo_settings(create_database, tmp_path)
    async with running(settings) as first:
        second = Application(settings.with_changes(listen=f"127.0.0.1:{first.port}"))
        with pytest.raises(ConfigError, match="listen: cannot bind"):
            await second.start()
