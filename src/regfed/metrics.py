"""Prometheus metrics, named as DESIGN.md says (go-grpc-prometheus style).

Collected at three places, never by a servicer: the observing interceptor
(``grpc_server_*``), the federation (``regfed_registry_*``, through the observer
``app.py`` hands it) and the store (``regfed_certificates_issued_total`` when a new
certificate is recorded, ``regfed_denials_total`` as denials are tallied). What is counted
on every call, the first two, goes through a :class:`Tally` that hands it over once a
second.

``regfed serve --workers N`` runs prometheus-client in multiprocess mode: the supervisor
sets ``PROMETHEUS_MULTIPROC_DIR`` for its workers before they start (prometheus-client
reads it when it is first imported, which is why this module is imported only by
``app.py`` and the supervisor), every worker writes its values there, and the supervisor
alone serves ``/metrics``, summing them into one view.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import REGISTRY

from regfed.breaker import BreakerState
from regfed.domain.model import DenialReason, Registry
from regfed.federation.fanout import SourceOutcome, SourceStatus
from regfed.postgres.tasks import PeriodicFlush
from regfed.service.ports import ApplicationStatus, CertificateRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

GRPC_LABELS = ("grpc_service", "grpc_method")

handled = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    [*GRPC_LABELS, "grpc_code"],
)
# prometheus-client's default buckets, named: the Tally counts into them itself.
BUCKETS = Histogram.DEFAULT_BUCKETS
handling_seconds = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to answer an RPC, in seconds.",
    GRPC_LABELS,
    buckets=BUCKETS,
)
registry_lookups = Counter(
    "regfed_registry_lookups_total",
    "Registry lookups by registry and outcome (matched, not_found, failed, timed_out).",
    ["registry", "outcome"],
)
registry_lookup_seconds = Histogram(
    "regfed_registry_lookup_seconds",
    "Time one registry took to answer a lookup, in seconds.",
    ["registry"],
    buckets=BUCKETS,
)
certificates_issued = Counter(
    "regfed_certificates_issued_total",
    "New certificates recorded, by kind and the registries their basis came from.",
    ["kind", "source"],
)
denials = Counter("regfed_denials_total", "Issue answers that were denials, by reason.", ["reason"])
# Fed by the applications' reconciler: the count per status from the store after each pass,
# so every process reports the same numbers ("mostrecent": the latest value any process set).
applications = Gauge(
    "regfed_applications",
    "Applications by status, as last counted in the store.",
    ["status"],
    multiprocess_mode="mostrecent",
)
# 1 while a dependency's circuit breaker is open (or letting its probe through), 0 while it
# is closed; each process has its own breakers, so a worker with one open shows ("livemax").
breaker_open = Gauge(
    "regfed_circuit_breaker_open",
    "1 while the dependency's circuit breaker is open or probing, 0 while closed.",
    ["dependency"],
    multiprocess_mode="livemax",
)
audit_dropped = Counter(
    "regfed_audit_refusals_dropped_total",
    "Refusals that could not be written to the audit trail (buffer full).",
)


class Tally(PeriodicFlush):
    """What is counted on every call — the calls themselves and the registry lookups —
    gathered in plain dicts (a lookup, two additions and a bisect per call or lookup) and
    handed to prometheus-client every ``interval`` seconds and when stopped.

    prometheus-client's values take a lock each, and a histogram walks its bounds, on
    every observation: on the call's path that cost more than the call's log line.
    ``/metrics`` lags the calls by ``interval`` at most. Everything runs on the event
    loop's thread, so nothing here needs a lock.
    """

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(interval, "metrics-tally")
        # Per key: [count, sum of seconds, observations per bucket...] (_add). The calls by
        # (service, method, code); the lookups by (registry, outcome), enum members whose
        # values become labels only when handed over.
        self._calls: dict[tuple[str, str, str], list[float]] = {}
        self._lookups: dict[tuple[Registry, SourceStatus], list[float]] = {}

    def call(self, service: str, method: str, code: str, elapsed: float) -> None:
        """One call answered with ``code`` after ``elapsed`` seconds."""
        _add(self._calls, (service, method, code), elapsed)

    def lookups(self, outcomes: Sequence[SourceOutcome]) -> None:
        """One lookup's answers, one per registry asked."""
        for outcome in outcomes:
            _add(self._lookups, (outcome.registry, outcome.status), outcome.latency)

    async def flush(self) -> None:
        """Hand what was counted to prometheus-client."""
        calls, self._calls = self._calls, {}
        lookups, self._lookups = self._lookups, {}
        for (service, method, code), (count, seconds, *per_bucket) in calls.items():
            handled.labels(service, method, code).inc(count)
            _observed(handling_seconds.labels(service, method), seconds, per_bucket)
        for (registry, status), (count, seconds, *per_bucket) in lookups.items():
            registry_lookups.labels(registry.value, status.value).inc(count)
            _observed(registry_lookup_seconds.labels(registry.value), seconds, per_bucket)


def _add(table: dict[Any, list[float]], key: Any, seconds: float) -> None:
    """Count one observation of ``seconds`` under ``key``."""
    entry = table.get(key)
    if entry is None:
        entry = table[key] = [0.0] * (len(BUCKETS) + 2)
    entry[0] += 1
    entry[1] += seconds
    entry[2 + bisect_left(BUCKETS, seconds)] += 1  # the first bound >= seconds


def _observed(child: Histogram, seconds: float, per_bucket: list[float]) -> None:
    """What ``observe`` does for one value, for many: add to the child's sum and bucket
    values, which prometheus-client keeps as ``_sum`` and ``_buckets`` (so since its first
    releases; tests/unit/test_metrics_tally.py reads back what is written here)."""
    child._sum.inc(seconds)
    for value, observed in zip(child._buckets, per_bucket, strict=True):
        if observed:
            value.inc(observed)


def certificate_recorded(record: CertificateRecord) -> None:
    """A new certificate in the store."""
    source = "+".join(sorted(s.value for s in record.sources))
    certificates_issued.labels(record.kind.value, source).inc()


def denial_counted(reason: DenialReason) -> None:
    """One denial."""
    denials.labels(reason.value).inc()


def applications_counted(by_status: Mapping[ApplicationStatus, int]) -> None:
    """The store's applications by status, as the reconciler counted them after a pass."""
    for status, count in by_status.items():
        applications.labels(status.value).set(count)


def breaker_changed(dependency: str, state: BreakerState) -> None:
    """A circuit breaker's new state."""
    breaker_open.labels(dependency).set(0 if state is BreakerState.CLOSED else 1)


class Endpoint:
    """``GET /metrics`` on ``host:port``, in a thread of its own (prometheus-client's)."""

    def __init__(self, listen: str, multiproc_dir: Path | None = None) -> None:
        host, _, port = listen.rpartition(":")
        folder = multiproc_dir or (
            Path(os.environ[MULTIPROC_ENV]) if MULTIPROC_ENV in os.environ else None
        )
        registry: Any = REGISTRY
        if folder is not None:
            registry = CollectorRegistry()
            _multiprocess.MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
        self._server, self._thread = start_http_server(
            int(port), addr=host.strip("[]"), registry=registry
        )
        self.port: int = int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        if isinstance(self._thread, threading.Thread):
            self._thread.join(timeout=5)


def worker_exited(pid: int, multiproc_dir: Path) -> None:
    """Forget a dead worker's live gauges (its counters stay in the sums)."""
    _multiprocess.mark_process_dead(pid, str(multiproc_dir))  # type: ignore[no-untyped-call]
