"""The observing interceptor: a request id for every call, returned to the caller; one log
line per call; the gRPC metrics.

It wraps every unary method (health included; reflection streams pass untouched): it sets
the request id (the caller's ``x-request-id`` metadata, else ``IssueRequest.request_id``,
else a new one) for every log line written during the call and returns it in the trailing
metadata ``x-request-id``; after the call it writes one line — method, caller role, status,
duration and the registries' outcomes — and counts the call for
``grpc_server_handled_total`` and ``grpc_server_handling_seconds`` (in the metrics'
:class:`~regfed.metrics.Tally`). It runs outermost, so refusals and overload answers are
seen too.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from regfed import logs
from regfed.api.errors import call_request_id
from regfed.api.wrapping import Behavior, UnaryWrapper
from regfed.federation.fanout import SourceOutcome

log = logging.getLogger("regfed.rpc")

Observe = Callable[[str, str, str, float], None]  # service, method, code, seconds


def lookup_observer(
    count: Callable[[Sequence[SourceOutcome]], None] | None,
) -> Callable[[Sequence[SourceOutcome]], None]:
    """What the federation calls with each lookup's outcomes: noted for the call's log
    line, and passed to ``count`` (the metrics' tally) when there is one."""

    def observed(outcomes: Sequence[SourceOutcome]) -> None:
        record = logs.call.get()
        if record is not None:
            record.registries = tuple([(o.registry, o.status) for o in outcomes])
        if count is not None:
            count(outcomes)

    return observed


class ObserveInterceptor(UnaryWrapper):
    """Request ids, per-call log lines and gRPC metrics."""

    def __init__(self, observe: Observe | None, *, role: str = "-", caller: str = "-") -> None:
        """``role``/``caller``: what the log line says before (or without) authentication."""
        super().__init__()
        self._observe = observe
        self._role, self._caller = role, caller

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        """Every unary method is observed."""
        return self._observed(method, behavior)

    def _observed(self, full_method: str, inner: Behavior) -> Behavior:
        service, _, method = full_method.strip("/").rpartition("/")
        observe = self._observe

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            rid = call_request_id(request, context)
            rid_token = logs.request_id.set(rid)
            record = logs.CallRecord(self._role, self._caller)
            call_token = logs.call.set(record)
            context.set_trailing_metadata((("x-request-id", rid),))
            started = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except grpc.aio.AbortError:
                status = context.code()
                code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
                raise
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception:
                code = "UNKNOWN"
                raise
            finally:
                elapsed = time.perf_counter() - started
                if observe is not None:
                    observe(service, method, code, elapsed)
                _log_call(method, rid, record, code, elapsed)
                logs.call.reset(call_token)
                logs.request_id.reset(rid_token)

        return observed


def _log_call(method: str, rid: str, record: logs.CallRecord, code: str, elapsed: float) -> None:
    """The call's line; ``rid``: its request id, a sane one (api/errors.py), written as it is."""
    if not log.isEnabledFor(logging.INFO):
        return
    # The duration in whole microseconds, written as milliseconds with integer arithmetic
    # (round() and float formatting go through a float-to-text conversion each): three
    # decimals in ``duration_ms``, one (truncated) in the message.
    whole, micros = divmod(round(elapsed * 1_000_000), 1000)
    handler = logs.fast_handler(log)
    if handler is None:
        found = _values(record.registries)
        registries = _registries(record.registries)[0] if found else "-"
        fields = {
            "method": method,
            "role": record.role,
            "caller": record.caller,
            "status": code,
            "duration_ms": whole + micros / 1000,
            "registries": found,
        }
        message = (
            f"{method} {code} role={record.role} {whole}.{micros // 100} ms registries={registries}"
        )
        log.info("%s", message, extra={"fields": fields})
        return
    # The line JsonFormatter would write for that record, keys in the same order, as one
    # string: the encoder's walk over two dicts was most of the line's cost. What is the
    # same for every call of a method, status and caller is encoded once.
    head, tail = _line_parts(method, code, record.role, record.caller)
    in_message, as_json = _registries(record.registries) if record.registries else _NO_REGISTRIES
    formatter = handler.formatter
    assert isinstance(formatter, logs.JsonFormatter)
    handler.write_line(
        f'{{"time":"{formatter.stamp(time.time())}","level":"INFO","logger":"{log.name}",'
        f'"request_id":"{rid}","message":{head}{whole}.{micros // 100} ms '
        f'registries={in_message}"{tail}{whole}.{micros:03d},"registries":{as_json}}}'
        + handler.terminator
    )


# Bounded: callers are the role mapping's names, but an evicted entry costs only its
# encoding again.
@functools.lru_cache(maxsize=1024)
def _line_parts(method: str, code: str, role: str, caller: str) -> tuple[str, str]:
    """The line's text before the duration in its message, and between the message and
    ``duration_ms``'s value: the same for every call of a method, status and caller."""
    text = logs.json_text
    # The message's text is JSON-encoded whole and its closing quote dropped, so the rest
    # of it (the duration and registry outcomes, which need no escape) can follow.
    head = text(f"{method} {code} role={role} ")[:-1]
    tail = (
        f',"method":{text(method)},"role":{text(role)},"caller":{text(caller)},'
        f'"status":{text(code)},"duration_ms":'
    )
    return head, tail


_NO_REGISTRIES = ("-", "{}")


# A few combinations of two registries and four outcomes.
@functools.lru_cache(maxsize=64)
def _registries(outcomes: tuple[tuple[enum.Enum, enum.Enum], ...]) -> tuple[str, str]:
    """The registries' outcomes as the message and the JSON write them. Registry names and
    outcomes are the enums' values: nothing in them needs an escape."""
    values = _values(outcomes)
    return ",".join(f"{k}:{v}" for k, v in values.items()), logs.json_value(values)


def _values(outcomes: tuple[tuple[enum.Enum, enum.Enum], ...]) -> dict[str, str]:
    """The registries' outcomes as the line's ``registries`` object holds them."""
    return {registry.value: status.value for registry, status in outcomes}
