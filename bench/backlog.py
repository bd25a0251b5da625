"""A backlog of pending applications, for the reconciler's bench phases.

The backlog is ``count`` applications of people the registries do not know: the
population's people from index ``people`` on (``regfed.demo.populate`` writes only
0..people-1), submitted through the server's own ``SubmitApplication``, so each is a real
PENDING application (NOT_FOUND, its person sealed). Between phases the backlog is
*parked* (every pending application's next check moved a year ahead) so the reconciler
leaves it alone; a phase *releases* it (every next check set to now) and the server's
reconciler, which makes a pass every ``REGFED_RECONCILE_INTERVAL`` seconds, takes it up.

Parking and releasing write the service database directly: the benchmark's own control,
not something the service offers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from regfed.demo.populate import population_person

CONTACT = "bench@example.org"
_PARK = """
UPDATE applications SET next_check_at = $1::timestamptz + interval '365 days'
 WHERE status = 'pending'
"""
_RELEASE = "UPDATE applications SET next_check_at = $1 WHERE status = 'pending'"
_CHECKED_SINCE = """
SELECT count(*) AS checked, max(checked_at) AS last
  FROM applications WHERE status = 'pending' AND checked_at >= $1
"""
_PENDING = "SELECT count(*) FROM applications WHERE status = 'pending'"


def backlog_bodies(people: int, seed: int, count: int) -> Iterator[dict[str, Any]]:
    """SubmitApplicationRequest bodies (JSON form) for ``count`` people missing from the
    registries populated with ``people`` people."""
    for index in range(people, people + count):
        yield {
            "person": population_person(index, seed).request_person(),
            "contact": CONTACT,
            "category": "APPLICATION_CATEGORY_VACCINATION_NOT_FOUND",
        }


async def submit_backlog(
    target: str,
    people: int,
    seed: int,
    count: int,
    *,
    concurrency: int = 32,
    deadline: float = 20,
    metadata: tuple[tuple[str, str], ...] = (),
) -> int:
    """Submit the backlog through ``target``'s SubmitApplication (``metadata``: the bench's
    bearer token when the server checks one); how many are PENDING."""
    import grpc
    from google.protobuf import json_format

    from regfed.v1 import certificate_service_pb2 as pb
    from regfed.v1 import certificate_service_pb2_grpc as pb_grpc

    todo = backlog_bodies(people, seed, count)
    pending = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.CertificateServiceStub(channel)

        async def worker() -> None:
            nonlocal pending
            for body in todo:
                request = json_format.ParseDict(body, pb.SubmitApplicationRequest())
                try:
                    answer = await stub.SubmitApplication(
                        request, timeout=deadline, metadata=metadata
                    )
                except grpc.aio.AioRpcError:
                    continue
                pending += answer.status == pb.APPLICATION_STATUS_PENDING

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return pending


@dataclass
class Store:
    """The service database, for parking and releasing the backlog."""

    dsn: str

    async def _execute(self, sql: str, *args: Any) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchrow(sql, *args)
        finally:
            await conn.close()

    async def pending(self) -> int:
        """Pending applications."""
        row = await self._execute(_PENDING)
        return int(row[0])

    async def park(self) -> None:
        """Keep the reconciler off the backlog: every next check a year ahead."""
        await self._execute(_PARK, datetime.now(UTC))

    async def release(self) -> datetime:
        """Make the whole backlog due now; the instant it was released."""
        now = datetime.now(UTC)
        await self._execute(_RELEASE, now)
        return now

    async def checked_since(self, since: datetime) -> tuple[int, datetime | None]:
        """Pending applications checked at or after ``since``, and the last check's time."""
        row = await self._execute(_CHECKED_SINCE, since)
        return int(row["checked"]), row["last"]

    async def one_pass(self, total: int, limit: float, poll: float = 0.5) -> dict[str, Any]:
        """Release the backlog and wait (at most ``limit`` seconds) until every one of its
        ``total`` applications has been checked; the pass's figures."""
        released = await self.release()
        started = time.monotonic()
        checked, last = 0, None
        while time.monotonic() - started < limit:
            await asyncio.sleep(poll)
            checked, last = await self.checked_since(released)
            if checked >= total:
                break
        await self.park()
        seconds = (last - released).total_seconds() if last is not None else None
        return {
            "applications": total,
            "checked": checked,
            "complete": checked >= total,
            "seconds": round(seconds, 2) if seconds is not None else None,
            "checks_per_second": round(checked / seconds, 1) if seconds else None,
            "limit_seconds": limit,
        }
