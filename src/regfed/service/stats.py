"""The GetStats use case: counts from the store, so every process and restart agrees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from regfed.domain.model import DenialReason, moscow_date
from regfed.service.ports import (
    ApplicationCounts,
    ApplicationStore,
    CertificateStore,
    IssuedCounts,
    require_aware,
)


@dataclass(frozen=True, slots=True)
class Stats:
    """Live certificates by kind and sources; denials by reason; applications by category
    and status, and the median time from application to code."""

    issued: IssuedCounts
    denials: dict[DenialReason, int]
    applications: ApplicationCounts
    median_time_to_code: timedelta | None
    applications_with_code: int


class StatsService:
    """Counts what the service has done."""

    def __init__(self, store: CertificateStore, applications: ApplicationStore) -> None:
        self._store = store
        self._applications = applications

    async def stats(self, since: datetime | None = None, until: datetime | None = None) -> Stats:
        """The counts now, over ``since`` (inclusive) .. ``until`` (exclusive) when given:
        certificates by issue time, applications by submission time, denials by the
        Moscow days the window touches (they are kept per day, and reach the store in
        batches every few seconds)."""
        require_aware("since", since)
        require_aware("until", until)
        median, with_code = await self._applications.median_time_to_code(since=since, until=until)
        return Stats(
            issued=await self._store.issued_counts(since=since, until=until),
            denials=await self._store.denial_counts(
                since=moscow_date(since) if since else None,
                until=moscow_date(until) if until else None,
            ),
            applications=await self._applications.application_counts(since=since, until=until),
            median_time_to_code=median,
            applications_with_code=with_code,
        )
