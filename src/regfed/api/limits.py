"""Limits every call runs under: how many may be in flight, and how long each may take.

A server interceptor rather than grpcio's ``maximum_concurrent_rpcs``, which counts every
call on the server alike: under overload it refused health checks too, so a load
balancer would take a busy, healthy instance out. Here health checks and reflection pass
untouched; any other call beyond ``max_in_flight`` is refused at once with
RESOURCE_EXHAUSTED (never queued until the caller's deadline passes).

Each admitted call runs with a deadline (:mod:`regfed.deadlines`): the caller's, or
``default_deadline`` for a caller that sent none, so that no wait below it is unbounded.

The counters (:attr:`CallLimits.in_flight`, :attr:`CallLimits.refused`,
:attr:`CallLimits.cut_off`) can be read by metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from regfed import deadlines
from regfed.api.errors import abort_with_error
from regfed.errors import Overloaded

log = logging.getLogger(__name__)

# Method-name prefixes the cap does not apply to: probes and tooling must get through a
# busy server.
EXEMPT = ("/grpc.health.v1.Health/", "/grpc.reflection.")

if TYPE_CHECKING:  # generic only in grpcio's stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


class CallLimits(grpc.aio.ServerInterceptor):
    """The cap on calls in flight, and each call's deadline."""

    def __init__(self, *, max_in_flight: int, default_deadline: float) -> None:
        self._max = max_in_flight
        self._default = default_deadline
        self._in_flight = 0
        self._stopping = False
        self.refused = 0  # calls answered RESOURCE_EXHAUSTED since start
        self.cut_off = 0  # calls cancelled by the server's shutdown once the grace ran out
        # Wrapped once per method: grpc asks the interceptor again on every call.
        self._wrapped: dict[str, Handler] = {}

    @property
    def in_flight(self) -> int:
        """Capped calls being handled now."""
        return self._in_flight

    def stopping(self) -> None:
        """The server is stopping: a call cancelled from now on was cut off by the grace."""
        self._stopping = True

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """Wrap unary calls of the capped services; pass the rest as they are."""
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or method.startswith(EXEMPT):
            # Every capped service (regfed.v1) is unary; the streaming ones are exempt.
            return handler
        # grpcio's stubs type behaviours as synchronous; on an aio server they are coroutines.
        behavior: Any = handler.unary_unary

        async def limited(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if self._in_flight >= self._max:
                self.refused += 1
                await abort_with_error(
                    context, Overloaded("server overloaded: too many calls in flight")
                )
                raise AssertionError("unreachable: abort always aborts the call")
            self._in_flight += 1
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

        wrapped = grpc.unary_unary_rpc_method_handler(
            limited,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped
