"""The audit trail in the service database: refusals written in batches, and the listing
``regfed audit list`` shows.

Issued certificates and revocations are not written here: the certificate store writes
their rows in the same statement as the change (``store/certificates.py``), so none is
lost. Refusals are written in batches, like the denial tally: a refused call must not wait
for the database (a flood of them would otherwise be a cheap way to load it). Their buffer
is bounded; what overflows it, or cannot be written when the database is down, is counted
and logged as a warning — never dropped silently. A stop flushes what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

import asyncpg

from regfed.postgres.bounded import DATABASE_ERRORS, BoundedPool, bounded
from regfed.postgres.tasks import PeriodicFlush
from regfed.service.audit import Action, AuditEntry
from regfed.service.ports import require_aware

log = logging.getLogger(__name__)

_COLUMNS: Final = ("at", "action", "caller", "role", "request_id", "method", "uvci", "outcome")

_LIST: Final = """
SELECT at, action, caller, role, request_id, method, uvci, outcome
  FROM audit_log
 WHERE ($1::timestamptz IS NULL OR at >= $1)
   AND ($2::text IS NULL OR caller = $2)
   AND ($3::text IS NULL OR action = $3)
 ORDER BY at, id
 LIMIT $4
"""


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        at=row["at"],
        action=Action(row["action"]),
        caller=row["caller"],
        role=row["role"],
        request_id=row["request_id"],
        method=row["method"],
        uvci=row["uvci"],
        outcome=row["outcome"],
    )


async def list_entries(
    conn: asyncpg.Connection,
    *,
    since: datetime | None = None,
    caller: str | None = None,
    action: Action | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    """Audit rows from ``since`` on, of ``caller`` and ``action`` when given, oldest first."""
    require_aware("since", since)
    rows = await conn.fetch(_LIST, since, caller, action.value if action else None, limit)
    return [_entry(row) for row in rows]


class RefusalTrail(PeriodicFlush):
    """Refused calls, gathered in memory and written every ``interval`` seconds."""

    def __init__(
        self,
        pool: BoundedPool | asyncpg.Pool,
        *,
        interval: float = 1.0,
        limit: int = 10_000,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(interval, "audit-refusals")
        self._pool = bounded(pool)
        self._limit = limit
        self._on_dropped = on_dropped
        self._pending: list[AuditEntry] = []
        self._dropped = 0

    def refused(self, entry: AuditEntry) -> None:
        """Keep a refusal for the next write (counted as dropped when the buffer is full)."""
        if len(self._pending) >= self._limit:
            self._dropped += 1
            if self._on_dropped is not None:
                self._on_dropped(1)
            return
        self._pending.append(entry)

    async def flush(self) -> None:
        """Write what is pending; when the database fails, keep it for the next flush."""
        if self._dropped:
            log.warning("audit: %d refusals were not recorded (buffer full)", self._dropped)
            self._dropped = 0
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        records = [
            (e.at, e.action.value, e.caller, e.role, e.request_id, e.method, e.uvci, e.outcome)
            for e in batch
        ]
        try:
            async with self._pool.connection() as conn:
                await conn.copy_records_to_table("audit_log", records=records, columns=_COLUMNS)
        except DATABASE_ERRORS as exc:
            log.warning(
                "audit: could not write %d refusals (%s); will retry",
                len(batch),
                type(exc).__name__,
            )
            room = self._limit - len(self._pending)
            self._pending[:0] = batch[:room]
            lost = len(batch) - min(room, len(batch))
            if lost:
                self._dropped += lost
                if self._on_dropped is not None:
                    self._on_dropped(lost)
