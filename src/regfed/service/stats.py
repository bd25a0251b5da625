"""The GetStats use case: counts from the store, so every process and restart agrees."""

from __future__ import annotations

from dataclasses import dataclass

from regfed.domain.model import DenialReason
from regfed.service.ports import CertificateStore, IssuedCounts


@dataclass(frozen=True, slots=True)
class Stats:
    """Live certificates by kind and sources; denials by reason."""

    issued: IssuedCounts
    denials: dict[DenialReason, int]


class StatsService:
    """Counts what the service has done."""

    def __init__(self, store: CertificateStore) -> None:
        self._store = store

    async def stats(self) -> Stats:
        """The counts now (denials reach the store in batches, every few seconds)."""
        return Stats(
            issued=await self._store.issued_counts(),
            denials=await self._store.denial_counts(),
        )
