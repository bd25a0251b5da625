"""The observing interceptor: a request id for every call, returned to the caller; one log
line per call; the gRPC metrics.

It wraps every unary method (health included; reflection streams pass untouched): it sets
the request id (the caller's ``x-request-id`` metadata, else ``IssueRequest.request_id``,
else a new one) for every log line written during the call and returns it in the trailing
metadata ``x-request-id``; after the call it writes one line — method, caller role, status,
duration and the registries' outcomes — and counts the call in
``grpc_server_handled_total`` and ``grpc_server_handling_seconds``. It runs outermost, so
refusals and overload answers are seen too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from regfed import logs
from regfed.api.errors import call_request_id
from regfed.api.wrapping import Behavior, UnaryWrapper
from regfed.federation.fanout import SourceOutcome

log = logging.getLogger("regfed.rpc")

Observe = Callable[[str, str, str, float], None]  # service, method, code, seconds


def grpc_metrics() -> Observe:
    """The Prometheus side: handled calls by code, and their durations."""
    from regfed import metrics

    count: dict[tuple[str, str, str], Callable[[], None]] = {}
    timing: dict[tuple[str, str], Callable[[float], None]] = {}

    def observe(service: str, method: str, code: str, elapsed: float) -> None:
        # Label children looked up once: .labels() takes a lock and builds a tuple.
        inc = count.get((service, method, code))
        if inc is None:
            inc = count[(service, method, code)] = metrics.handled.labels(service, method, code).inc
        inc()
        record = timing.get((service, method))
        if record is None:
            record = timing[(service, method)] = metrics.handling_seconds.labels(
                service, method
            ).observe
        record(elapsed)

    return observe


def lookup_observer(metrics_on: bool) -> Callable[[SourceOutcome], None]:
    """What the federation calls for each registry's outcome: noted for the call's log
    line, and counted when metrics are on."""
    count: Callable[[SourceOutcome], None] | None = None
    if metrics_on:
        from regfed.metrics import lookup_observed

        count = lookup_observed

    def observed(outcome: SourceOutcome) -> None:
        record = logs.call.get()
        if record is not None:
            record.registries[outcome.registry.value] = outcome.status.value
        if count is not None:
            count(outcome)

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
                _log_call(method, record, code, elapsed)
                logs.call.reset(call_token)
                logs.request_id.reset(rid_token)

        return observed


def _log_call(method: str, record: logs.CallRecord, code: str, elapsed: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    millis = round(elapsed * 1000, 3)
    found = record.registries
    registries = ",".join(f"{k}:{v}" for k, v in found.items()) if found else "-"
    message = f"{method} {code} role={record.role} {millis:.1f} ms registries={registries}"
    handler = logs.fast_handler(log)
    if handler is None:
        fields = {
            "method": method,
            "role": record.role,
            "caller": record.caller,
            "status": code,
            "duration_ms": millis,
            "registries": found,
        }
        log.info("%s", message, extra={"fields": fields})
        return
    # The line JsonFormatter would write for that record, keys in the same order, as one
    # string: the encoder's walk over two dicts was most of the line's cost.
    formatter = handler.formatter
    assert isinstance(formatter, logs.JsonFormatter)
    text = logs.json_text
    handler.write_line(
        f'{{"time":"{formatter.stamp(time.time())}","level":"INFO","logger":"{log.name}",'
        f'"request_id":{text(logs.request_id.get())},"message":{text(message)},'
        f'"method":{text(method)},"role":{text(record.role)},"caller":{text(record.caller)},'
        f'"status":"{code}","duration_ms":{millis!r},'
        f'"registries":{logs.json_value(found) if found else "{}"}}}' + handler.terminator
    )
