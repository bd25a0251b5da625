"""The one table from regfed's errors to gRPC statuses, applied at the transport's edge.

Expected failures (``regfed.errors``) get their documented code with ``google.rpc``
details; anything unexpected becomes INTERNAL with a fixed message for the caller and a
logged traceback for us — never ``str(exc)``, which could carry SQL or personal data.
Nothing else in regfed aborts a call.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from regfed import logs
from regfed.errors import (
    FieldViolation,
    InvalidField,
    InvalidRequest,
    NotFound,
    NotServed,
    Overloaded,
    PermissionDenied,
    RegfedError,
    Unauthenticated,
    Unavailable,
    UndecodableRequest,
)
from regfed.logthrottle import DEPENDENCIES
from regfed.v1 import certificate_service_pb2

log = logging.getLogger(__name__)

DOMAIN = "regfed.v1"
INTERNAL_MESSAGE = "internal error"
RETRY_AFTER_SECONDS = 1

S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[S, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]


def _bad_request(violations: list[FieldViolation]) -> tuple[str, list[message.Message]]:
    """The message and BadRequest detail naming each field (never its value)."""
    text = "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in violations)
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ]
    )
    return text, [detail]


def _invalid_request(exc: RegfedError) -> tuple[str, list[message.Message]]:
    assert isinstance(exc, InvalidRequest)
    return _bad_request(exc.violations)


def _invalid_field(exc: RegfedError) -> tuple[str, list[message.Message]]:
    assert isinstance(exc, InvalidField)
    return _bad_request([FieldViolation(exc.field, exc.description)])


def _unavailable(exc: RegfedError) -> tuple[str, list[message.Message]]:
    """Retryable: ErrorInfo says which dependency, RetryInfo when to try again."""
    assert isinstance(exc, Unavailable)
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_SECONDS)
    )
    return str(exc), [info, retry]


def _overloaded(exc: RegfedError) -> tuple[str, list[message.Message]]:
    """Retryable after a short pause (gRPC's retry policies treat RESOURCE_EXHAUSTED so)."""
    assert isinstance(exc, Overloaded)
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_SECONDS)
    )
    return str(exc), [info, retry]


def _plain(exc: RegfedError) -> tuple[str, list[message.Message]]:
    return str(exc), []


# Each error class (or its nearest listed base) -> (status code, message and details).
# Every message here is one regfed wrote for its callers: none quotes input or a foreign
# exception.
TABLE: dict[type[RegfedError], tuple[int, Callable[[RegfedError], Any]]] = {
    InvalidRequest: (code_pb2.INVALID_ARGUMENT, _invalid_request),
    InvalidField: (code_pb2.INVALID_ARGUMENT, _invalid_field),
    UndecodableRequest: (code_pb2.INVALID_ARGUMENT, _plain),
    NotFound: (code_pb2.NOT_FOUND, _plain),
    Unauthenticated: (code_pb2.UNAUTHENTICATED, _plain),
    PermissionDenied: (code_pb2.PERMISSION_DENIED, _plain),
    NotServed: (code_pb2.UNIMPLEMENTED, _plain),
    Unavailable: (code_pb2.UNAVAILABLE, _unavailable),
    Overloaded: (code_pb2.RESOURCE_EXHAUSTED, _overloaded),
}


def status_of(exc: BaseException) -> status_pb2.Status | None:
    """The google.rpc.Status for an expected error; None for anything unexpected."""
    if not isinstance(exc, RegfedError):
        return None
    for cls in type(exc).__mro__:
        rule = TABLE.get(cls)
        if rule is not None:
            code, describe = rule
            text, details = describe(exc)
            packed = []
            for detail in details:
                holder = any_pb2.Any()
                holder.Pack(detail)
                packed.append(holder)
            return status_pb2.Status(code=code, message=text, details=packed)
    return None


# A caller's request id is logged as it is, so only a short, plain token is taken.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id(*candidates: str) -> str:
    """The first of ``candidates`` that is a sane request id, else a new one."""
    for candidate in candidates:
        if candidate and _REQUEST_ID.fullmatch(candidate):
            return candidate
    return _generated.next()


class _RequestIds:
    """New request ids: 8 random hex digits of this process, then a counter (16 in all).

    A request id only has to tell calls apart in the logs and the audit trail, not be
    secret: a counter instead of 8 random bytes a call saves every call a system call.
    A forked worker draws its own prefix, so two processes never hand out the same id.
    """

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        """A new prefix, the counter from zero."""
        self._prefix = secrets.token_hex(4)
        self._count = itertools.count()

    def next(self) -> str:
        """The next id of this process."""
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFF:08x}"


_generated = _RequestIds()


# The requests that carry a request id of their own (IssueRequest): asking any other for
# one would raise and catch an AttributeError on every call.
_WITH_REQUEST_ID = frozenset(
    getattr(certificate_service_pb2, name)
    for name, descriptor in certificate_service_pb2.DESCRIPTOR.message_types_by_name.items()
    if "request_id" in descriptor.fields_by_name
)


def call_request_id(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The request id of a call: the caller's ``x-request-id`` metadata, else the request's
    own ``request_id`` field, each when sane; else a new one."""
    own = request.request_id if type(request) in _WITH_REQUEST_ID else ""
    return new_request_id(metadata_request_id(context), own)


def metadata_request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's ``x-request-id`` metadata, as sent (empty when absent)."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str):
            return value
    return ""


def rpc_boundary(method: Handler[S, Req, Resp]) -> Handler[S, Req, Resp]:
    """Wrap a servicer method: its request id set for every log line of the call, expected
    failures mapped by ``TABLE``, the unexpected contained."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: grpc.aio.ServicerContext[Any, Any]) -> Resp:
        # The observing interceptor has set it when it runs; else the same rule here:
        # IssueRequest carries its own request_id; the metadata, when sent, wins.
        token = None
        if logs.request_id.get() == logs.NO_REQUEST:
            token = logs.request_id.set(call_request_id(request, context))
        try:
            return await method(self, request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_with_error(context, exc, method.__name__)
        finally:
            if token is not None:
                logs.request_id.reset(token)
        raise AssertionError("unreachable: abort_with_error always aborts the call")

    return wrapper


async def abort_with_error(
    context: grpc.aio.ServicerContext[Any, Any], exc: Exception, name: str = "call"
) -> None:
    """Abort the call with the status ``exc`` maps to (never returns; ``name``: the
    method, for the log).

    Trailing metadata already set on the call (the request id the interceptor returns to
    the caller) is kept beside the status details.
    """
    kept = tuple(context.trailing_metadata() or ())
    status = status_of(exc)
    if status is None:
        log.exception("request %s: unexpected failure in %s", logs.request_id.get(), name)
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, kept)
    elif status.code == code_pb2.UNAVAILABLE:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            # Nothing answered because the caller's own time ran out.
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded", kept)
        # During an outage every call fails alike: the first with its traceback, then a
        # count (logthrottle).
        assert isinstance(exc, Unavailable)
        cause = exc if exc.__cause__ is not None else None
        DEPENDENCIES.log(log, logging.WARNING, exc.reason, "%s", status.message, exc_info=cause)
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, kept + tuple(rich.trailing_metadata))
