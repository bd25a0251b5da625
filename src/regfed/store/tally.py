"""Denial counts gathered in memory and written in batches.

Counting each denial with its own upsert put a write on every denied call, and all the
denials of one reason on one day update the same row, so concurrent calls queued on its
lock. Counts are statistics: they are added up here and flushed every few seconds (and
at shutdown), one upsert per reason and day.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import date

from regfed.domain.model import DenialReason
from regfed.errors import StoreUnavailable
from regfed.postgres.tasks import PeriodicFlush
from regfed.store.certificates import CertificateStore

log = logging.getLogger(__name__)


class DenialTally(PeriodicFlush):
    """Denials by reason and day, flushed to the store every ``interval`` seconds."""

    def __init__(
        self,
        store: CertificateStore,
        *,
        interval: float = 5.0,
        on_denial: Callable[[DenialReason], None] | None = None,
    ) -> None:
        """``on_denial`` hears each denial as it is counted (the metrics)."""
        super().__init__(interval, "denial-tally")
        self._store = store
        self._on_denial = on_denial
        self._pending: Counter[tuple[DenialReason, date]] = Counter()

    def add(self, reason: DenialReason, day: date) -> None:
        """Count one denial."""
        self._pending[(reason, day)] += 1
        if self._on_denial is not None:
            self._on_denial(reason)

    async def flush(self) -> None:
        """Write what has been counted; on failure keep it for the next flush."""
        pending, self._pending = self._pending, Counter()
        for (reason, day), count in pending.items():
            try:
                await self._store.count_denial(reason, day, count)
            except StoreUnavailable:
                log.warning("could not write %d %s denials; will retry", count, reason.value)
                self._pending[(reason, day)] += count
