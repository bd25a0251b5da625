"""The cap on calls in flight, as the reconciler reads it: calls admitted per second."""

from __future__ import annotations

from typing import Any, cast

import pytest

from regfed.api.limits import CallLimits


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Context:
    """What the cap reads of a call's context: a caller that sent no deadline."""

    def time_remaining(self) -> float | None:
        return None


async def answer(request: Any, context: Any) -> str:
    return "answer"


async def test_the_call_rate_counts_admitted_calls_over_the_last_second() -> None:
    clock = Clock()
    limits = CallLimits(max_in_flight=4, default_deadline=5.0, monotonic=clock)
    limited = limits.wrap("/regfed.v1.CertificateService/Verify", answer)
    assert limited is not None
    assert limits.call_rate() == 0.0

    async def calls(count: int) -> None:
        for _ in range(count):
            assert await limited(None, cast(Any, Context())) == "answer"

    await calls(50)
    clock.now += 0.5
    assert limits.call_rate() == 0.0  # the window has not passed: the last figure stands
    clock.now += 0.5
    assert limits.call_rate() == pytest.approx(50.0)
    await calls(10)
    clock.now += 2.0
    assert limits.call_rate() == pytest.approx(5.0)
    clock.now += 1.0
    assert limits.call_rate() == 0.0
    assert limits.in_flight == 0


def test_health_is_not_capped_and_not_counted() -> None:
    limits = CallLimits(max_in_flight=1, default_deadline=5.0)
    assert limits.wrap("/grpc.health.v1.Health/Check", answer) is None
