"""Asking every registry at once, each within its own deadline inside the caller's.

The registries are data: a list of :class:`Upstream` entries, each an adapter with its
own timeout and its role in the merge. A third registry (a partner region reached over
gRPC) is one more entry and one more adapter; nothing here changes.

Each upstream answers with a named outcome — matched, not found, failed, timed out — never
an exception: a registry's fault degrades the answer, it does not fail the call.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regfed.domain.identifiers import names_match
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
    # Matched by identifier and birth date, with the name spelled otherwise.
    name_mismatch: bool = False

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

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        *,
        observer: Callable[[SourceOutcome], None] | None = None,
    ) -> None:
        """``observer`` hears every registry's outcome (metrics, the call's log line)."""
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
        outcomes = await asyncio.gather(
            *(self._ask(u.adapter, query, _limit(u.timeout, remaining)) for u in self._upstreams)
        )
        if self._observer is not None:
            for outcome in outcomes:
                self._observer(outcome)
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
                record = await adapter.find(query)
            if record is not None:
                status = SourceStatus.MATCHED
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
        mismatch = record is not None and not _same_name(query, record)
        return SourceOutcome(
            adapter.registry, status, time.perf_counter() - started, record, mismatch
        )


def _limit(timeout: float, remaining: float | None) -> float:
    """An upstream's own timeout, cut to what is left of the caller's deadline."""
    return timeout if remaining is None else max(0.0, min(timeout, remaining))


def _same_name(query: PersonQuery, record: PersonRecord) -> bool:
    """Whether the registry spells the person's names as the request does (a patronymic
    only counts when both give one)."""
    if not (
        names_match(query.last_name, record.last_name)
        and names_match(query.first_name, record.first_name)
    ):
        return False
    return not (query.middle_name and record.middle_name) or names_match(
        query.middle_name, record.middle_name
    )
