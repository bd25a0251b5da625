"""Circuit breakers: consecutive failures open them, one probe at a time may close them."""

from __future__ import annotations

import logging

import pytest

from regfed.breaker import BreakerState, CircuitBreaker


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock standing still."""
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    """Opens after 3 consecutive failures; probes after 2 s."""
    return CircuitBreaker("city registry", failures=3, reset_after=2.0, clock=clock)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read afresh (mypy would keep an earlier narrowing)."""
    return breaker.state


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.permit()
        assert permit is not None
        permit.failed()


def test_consecutive_failures_open_it(breaker: CircuitBreaker) -> None:
    """Two failures leave it closed; the third opens it and calls are refused."""
    fail(breaker, 2)
    assert state(breaker) is BreakerState.CLOSED
    fail(breaker, 1)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.permit() is None
    assert breaker.opened_total == 1


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    """Failures must be consecutive."""
    fail(breaker, 2)
    permit = breaker.permit()
    assert permit is not None
    permit.succeeded()
    fail(breaker, 2)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2


def test_one_probe_at_a_time_after_the_reset(breaker: CircuitBreaker, clock: Clock) -> None:
    """After reset_after exactly one call probes; the others are still refused."""
    fail(breaker, 3)
    clock.now += 1.9
    assert breaker.permit() is None
    clock.now += 0.1
    probe = breaker.permit()
    assert probe is not None
    assert probe.probe
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.permit() is None
    probe.succeeded()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.permit() is not None


def test_a_failed_probe_opens_it_for_another_period(breaker: CircuitBreaker, clock: Clock) -> None:
    """The probe failing waits reset_after again before the next probe."""
    fail(breaker, 3)
    clock.now += 2
    probe = breaker.permit()
    assert probe is not None
    probe.failed()
    assert state(breaker) is BreakerState.OPEN
    clock.now += 1
    assert breaker.permit() is None
    clock.now += 1
    assert breaker.permit() is not None


def test_an_abandoned_probe_lets_the_next_call_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    """A probe cancelled by its caller told nothing: the next call probes at once."""
    fail(breaker, 3)
    clock.now += 2
    probe = breaker.permit()
    assert probe is not None
    probe.abandoned()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.permit() is not None


def test_a_permit_reports_once(breaker: CircuitBreaker) -> None:
    """Reporting twice on one permit counts once."""
    permit = breaker.permit()
    assert permit is not None
    for _ in range(5):
        permit.failed()
    assert breaker.consecutive_failures == 1


def test_results_of_calls_from_before_it_opened_do_not_close_it(
    breaker: CircuitBreaker,
) -> None:
    """A slow call admitted while closed and answering once it is open is no probe."""
    late = breaker.permit()
    assert late is not None
    fail(breaker, 3)
    late.succeeded()
    assert state(breaker) is BreakerState.OPEN


def test_hold_refuses_probes_until_closed(breaker: CircuitBreaker, clock: Clock) -> None:
    """Held open (the store before its first check), no probe is let through."""
    breaker.hold()
    clock.now += 3600
    assert breaker.permit() is None
    breaker.close()
    assert breaker.permit() is not None


def test_trip_opens_it_and_probes_follow(breaker: CircuitBreaker, clock: Clock) -> None:
    """The store monitor's failed check opens it; calls may probe after reset_after."""
    breaker.trip()
    assert breaker.permit() is None
    clock.now += 2
    assert breaker.permit() is not None


def test_changes_are_observable_and_logged(
    breaker: CircuitBreaker, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Subscribers see every change; opening and closing are one log line each, naming
    the dependency."""
    seen: list[BreakerState] = []
    breaker.subscribe(seen.append)
    with caplog.at_level(logging.INFO, logger="regfed.breaker"):
        fail(breaker, 3)
        clock.now += 2
        probe = breaker.permit()
        assert probe is not None
        probe.succeeded()
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert all(line.startswith("city registry: circuit") for line in lines)
    assert all(r.exc_info is None for r in caplog.records)


def test_the_metric_follows_the_breaker() -> None:
    """regfed_circuit_breaker_open is 1 from the failure that opens the breaker until the
    probe that closes it."""
    from functools import partial

    from prometheus_client import REGISTRY

    from regfed import metrics

    now = [0.0]
    breaker = CircuitBreaker("unit dependency", failures=2, reset_after=1.0, clock=lambda: now[0])
    breaker.subscribe(partial(metrics.breaker_changed, "unit dependency"))

    def shown() -> float | None:
        labels = {"dependency": "unit dependency"}
        return REGISTRY.get_sample_value("regfed_circuit_breaker_open", labels)

    for _ in range(2):
        permit = breaker.permit()
        assert permit is not None
        permit.failed()
    assert shown() == 1
    now[0] = 2.0
    probe = breaker.permit()
    assert probe is not None
    probe.succeeded()
    assert shown() == 0
