"""The metrics counted on every call, gathered by the Tally and handed to prometheus-client."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from regfed.domain.model import Registry
from regfed.federation.fanout import SourceOutcome, SourceStatus
from regfed.metrics import Tally

pytestmark = pytest.mark.unit

SERVICE = "test.Metrics"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def call(name: str, **labels: str) -> float:
    return value(name, grpc_service=SERVICE, **labels)


def bucket(method: str, le: str) -> float:
    return call("grpc_server_handling_seconds_bucket", grpc_method=method, le=le)


async def test_calls_reach_prometheus_when_flushed_as_observe_would_count_them() -> None:
    tally = Tally(interval=3600)
    for seconds, code in ((0.003, "OK"), (0.005, "OK"), (0.02, "NOT_FOUND"), (30.0, "OK")):
        tally.call(SERVICE, "Counted", code, seconds)
    assert call("grpc_server_handled_total", grpc_method="Counted", grpc_code="OK") == 0
    await tally.flush()
    assert call("grpc_server_handled_total", grpc_method="Counted", grpc_code="OK") == 3
    assert call("grpc_server_handled_total", grpc_method="Counted", grpc_code="NOT_FOUND") == 1
    # Cumulative buckets, a bound counting the calls that took exactly as long.
    assert [bucket("Counted", le) for le in ("0.005", "0.01", "0.025", "10.0", "+Inf")] == [
        2, 2, 3, 3, 4,
    ]  # fmt: skip
    assert call("grpc_server_handling_seconds_count", grpc_method="Counted") == 4
    assert call("grpc_server_handling_seconds_sum", grpc_method="Counted") == pytest.approx(30.028)
    await tally.flush()  # nothing new: nothing added twice
    assert call("grpc_server_handling_seconds_count", grpc_method="Counted") == 4


async def test_registry_lookups_are_counted_by_outcome_and_timed() -> None:
    tally = Tally(interval=3600)
    before = value("regfed_registry_lookups_total", registry="city", outcome="timed_out")
    count_before = value("regfed_registry_lookup_seconds_count", registry="city")
    tally.lookups(
        [SourceOutcome(Registry.CITY, SourceStatus.TIMED_OUT, latency=s) for s in (0.004, 2.0)]
    )
    await tally.flush()
    after = value("regfed_registry_lookups_total", registry="city", outcome="timed_out")
    assert after - before == 2
    assert value("regfed_registry_lookup_seconds_count", registry="city") - count_before == 2


async def test_stopping_hands_over_what_is_left() -> None:
    tally = Tally(interval=3600)
    await tally.start()
    tally.call(SERVICE, "Stopped", "OK", 0.1)
    await tally.stop()
    assert call("grpc_server_handled_total", grpc_method="Stopped", grpc_code="OK") == 1
    assert bucket("Stopped", "0.1") == 1
