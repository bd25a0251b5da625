"""How long the current call may still take: the caller's deadline, or a default one.

The API sets it once per call (``api/limits.py``): the caller's deadline when it sent one,
else ``REGFED_DEFAULT_DEADLINE``. Every wait below it — a registry lookup, a store
statement, a pool acquisition — takes the smaller of its own timeout and what is left
here (:func:`budget`), so no wait outlives the call that asked for it. Background work
(the store monitor, the revocation cache) runs outside any call and is bounded by each
operation's own timeout alone.

A context variable, so the value follows the call through ``await`` and into the tasks
it starts (``asyncio.gather`` copies the context), and never leaks into another call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The monotonic instant the current call must be done by; None outside any call.
_deadline: ContextVar[float | None] = ContextVar("regfed_deadline", default=None)


def remaining() -> float | None:
    """Seconds left before the current call's deadline (negative once past); None when
    there is no call."""
    end = _deadline.get()
    return None if end is None else end - time.monotonic()


def budget(limit: float) -> float:
    """``limit`` cut to what is left of the current call's deadline; never negative."""
    left = remaining()
    return limit if left is None else max(0.0, min(limit, left))


def expired() -> bool:
    """Whether the current call's deadline has passed (False outside any call)."""
    left = remaining()
    return left is not None and left <= 0


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Inside, the current call must be done within ``seconds`` (or sooner, when an outer
    deadline already says so)."""
    end = time.monotonic() + seconds
    outer = _deadline.get()
    if outer is not None:
        end = min(end, outer)
    token = _deadline.set(end)
    try:
        yield
    finally:
        _deadline.reset(token)
