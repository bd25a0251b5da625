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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import REGISTRY

from regfed.breaker import BreakerState
from regfed.domain.model import DenialReason
from regfed.federation.fanout import SourceOutcome
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
    gathered in plain dicts (a lookup, an addition and a bisect) and handed to
    prometheus-client every ``interval`` seconds and when stopped.

    prometheus-client's values take a lock each, and a histogram walks its bounds, on
    every observation: on the call's path that cost more than the call's log line.
    ``/metrics`` lags the calls by ``interval`` at most. Everything runs on the event
    loop's thread, so nothing here needs a lock.
    """

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(interval, "metrics-tally")
        self._counts: dict[tuple[Counter, tuple[str, ...]], int] = {}
        # (histogram, labels) -> [sum of seconds, observations per bucket...]
        self._times: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}

    def call(self, service: str, method: str, code: str, elapsed: float) -> None:
        """One call answered with ``code`` after ``elapsed`` seconds."""
        self._count(handled, (service, method, code))
        self._time(handling_seconds, (service, method), elapsed)

    def lookup(self, outcome: SourceOutcome) -> None:
        """One registry's answer to one lookup."""
        registry = outcome.registry.value
        self._count(registry_lookups, (registry, outcome.status.value))
        self._time(registry_lookup_seconds, (registry,), outcome.latency)

    def _count(self, counter: Counter, labels: tuple[str, ...]) -> None:
        key = (counter, labels)
        self._counts[key] = self._counts.get(key, 0) + 1

    def _time(self, histogram: Histogram, labels: tuple[str, ...], seconds: float) -> None:
        key = (histogram, labels)
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = [0.0] * (len(BUCKETS) + 1)
        times[0] += seconds
        times[1 + bisect_left(BUCKETS, seconds)] += 1  # the first bound >= seconds

    async def flush(self) -> None:
        """Hand what was counted to prometheus-client."""
        counts, self._counts = self._counts, {}
        times, self._times = self._times, {}
        for (counter, labels), count in counts.items():
            counter.labels(*labels).inc(count)
        for (histogram, labels), (seconds, *per_bucket) in times.items():
            # What ``observe`` does for one value, for many: add to the child's sum and
            # bucket values, which prometheus-client keeps as ``_sum`` and ``_buckets``
            # (so since its first releases; tests/unit/test_metrics_tally.py reads back
            # what is written here).
            child = histogram.labels(*labels)
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
