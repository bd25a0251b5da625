"""Registering CertificateService with request decoding the API controls.

The generated ``add_CertificateServiceServicer_to_server`` decodes requests with each
message's ``FromString``: bytes that are not a valid message raise inside grpcio, which
answers UNKNOWN with the parser's text and logs a 20-line traceback per call (a cheap way
to flood the log). Here the same handlers are built from the service descriptor, with a
decoder that never raises: undecodable bytes become :data:`UNDECODABLE`, and the call is
answered INVALID_ARGUMENT with a fixed message through the one error table, before the
servicer sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc
from google.protobuf import message
from google.protobuf.message_factory import GetMessageClass

from regfed.api.errors import abort_with_error
from regfed.errors import UndecodableRequest
from regfed.v1 import certificate_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["CertificateService"]


class Undecodable:
    """Stands for a request whose bytes did not decode; it holds none of them."""

    __slots__ = ()


UNDECODABLE: Final = Undecodable()

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def lenient_decoder(message_class: type[message.Message]) -> Callable[[bytes], Any]:
    """``message_class.FromString`` that returns :data:`UNDECODABLE` instead of raising."""

    def decode(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception:  # DecodeError, and whatever else the parser may raise on junk
            return UNDECODABLE

    return decode


def _refusing_undecodable(behavior: Behavior) -> Behavior:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if request is UNDECODABLE:
            await abort_with_error(context, UndecodableRequest())
        return await behavior(request, context)

    return handle


def add_certificate_service(servicer: object, server: grpc.aio.Server) -> None:
    """Serve ``servicer``'s methods as ``regfed.v1.CertificateService`` on ``server``."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in SERVICE.methods:
        if method.client_streaming or method.server_streaming:
            raise TypeError(f"{method.name}: only unary methods are registered here")
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _refusing_undecodable(getattr(servicer, method.name)),
            request_deserializer=lenient_decoder(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
