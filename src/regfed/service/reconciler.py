"""The reconciler: a background task re-checking pending applications until each gets its
code or expires.

Every ``interval`` seconds it makes a *pass*: it claims the applications due at the pass's
start, oldest next check first, in small batches, and checks each through the Issue use
case (:meth:`ApplicationService.recheck`), at most ``concurrency`` at a time and at most
``rate`` per second, less while the process is answering calls (:class:`Pacer`): a backlog
must not starve the callers of Issue in the same process.

Several processes and hosts share the work through the store alone:

- **claim**: one statement leases a batch (``FOR UPDATE SKIP LOCKED``, then a lease token
  and an expiry written on each row), so no two reconcilers ever hold one application;
- **settle**: one statement writes a check's outcome and ends the lease, only while the
  lease is still ours; closing erases the sealed person in that same statement;
- a process that dies (or is cancelled) between the two loses nothing: its rows stay
  pending, their lease runs out, and the next pass checks them again. A certificate
  issued before the crash is not issued twice: Issue is idempotent, so the re-check gets
  the same one back.

A pass checks each application at most once: it only claims what was due when it began,
and a check moves the next one into the future. When the registries cannot answer (Issue
would be UNAVAILABLE) or the store fails, the pass pauses: what it holds is released
unchanged, with no check counted and nothing closed, and the next pass tries again.

Between passes it waits ``interval`` seconds, or less when an application falls due
sooner (but at least a second): an application is checked when it is due, not up to an
interval later, so data that arrives is found within an interval of its last check.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from regfed.errors import SealedDataError, Unavailable
from regfed.postgres.tasks import cancel_and_wait
from regfed.service.applications import ApplicationService
from regfed.service.ports import (
    ApplicationRecord,
    ApplicationStatus,
    ApplicationStore,
    Clock,
    Lease,
    utc_now,
)

log = logging.getLogger(__name__)

# A pass claims this many batches at most: far more than any backlog needs (a pass only
# takes what was due when it began), and a bound if a store misbehaved.
MAX_BATCHES_PER_PASS = 1_000_000
DEFAULT_LEASE = timedelta(minutes=2)  # far longer than a batch's checks take
MIN_WAIT = 1.0  # seconds between passes at least (or the interval, when it is shorter)


class Outcome(enum.Enum):
    """What became of one claimed application in a pass."""

    PENDING = "pending"  # checked, denied, not expired
    ISSUED = "issued"
    EXPIRED = "expired"
    UNANSWERED = "unanswered"  # the registries (or the store) could not answer: released
    SKIPPED = "skipped"  # not checked: the pass paused first; released
    FAILED = "failed"  # could not be checked (sealed data unreadable, a bug): postponed
    LOST = "lost"  # checked, but the lease had passed to another reconciler


@dataclass
class PassReport:
    """What one pass did."""

    outcomes: dict[Outcome, int] = field(default_factory=dict)
    paused: bool = False
    seconds: float = 0.0

    @property
    def checked(self) -> int:
        """Applications checked and written in this pass."""
        return sum(self.outcomes.get(o, 0) for o in (Outcome.PENDING, *_CLOSED))

    def count(self, outcome: Outcome) -> None:
        """One more ``outcome``."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def summary(self) -> str:
        """The pass in words, for the log (counts only: no personal data)."""
        counted = sorted(self.outcomes.items(), key=lambda item: item[0].value)
        parts = [f"{n} {outcome.value}" for outcome, n in counted]
        paused = "; paused: the registries or the store did not answer" if self.paused else ""
        return f"{', '.join(parts) or 'nothing due'} in {self.seconds:.2f} s{paused}"


_CLOSED = (Outcome.ISSUED, Outcome.EXPIRED)
_STATUS_OUTCOME = {
    ApplicationStatus.PENDING: Outcome.PENDING,
    ApplicationStatus.ISSUED: Outcome.ISSUED,
    ApplicationStatus.EXPIRED: Outcome.EXPIRED,
}


# The reconciler gives way to callers: while this process answers c calls a second, its
# rate is divided by 1 + c / YIELD_RATE (600 calls/s: a seventh). Background work has no
# caller waiting on it, while each check costs about what a person's Issue call costs; it
# never stops (a busy server still works through its backlog, more slowly), and an idle
# one works at the full rate. Calls in flight would be the wrong measure: under load most
# of a call's wait is in gRPC's queue, before its handler starts.
YIELD_RATE = 100.0


class Pacer:
    """At most ``rate`` starts per second, fewer while ``call_rate()`` calls a second are
    being answered: each start waits for its slot."""

    def __init__(self, rate: float, call_rate: Callable[[], float] | None = None) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self._gap = 1.0 / rate
        self._call_rate = call_rate
        self._next = time.monotonic()

    def gap(self) -> float:
        """Seconds between two starts now."""
        calls = self._call_rate() if self._call_rate is not None else 0.0
        return self._gap * (1 + calls / YIELD_RATE)

    async def wait(self) -> None:
        """Until this caller's slot comes."""
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self.gap()
        if slot > now:
            await asyncio.sleep(slot - now)


class Reconciler:
    """Re-checks pending applications in passes, every ``interval`` seconds."""

    def __init__(
        self,
        applications: ApplicationService,
        store: ApplicationStore,
        *,
        interval: float,
        concurrency: int,
        rate: float,
        postpone: timedelta,
        lease: timedelta = DEFAULT_LEASE,
        batch: int | None = None,
        clock: Clock = utc_now,
        on_counts: Callable[[dict[ApplicationStatus, int]], None] | None = None,
        call_rate: Callable[[], float] | None = None,
    ) -> None:
        """``on_counts``: told the store's applications by status after each pass (the
        ``regfed_applications`` gauge), so every process reports the same numbers;
        ``call_rate``: the calls a second this process answers now, which slow it down."""
        if interval <= 0 or concurrency < 1:
            raise ValueError("the interval must be positive and the concurrency at least 1")
        self._applications = applications
        self._store = store
        self._interval = interval
        self._concurrency = concurrency
        self._rate = rate
        self._postpone = postpone  # how long an application that failed to check waits
        self._lease = lease
        self._batch = batch or 4 * concurrency
        self._clock = clock
        self._on_counts = on_counts
        self._call_rate = call_rate
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # passes finished, for tests and logs

    async def start(self) -> None:
        """Run passes in the background from now on."""
        self._task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        """Stop at once: a check in flight is abandoned, its lease runs out (nothing lost)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            wait = self._interval
            try:
                report = await self.run_pass()
                if report.outcomes:
                    log.info("reconcile pass: %s", report.summary())
                if not report.paused:
                    wait = await self.wait_before_next_pass()
                if self._on_counts is not None:
                    self._on_counts(await self.counts_by_status())
            except Unavailable as exc:
                log.warning("reconciler: the store did not answer (%s)", exc.reason)
            except Exception:  # a bug must not stop the reconciler for good
                log.exception("reconcile pass failed")
            await asyncio.sleep(wait)

    async def counts_by_status(self) -> dict[ApplicationStatus, int]:
        """Every application in the store, by status (each status present, 0 if none)."""
        totals = dict.fromkeys(ApplicationStatus, 0)
        for (_, status), count in (await self._store.application_counts()).items():
            totals[status] += count
        return totals

    async def wait_before_next_pass(self) -> float:
        """Seconds until the next pass: until the earliest application falls due, within
        ``MIN_WAIT`` (or the interval if shorter) .. the interval."""
        floor = min(MIN_WAIT, self._interval)
        due = await self._store.next_due()
        if due is None:
            return self._interval
        until_due = (due - self._clock()).total_seconds()
        return min(self._interval, max(floor, until_due))

    async def run_pass(self) -> PassReport:
        """Check every application due now, once; pause at the first outage."""
        started = time.perf_counter()
        due_by = self._clock()
        token = secrets.token_bytes(16)
        pacer = Pacer(self._rate, self._call_rate)
        report = PassReport()
        for _ in range(MAX_BATCHES_PER_PASS):
            now = self._clock()
            lease = Lease(token, now + self._lease)
            try:
                batch = await self._store.claim(
                    due_by=due_by, now=now, lease=lease, limit=self._batch
                )
            except Unavailable as exc:
                log.warning("reconcile pass: cannot claim applications (%s)", exc.reason)
                report.paused = True
                break
            if not batch:
                break
            await self._check_batch(batch, lease, pacer, report)
            if report.paused:
                break
        self.passes += 1
        report.seconds = time.perf_counter() - started
        return report

    async def _check_batch(
        self, batch: list[ApplicationRecord], lease: Lease, pacer: Pacer, report: PassReport
    ) -> None:
        """Check a claimed batch, ``concurrency`` at a time; release what was not checked."""
        gate = asyncio.Semaphore(self._concurrency)

        async def one(application: ApplicationRecord) -> Outcome:
            async with gate:
                if report.paused:
                    return Outcome.SKIPPED
                await pacer.wait()
                outcome = await self._check(application, lease)
                if outcome is Outcome.UNANSWERED:
                    report.paused = True
                return outcome

        ordered = sorted(batch, key=lambda a: (a.next_check_at, a.submitted_at))
        outcomes = await asyncio.gather(*(one(a) for a in ordered))
        unchanged, postponed = [], []
        for application, outcome in zip(ordered, outcomes, strict=True):
            report.count(outcome)
            if outcome in (Outcome.UNANSWERED, Outcome.SKIPPED):
                unchanged.append(application.id)
            elif outcome is Outcome.FAILED:
                postponed.append(application.id)
        try:
            if unchanged:
                await self._store.release(unchanged, lease)
            if postponed:
                await self._store.release(postponed, lease, self._clock() + self._postpone)
        except Unavailable as exc:
            # The leases run out by themselves: nothing is lost, only delayed.
            log.warning("reconcile pass: cannot release applications (%s)", exc.reason)
            report.paused = True

    async def _check(self, application: ApplicationRecord, lease: Lease) -> Outcome:
        """One application: checked and settled, or why not. Never raises but cancellation."""
        try:
            checked = await self._applications.recheck(application)
            if checked is None:
                return Outcome.UNANSWERED
            if not await self._store.settle(checked, lease):
                log.warning(
                    "application %s: lease lost before the check was written", application.id
                )
                return Outcome.LOST
        except Unavailable as exc:
            log.warning("application %s: not checked (%s)", application.id, exc.reason)
            return Outcome.UNANSWERED
        except SealedDataError as exc:
            log.error("application %s: not checked: %s", application.id, exc)
            return Outcome.FAILED
        except Exception:
            log.exception("application %s: not checked", application.id)
            return Outcome.FAILED
        return _STATUS_OUTCOME[checked.status]
