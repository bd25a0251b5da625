"""Anything unexpected is INTERNAL with a fixed message; the traceback stays in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from regfed.api.servicer import CertificateServicer
from regfed.v1 import certificate_service_pb2 as pb
from regfed.v1 import certificate_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:  # the async stub type exists for type checkers only
    from regfed.v1.certificate_service_pb2_grpc import CertificateServiceAsyncStub as Stub

SECRET = "SELECT snils FROM patients WHERE snils = '14628735990'"


class ExplodingIssuance:
    """An Issue use case with a bug: its exception text holds SQL and an identifier."""

    async def issue(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET)


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    """A real grpc.aio server on a loopback port around the buggy use case."""
    unused: Any = None
    servicer = CertificateServicer(
        issuance=ExplodingIssuance(),  # type: ignore[arg-type]
        applications=unused,
        verification=unused,
        trust_list=unused,
        revocation=unused,
        stats=unused,
        clock=lambda: datetime.now(UTC),
    )
    server = grpc.aio.server()
    pb_grpc.add_CertificateServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield pb_grpc.CertificateServiceStub(channel)
    finally:
        await server.stop(0)


async def test_unexpected_failure_is_internal_with_a_fixed_message(
    stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller sees INTERNAL and "internal error"; the log has the traceback and the
    request id the caller sent."""
    request = pb.IssueRequest(
        person=pb.Person(
            last_name="Белова", first_name="Мария", birth_date="1985-04-12", snils="14628735990"
        )
    )
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Issue(request, metadata=(("x-request-id", "req-42"),), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    assert SECRET not in str(caught.value.debug_error_string())
    logged = [r for r in caplog.records if "req-42" in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None
