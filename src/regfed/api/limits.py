"""Limits every call runs under: how many may be in flight, and how long each may take.

A server interceptor rather than grpcio's ``maximum_concurrent_rpcs``, which counts every
call on the server alike: under overload it refused health checks too, so a load
balancer would take a busy, healthy instance out. Here health checks and reflection pass
untouched; any other call beyond ``max_in_flight`` is refused at once with
RESOURCE_EXHAUSTED (never queued until the caller's deadline passes).

Each admitted call runs with a deadline (:mod:`regfed.deadlines`): the caller's, or
``default_deadline`` for a caller that sent none, so that no wait below it is unbounded.

The counters (:attr:`CallLimits.in_flight`, :attr:`CallLimits.refused`,
:attr:`CallLimits.cut_off`) can be read by metrics, and :meth:`CallLimits.call_rate` by
the reconciler, which gives way to callers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from regfed import deadlines
from regfed.api.errors import abort_with_error
from regfed.api.wrapping import Behavior, UnaryWrapper
from regfed.errors import Overloaded

log = logging.getLogger(__name__)

# Method-name prefixes the cap does not apply to: probes and tooling must get through a
# busy server.
EXEMPT = ("/grpc.health.v1.Health/", "/grpc.reflection.")
RATE_WINDOW = 1.0  # seconds :meth:`CallLimits.call_rate` counts over


class CallLimits(UnaryWrapper):
    """The cap on calls in flight, and each call's deadline."""

    def __init__(
        self,
        *,
        max_in_flight: int,
        default_deadline: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._monotonic = monotonic
        self._max = max_in_flight
        self._default = default_deadline
        self._in_flight = 0
        self._stopping = False
        self.refused = 0  # calls answered RESOURCE_EXHAUSTED since start
        self.cut_off = 0  # calls cancelled by the server's shutdown once the grace ran out
        self._admitted = 0  # calls admitted since start
        self._rate = 0.0  # admitted per second, over the last RATE_WINDOW at least
        self._counted = (monotonic(), 0)

    @property
    def in_flight(self) -> int:
        """Capped calls being handled now."""
        return self._in_flight

    def call_rate(self) -> float:
        """Calls admitted per second lately (over the last second or so)."""
        now = self._monotonic()
        since, admitted = self._counted
        if now - since >= RATE_WINDOW:
            self._rate = (self._admitted - admitted) / (now - since)
            self._counted = (now, self._admitted)
        return self._rate

    def stopping(self) -> None:
        """The server is stopping: a call cancelled from now on was cut off by the grace."""
        self._stopping = True

    def wrap(self, method: str, behavior: Behavior) -> Behavior | None:
        """Capped: every unary method but the exempt ones (the streaming ones are exempt
        as well: every capped service, regfed.v1, is unary)."""
        if method.startswith(EXEMPT):
            return None

        async def limited(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if self._in_flight >= self._max:
                self.refused += 1
                await abort_with_error(
                    context, Overloaded("server overloaded: too many calls in flight")
                )
                raise AssertionError("unreachable: abort always aborts the call")
            self._in_flight += 1
            self._admitted += 1
            try:
                left = context.time_remaining()
                with deadlines.within(self._default if left is None else left):
                    return await behavior(request, context)
            except asyncio.CancelledError:
                if self._stopping:
                    self.cut_off += 1
                raise
            finally:
                self._in_flight -= 1

        return limited
