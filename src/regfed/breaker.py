"""Circuit breakers: stop sending calls to a dependency that keeps failing.

One breaker per registry (``federation/fanout.py``) and one for the service's own store
(``store/certificates.py``); the state is per process. After ``failures`` consecutive
failures the breaker opens: calls fail at once (a degraded answer, or UNAVAILABLE)
instead of each waiting out its timeout on a dead dependency. Once ``reset_after``
seconds have passed, ONE call is let through as a probe (half-open); its success closes
the breaker, its failure opens it for another ``reset_after``. The store's monitor also
probes on its own and closes or trips the breaker directly (:meth:`close`, :meth:`trip`).

Observable for logs and metrics: every change of state is logged (one line, naming the
dependency), and :attr:`state`, :attr:`consecutive_failures` and :attr:`opened_total`
can be read at any time; :meth:`subscribe` calls a function on each change.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    """Where a breaker stands."""

    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls fail at once
    HALF_OPEN = "half_open"  # one probe is in flight; other calls fail at once


class Permit:
    """Leave for one call to go to the dependency; report how it went exactly once."""

    __slots__ = ("_breaker", "_done", "probe")

    def __init__(self, breaker: CircuitBreaker | None, *, probe: bool) -> None:
        self._breaker = breaker
        self._done = False
        self.probe = probe

    def succeeded(self) -> None:
        """The dependency answered."""
        if self._settle():
            assert self._breaker is not None
            self._breaker._succeeded(self)

    def failed(self) -> None:
        """The dependency failed, or used up its own timeout."""
        if self._settle():
            assert self._breaker is not None
            self._breaker._failed(self)

    def abandoned(self) -> None:
        """The call ended without telling (cancelled, or out of the caller's time)."""
        if self._settle():
            assert self._breaker is not None
            self._breaker._abandoned(self)

    def _settle(self) -> bool:
        if self._done or self._breaker is None:
            return False
        self._done = True
        return True


# A permit for callers without a breaker: reporting on it does nothing.
UNGUARDED = Permit(None, probe=False)


class CircuitBreaker:
    """Consecutive failures open it; a probe after ``reset_after`` seconds may close it."""

    def __init__(
        self,
        name: str,
        *,
        failures: int,
        reset_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or reset_after <= 0:
            raise ValueError("failures must be >= 1 and reset_after > 0")
        self.name = name
        self._threshold = failures
        self._reset_after = reset_after
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._retry_at = 0.0
        self._opened_at = 0.0
        self._opened_total = 0
        # Whether this breaker logged its opening (it did when failures opened it; the
        # store monitor logs for hold() and trip() itself): then it logs its closing too.
        self._announced = False
        self._listeners: list[Callable[[BreakerState], None]] = []

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN once ``reset_after`` has passed still reads OPEN until a
        call takes the probe)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    @property
    def opened_total(self) -> int:
        """How many times the breaker has opened since the process started."""
        return self._opened_total

    def subscribe(self, listener: Callable[[BreakerState], None]) -> None:
        """Call ``listener`` with the new state on every change (synchronously: it must
        not block)."""
        self._listeners.append(listener)

    def permit(self) -> Permit | None:
        """Leave for one call, or None: the dependency is taken as down, fail at once."""
        if self._state is BreakerState.CLOSED:
            return Permit(self, probe=False)
        if self._state is BreakerState.OPEN and self._clock() >= self._retry_at:
            self._state = BreakerState.HALF_OPEN
            self._notify()
            return Permit(self, probe=True)
        return None

    def trip(self) -> None:
        """Open now (the store monitor's check failed, and the monitor says so in the log);
        calls may probe after ``reset_after``."""
        if self._state is not BreakerState.OPEN:
            self._open(None)
        else:
            self._retry_at = max(self._retry_at, self._clock() + self._reset_after)

    def hold(self) -> None:
        """Open until :meth:`close`: no probes (the store before its first check)."""
        self._retry_at = math.inf
        if self._state is not BreakerState.OPEN:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._notify()

    def close(self) -> None:
        """Closed now (the store monitor's check succeeded)."""
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._closed()

    # --- outcomes reported by permits ----------------------------------------------------

    def _succeeded(self, permit: Permit) -> None:
        if permit.probe or self._state is BreakerState.CLOSED:
            self._failures = 0
        if permit.probe and self._state is BreakerState.HALF_OPEN:
            self._closed()

    def _failed(self, permit: Permit) -> None:
        if permit.probe:
            if self._state is BreakerState.HALF_OPEN:
                self._failures += 1
                self._state = BreakerState.OPEN
                self._retry_at = self._clock() + self._reset_after
                self._notify()
            return
        if self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open(f"{self._failures} consecutive failures")

    def _abandoned(self, permit: Permit) -> None:
        if permit.probe and self._state is BreakerState.HALF_OPEN:
            # The probe told nothing: let the next call probe at once.
            self._state = BreakerState.OPEN
            self._retry_at = self._clock()
            self._notify()

    # --- transitions -----------------------------------------------------------------------

    def _open(self, reason: str | None) -> None:
        now = self._clock()
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._retry_at = now + self._reset_after
        self._opened_total += 1
        self._announced = self._announced or reason is not None
        if reason is not None:
            log.warning(
                "%s: circuit open after %s; calls fail at once, one probe every %.2g s",
                self.name,
                reason,
                self._reset_after,
            )
        self._notify()

    def _closed(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0
        if self._announced:
            log.info(
                "%s: circuit closed, it answers again (open for %.1f s)",
                self.name,
                self._clock() - self._opened_at,
            )
        self._announced = False
        self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self._state)
