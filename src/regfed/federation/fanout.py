"""Asking every registry at once, each within its own deadline inside the caller's.

The registries are data: a list of :class:`Upstream` entries, each an adapter with its
own timeout and its role in the merge. A third registry (a partner region reached over
gRPC) is one more entry and one more adapter; nothing here changes.

Each upstream answers with a named outcome — matched, not found, failed, timed out — never
an exception: a registry's fault degrades the answer, it does not fail the call.

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
from collections.abc import Sequence
from dataclasses import dataclass

from regfed import deadlines
from regfed.domain.identifiers import same_names
from regfed.domain.model import PersonQuery, PersonRecord, Registry
from regfed.errors import RegistryError
from regfed.federation.merge import merge
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
    person and the federal one stands alone otherwise.
    """

    adapter: RegistryAdapter
    timeout: float
    leads: bool = False


class Federation:
    """Looks a person up in every registry concurrently and merges what they know."""

    def __init__(self, upstreams: Sequence[Upstream]) -> None:
        if not upstreams:
            raise ValueError("a federation needs at least one registry")
        self._upstreams = tuple(upstreams)
        # Merge order: leading upstreams first, each group in list order (sorted is stable).
        self._merge_order = sorted(range(len(upstreams)), key=lambda i: not upstreams[i].leads)

    async def lookup(self, query: PersonQuery, remaining: float | None = None) -> FederatedLookup:
        """Ask every registry; ``remaining`` is the caller's time left, in seconds.

        Latency is the slower registry's, never the sum.
        """
        outcomes = await asyncio.gather(
            *(self._ask(u.adapter, query, _limit(u.timeout, remaining)) for u in self._upstreams)
        )
        records = [r for r in (outcomes[i].record for i in self._merge_order) if r is not None]
        return FederatedLookup(sources=tuple(outcomes), record=merge(records))

    @staticmethod
    async def _ask(adapter: RegistryAdapter, query: PersonQuery, limit: float) -> SourceOutcome:
        """One registry's outcome; its failures are reported, not raised."""
        started = time.perf_counter()
        status = SourceStatus.NOT_FOUND
        record: PersonRecord | None = None
        try:
            async with asyncio.timeout(limit):
                with deadlines.within(limit):
                    record = await adapter.find(query)
            if record is not None and same_names(
                query, record.last_name, record.first_name, record.middle_name
            ):
                status = SourceStatus.MATCHED
            else:
                record = None  # not the person asked about: as if unknown, nothing kept
        except TimeoutError:
            status = SourceStatus.TIMED_OUT
            log.warning("registry %s timed out after %.3fs", adapter.registry.value, limit)
        except RegistryError as exc:
            status = SourceStatus.FAILED
            log.warning("registry %s failed: %s", adapter.registry.value, exc)
        except Exception:
            # An adapter bug must not take the other registry's answer down with it.
            status = SourceStatus.FAILED
            log.exception("registry %s failed unexpectedly", adapter.registry.value)
        return SourceOutcome(adapter.registry, status, time.perf_counter() - started, record)


def _limit(timeout: float, remaining: float | None) -> float:
    """An upstream's own timeout, cut to what is left of the caller's deadline less a
    tenth of it (at most 0.2 s): the store and the signer need a moment after the lookup,
    and a degraded answer in time beats a complete one too late."""
    if remaining is None:
        return timeout
    return max(0.0, min(timeout, remaining - min(0.2, remaining / 10)))
