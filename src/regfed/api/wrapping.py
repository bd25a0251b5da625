"""The shape every regfed interceptor shares: each unary method's behaviour wrapped once.

grpc.aio asks a server's interceptors for the handler of every call; building a wrapped
handler each time would cost every call an allocation chain for nothing. So a wrapper
decides per method, on the method's first call, and keeps its answer: a wrapped unary
handler, or the handler as it was (a method it leaves alone, a stream).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc

if TYPE_CHECKING:  # generic only in grpcio's stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


class UnaryWrapper(grpc.aio.ServerInterceptor):
    """An interceptor that wraps unary behaviours, once per method."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler | None] = {}

    def wrap(self, method: str, behavior: Behavior) -> Behavior | None:
        """``behavior`` of ``method`` (``/package.Service/Method``) wrapped; None leaves
        the method alone."""
        raise NotImplementedError

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """The method's handler, wrapped the first time it is asked for."""
        method: str = handler_call_details.method
        if method in self._handlers:
            return self._handlers[method]
        handler = await continuation(handler_call_details)
        if handler is not None and handler.unary_unary is not None:
            # grpcio's stubs type behaviours as synchronous; on an aio server they are
            # coroutines.
            wrapped = self.wrap(method, cast(Behavior, handler.unary_unary))
            if wrapped is not None:
                handler = grpc.unary_unary_rpc_method_handler(
                    wrapped,
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        self._handlers[method] = handler
        return handler
