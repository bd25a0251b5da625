"""Asking every registry at once, each within its own deadline inside the caller's.

Each upstream answers with a named outcome — matched, not found, failed, timed out — never
an exception: a registry's fault degrades the answer, it does not fail the call.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from regfed.domain.identifiers import names_match
from regfed.domain.model import PersonQuery, PersonRecord, Registry
from regfed.federation.merge import merge
from regfed.registries.base import RegistryAdapter, RegistryError

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


class Federation:
    """Looks a person up in every registry concurrently and merges what they know."""

    def __init__(self, adapters: Sequence[RegistryAdapter], timeout: float) -> None:
        self._adapters = tuple(adapters)
        self._timeout = timeout

    async def lookup(self, query: PersonQuery, remaining: float | None = None) -> FederatedLookup:
        """Ask every registry; ``remaining`` is the caller's time left, in seconds.

        Latency is the slower registry's, never the sum.
        """
        timeout = self._timeout if remaining is None else max(0.0, min(self._timeout, remaining))
        outcomes = await asyncio.gather(*(self._ask(a, query, timeout) for a in self._adapters))
        by_registry = {o.registry: o.record for o in outcomes}
        record = merge(by_registry.get(Registry.CITY), by_registry.get(Registry.FEDERAL))
        return FederatedLookup(sources=tuple(outcomes), record=record)

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
