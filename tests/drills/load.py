"""Load for the drills: closed-loop clients that record every call's outcome and latency."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from regfed.demo.populate import PopulatedPerson
from regfed.v1 import certificate_service_pb2 as pb


@dataclass(frozen=True, slots=True)
class Call:
    """One call: when it started and ended, its status code, and its response if OK."""

    started: float
    ended: float
    code: str  # "OK" or a grpc.StatusCode name
    response: Any = None
    label: str = ""

    @property
    def latency(self) -> float:
        """Seconds the call took."""
        return self.ended - self.started


async def timed(call: Callable[[], Awaitable[Any]], label: str = "") -> Call:
    """Make one call and record it."""
    started = time.monotonic()
    try:
        response = await call()
    except grpc.aio.AioRpcError as error:
        return Call(started, time.monotonic(), error.code().name, None, label)
    return Call(started, time.monotonic(), "OK", response, label)


async def closed_loop(
    workers: int,
    make: Callable[[int, int], Awaitable[Call]],
    *,
    until: asyncio.Event | None = None,
    seconds: float | None = None,
) -> list[Call]:
    """``workers`` clients, each making calls one after another (``make(worker, n)``)
    until ``until`` is set or ``seconds`` have passed."""
    calls: list[Call] = []
    deadline = None if seconds is None else time.monotonic() + seconds

    def done() -> bool:
        if until is not None and until.is_set():
            return True
        return deadline is not None and time.monotonic() >= deadline

    async def worker(index: int) -> None:
        n = 0
        while not done():
            calls.append(await make(index, n))
            n += 1

    await asyncio.gather(*(worker(i) for i in range(workers)))
    return calls


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def spread(latencies: Sequence[float]) -> str:
    """ "p50 / p99 / max" of ``latencies``, in seconds."""
    return " / ".join(
        f"{value:.3f}"
        for value in (percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies))
    )


def codes(calls: Sequence[Call]) -> Counter[str]:
    """How many calls ended with each code."""
    return Counter(call.code for call in calls)


def person_message(person: PopulatedPerson) -> pb.Person:
    """The Person a portal sends for a person of the synthetic population."""
    return pb.Person(**person.request_person())


def issue_request(person: PopulatedPerson) -> pb.IssueRequest:
    """An IssueRequest for ``person``."""
    return pb.IssueRequest(person=person_message(person))
