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
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import grpc

from regfed import logs
from regfed.api.errors import call_request_id
from regfed.api.wrapping import Behavior, UnaryWrapper
from regfed.federation.fanout import SourceOutcome
from regfed.postgres.tasks import PeriodicFlush

log = logging.getLogger("regfed.rpc")

Observe = Callable[[str, str, str, float], None]  # service, method, code, seconds


class CallMetrics(PeriodicFlush):
    """The Prometheus side: handled calls by code, and their durations.

    Counted on the call's path in plain dicts (a lookup, an addition and a bisect), and
    handed to prometheus-client every ``interval`` seconds and when stopped: its values
    take a lock each, and a histogram walks its bounds, on every observation, which cost
    a Verify more than its log line did. ``/metrics`` lags the calls by ``interval`` at
    most. Everything runs on the event loop's thread, so nothing here needs a lock.
    """

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(interval, "call-metrics")
        from regfed import metrics

        self._metrics = metrics
        self._bounds = metrics.HANDLING_BUCKETS
        self._counts: dict[tuple[str, str, str], int] = {}
        # (service, method) -> [sum of seconds, calls per bucket...]
        self._times: dict[tuple[str, str], list[float]] = {}

    def observe(self, service: str, method: str, code: str, elapsed: float) -> None:
        """One call answered with ``code`` after ``elapsed`` seconds."""
        key = (service, method, code)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        times = self._times.get((service, method))
        if times is None:
            times = self._times[(service, method)] = [0.0] * (len(self._bounds) + 1)
        times[0] += elapsed
        times[1 + bisect_left(self._bounds, elapsed)] += 1

    async def flush(self) -> None:
        """Hand what was counted to prometheus-client."""
        counts, self._counts = self._counts, {}
        times, self._times = self._times, {}
        for key, count in counts.items():
            self._metrics.handled.labels(*key).inc(count)
        for (service, method), (seconds, *per_bucket) in times.items():
            self._metrics.handling_observed(service, method, seconds, per_bucket)


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
                _log_call(method, rid, record, code, elapsed)
                logs.call.reset(call_token)
                logs.request_id.reset(rid_token)

        return observed


def _log_call(method: str, rid: str, record: logs.CallRecord, code: str, elapsed: float) -> None:
    """The call's line; ``rid``: its request id, a sane one (api/errors.py), written as it is."""
    if not log.isEnabledFor(logging.INFO):
        return
    millis = round(elapsed * 1000, 3)
    found = record.registries
    registries = ",".join(f"{k}:{v}" for k, v in found.items()) if found else "-"
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
        message = f"{method} {code} role={record.role} {millis:.1f} ms registries={registries}"
        log.info("%s", message, extra={"fields": fields})
        return
    # The line JsonFormatter would write for that record, keys in the same order, as one
    # string: the encoder's walk over two dicts was most of the line's cost. What is the
    # same for every call of a method, status and caller is encoded once.
    key = (method, code, record.role, record.caller)
    parts = _LINE_PARTS.get(key)
    if parts is None:
        parts = _line_parts(*key)
    head, tail = parts
    formatter = handler.formatter
    assert isinstance(formatter, logs.JsonFormatter)
    handler.write_line(
        f'{{"time":"{formatter.stamp(time.time())}","level":"INFO","logger":"{log.name}",'
        f'"request_id":"{rid}","message":{head}{millis:.1f} ms'
        f' registries={registries}"{tail}{millis!r},'
        f'"registries":{logs.json_value(found) if found else "{}"}}}' + handler.terminator
    )


# (method, status, role, caller) -> the line's text before the duration in its message,
# and between the message and ``duration_ms``'s value. Bounded: callers are the role
# mapping's names, but a cleared table costs only their encoding again.
_LINE_PARTS: dict[tuple[str, str, str, str], tuple[str, str]] = {}
_LINE_PARTS_LIMIT = 1024


def _line_parts(method: str, code: str, role: str, caller: str) -> tuple[str, str]:
    text = logs.json_text
    # The message's text is JSON-encoded whole and its closing quote dropped, so the rest
    # of it (the duration and registry outcomes, which need no escape) can follow.
    head = text(f"{method} {code} role={role} ")[:-1]
    tail = (
        f',"method":{text(method)},"role":{text(role)},"caller":{text(caller)},'
        f'"status":{text(code)},"duration_ms":'
    )
    if len(_LINE_PARTS) >= _LINE_PARTS_LIMIT:
        _LINE_PARTS.clear()
    _LINE_PARTS[(method, code, role, caller)] = (head, tail)
    return head, tail
