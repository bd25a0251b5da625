"""The gRPC call metrics, counted by the interceptor and handed to prometheus-client."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from regfed.api.observe import CallMetrics

pytestmark = pytest.mark.unit

SERVICE = "test.Metrics"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"grpc_service": SERVICE, **labels}) or 0.0


def bucket(method: str, le: str) -> float:
    return sample("grpc_server_handling_seconds_bucket", grpc_method=method, le=le)


async def test_calls_reach_prometheus_when_flushed_as_observe_would_count_them() -> None:
    calls = CallMetrics(interval=3600)
    for seconds, code in ((0.003, "OK"), (0.005, "OK"), (0.02, "NOT_FOUND"), (30.0, "OK")):
        calls.observe(SERVICE, "Counted", code, seconds)
    assert sample("grpc_server_handled_total", grpc_method="Counted", grpc_code="OK") == 0
    await calls.flush()
    assert sample("grpc_server_handled_total", grpc_method="Counted", grpc_code="OK") == 3
    assert sample("grpc_server_handled_total", grpc_method="Counted", grpc_code="NOT_FOUND") == 1
    # Cumulative buckets, a bound counting the calls that took exactly as long.
    assert [bucket("Counted", le) for le in ("0.005", "0.01", "0.025", "10.0", "+Inf")] == [
        2, 2, 3, 3, 4,
    ]  # fmt: skip
    assert sample("grpc_server_handling_seconds_count", grpc_method="Counted") == 4
    assert sample("grpc_server_handling_seconds_sum", grpc_method="Counted") == pytest.approx(
        30.028
    )
    await calls.flush()  # nothing new: nothing added twice
    assert sample("grpc_server_handling_seconds_count", grpc_method="Counted") == 4


async def test_stopping_hands_over_what_is_left() -> None:
    calls = CallMetrics(interval=3600)
    await calls.start()
    calls.observe(SERVICE, "Stopped", "OK", 0.1)
    await calls.stop()
    assert sample("grpc_server_handled_total", grpc_method="Stopped", grpc_code="OK") == 1
    assert bucket("Stopped", "0.1") == 1
