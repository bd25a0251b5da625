"""Mapping failures to gRPC statuses, once, at the transport's edge.

Expected failures get their documented code with google.rpc details; anything unexpected
becomes INTERNAL with a fixed message for the caller and a logged traceback for us —
never ``str(exc)``, which could carry SQL or personal data.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from regfed.api.validation import FieldViolation, InvalidRequest
from regfed.issuance import RegistriesUnavailable
from regfed.store.certificates import StoreError

log = logging.getLogger(__name__)

DOMAIN = "regfed.v1"
INTERNAL_MESSAGE = "internal error"
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[S, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]


def _pack(*messages: Any) -> list[any_pb2.Any]:
    packed = []
    for message in messages:
        holder = any_pb2.Any()
        holder.Pack(message)
        packed.append(holder)
    return packed


async def abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any], violations: list[FieldViolation]
) -> NoReturn:
    """INVALID_ARGUMENT with a google.rpc.BadRequest naming each field."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
    )
    message = "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in violations)
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=message, details=_pack(bad_request)
    )
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


async def abort_unavailable(
    context: grpc.aio.ServicerContext[Any, Any], reason: str, message: str, retry_after: float
) -> NoReturn:
    """UNAVAILABLE (retryable) with ErrorInfo and RetryInfo."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(retry_after), nanos=0)
    )
    status = status_pb2.Status(
        code=code_pb2.UNAVAILABLE, message=message, details=_pack(info, retry)
    )
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's ``x-request-id`` when it sent a sane one, else a new one."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 64:
            return value
    return secrets.token_hex(8)


def rpc_boundary(method: Handler[S, Req, Resp]) -> Handler[S, Req, Resp]:
    """Wrap a servicer method: request id, expected failures mapped, the unexpected contained."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: grpc.aio.ServicerContext[Any, Any]) -> Resp:
        token = request_id.set(_request_id(context))
        try:
            return await method(self, request, context)
        except InvalidRequest as exc:
            await abort_invalid(context, exc.violations)
        except RegistriesUnavailable as exc:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            log.warning("request %s: registries unavailable: %s", request_id.get(), exc)
            await abort_unavailable(
                context, "REGISTRY_UNAVAILABLE", f"registries unavailable: {exc}", retry_after=1
            )
        except StoreError:
            log.exception("request %s: store failed", request_id.get())
            await abort_unavailable(
                context, "STORE_UNAVAILABLE", "certificate store unavailable", retry_after=1
            )
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            log.exception("request %s: unexpected failure in %s", request_id.get(), method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
        finally:
            request_id.reset(token)
        raise AssertionError("unreachable: every failure above aborts the call")

    return wrapper
