"""Asking every registry at once, each within its own deadline inside the caller's.

The registries are data: a list of :class:`Upstream` entries, each an adapter with its
own timeout and its role in the merge. A third registry (a partner region reached over
gRPC) is one more entry and one more adapter; nothing here changes.

Each upstream answers with a named outcome — matched, not found, failed, timed out — never
an exception: a registry's fault degrades the answer, it does not fail the call. An
upstream may have a circuit breaker (:mod:`regfed.breaker`): while it is open the
registry is not asked and reports FAILED at once, instead of every call waiting out its
timeout on a dead registry.

A record is the person only if its names agree with the query's
(:func:`~regfed.domain.identifiers.same_names`). The adapters choose their record by that
rule; the federation checks it again for every upstream, so a record that is not the
person becomes NOT_FOUND here whatever an adapter does, and nothing of it goes further.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regfed import deadlines
from regfed.breaker import UNGUARDED, CircuitBreaker
from regfed.domain.identifiers import same_names
from regfed.domain.model import PersonQuery, PersonRecord, Registry
from regfed.errors import RegistryError
from regfed.federation.merge import merge
from regfed.logthrottle import DEPENDENCIES
from regfed.registries.base import RegistryAdapter

log = logging.getLogger(__name__)


class SourceStatus(enum.Enum):
    """How one registry answered."""

    MATCHED = "matched"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """One registry's answer to one lookup."""

    registry: Registry
    status: SourceStatus
    latency: float  # seconds
    record: PersonRecord | None = None

    @property
    def answered(self) -> bool:
        """True when the registry gave an answer (matched or not found)."""
        return self.status in (SourceStatus.MATCHED, SourceStatus.NOT_FOUND)


@dataclass(frozen=True, slots=True)
class FederatedLookup:
    """Every registry's outcome and the merged record (None: nobody who answered knows them)."""

    sources: tuple[SourceOutcome, ...]
    record: PersonRecord | None

    @property
    def degraded(self) -> bool:
        """True when some registry did not answer: the record may be missing events."""
        return not all(s.answered for s in self.sources)

    @property
    def unanswered(self) -> bool:
        """True when no registry answered at all."""
        return not any(s.answered for s in self.sources)


@dataclass(frozen=True, slots=True)
class Upstream:
    """One registry the federation asks.

    ``timeout``: seconds it gets, inside the caller's deadline. ``leads``: its record, when
    it has one, leads the merge (names, and events the same in two registries). Records
    are merged in list order with the leading upstreams' first, so with the city leading
    and the federal registry after it, the city's record leads when the city knows the
    person and the federal one stands alone otherwise. ``breaker``: when given, failures
    and timeouts of this upstream open it, and it is not asked while it is open.
    """

    adapter: RegistryAdapter
    timeout: float
    leads: bool = False
    breaker: CircuitBreaker | None = None


class Federation:
    """Looks a person up in every registry concurrently and merges what they know."""

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        *,
        observer: Callable[[Sequence[SourceOutcome]], None] | None = None,
    ) -> None:
        """``observer`` hears every lookup's outcomes, one per registry (metrics, the
        call's log line)."""
        if not upstreams:
            raise ValueError("a federation needs at least one registry")
        self._upstreams = tuple(upstreams)
        self._observer = observer
        # Merge order: leading upstreams first, each group in list order (sorted is stable).
        self._merge_order = sorted(range(len(upstreams)), key=lambda i: not upstreams[i].leads)

    async def lookup(self, query: PersonQuery, remaining: float | None = None) -> FederatedLookup:
        """Ask every registry; ``remaining`` is the caller's time left, in seconds.

        Latency is the slower registry's, never the sum.
        """
        outcomes = await asyncio.gather(*(self._ask(u, query, remaining) for u in self._upstreams))
        if self._observer is not None:
            self._observer(outcomes)
        records = [r for r in (outcomes[i].record for i in self._merge_order) if r is not None]
        return FederatedLookup(sources=tuple(outcomes), record=merge(records))

    @staticmethod
    async def _ask(
        upstream: Upstream, query: PersonQuery, remaining: float | None
    ) -> SourceOutcome:
        """One registry's outcome; its failures are reported, not raised."""
        adapter = upstream.adapter
        name = adapter.registry.value
        started = time.perf_counter()
        if not adapter.keyed_on(query):
            # Nothing to ask this registry: it cannot know the person, down or not.
            return SourceOutcome(
                adapter.registry, SourceStatus.NOT_FOUND, time.perf_counter() - started
            )
        permit = upstream.breaker.permit() if upstream.breaker is not None else UNGUARDED
        if permit is None:
            # The breaker is open: the registry is taken as down, nobody waits on it.
            return SourceOutcome(
                adapter.registry, SourceStatus.FAILED, time.perf_counter() - started
            )
        limit = _limit(upstream.timeout, remaining)
        status = SourceStatus.NOT_FOUND
        record: PersonRecord | None = None
        try:
            async with asyncio.timeout(limit):
                with deadlines.within(limit):
                    record = await adapter.find(query)
        except TimeoutError:
            status = SourceStatus.TIMED_OUT
            if limit < upstream.timeout:
                permit.abandoned()  # the caller's time ran out, not the registry's
            else:
                permit.failed()
            DEPENDENCIES.log(
                log,
                logging.WARNING,
                f"registry:{name}",
                "registry %s timed out after %.3fs",
                name,
                limit,
            )
        except RegistryError as exc:
            status = SourceStatus.FAILED
            permit.failed()
            DEPENDENCIES.log(
                log, logging.WARNING, f"registry:{name}", "registry %s failed: %s", name, exc
            )
        except Exception as exc:
            # An adapter bug must not take the other registry's answer down with it.
            status = SourceStatus.FAILED
            permit.failed()
            DEPENDENCIES.log(
                log,
                logging.ERROR,
                f"registry:{name}",
                "registry %s failed unexpectedly",
                name,
                exc_info=exc,
            )
        except BaseException:
            permit.abandoned()  # cancelled: the call is gone, the registry told nothing
            raise
        else:
            permit.succeeded()
            if record is not None and same_names(
                query, record.last_name, record.first_name, record.middle_name
            ):
                status = SourceStatus.MATCHED
            else:
                record = None  # not the person asked about: as if unknown, nothing kept
        return SourceOutcome(adapter.registry, status, time.perf_counter() - started, record)


def _limit(timeout: float, remaining: float | None) -> float:
    """An upstream's own timeout, cut to what is left of the caller's deadline less a
    tenth of it (at most 0.2 s): the store and the signer need a moment after the lookup,
    and a degraded answer in time beats a complete one too late."""
    if remaining is None:
        return timeout
    return max(0.0, min(timeout, remaining - min(0.2, remaining / 10)))
