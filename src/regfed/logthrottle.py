"""Failures of one dependency logged once, then counted.

During an outage every call fails the same way: a traceback per call buried the log
(6.7 MB over four 5-second store outages). :class:`Throttle` logs the first failure of a
key (a dependency: ``store``, ``registry:city``) in full, traceback included, and only
counts the ones after it; the next line for that key, once ``window`` seconds have
passed, says how many were not logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Seen:
    since: float
    suppressed: int = 0


class Throttle:
    """At most one log line per key per ``window`` seconds, and a count of the rest."""

    def __init__(self, window: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: str,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``window`` seconds ago; True
        when it was logged. The traceback of ``exc_info`` goes only with a logged line."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self._window:
            seen.suppressed += 1
            return False
        if seen is not None and seen.suppressed:
            message += " (%d more like it in the last %.0f s not logged)"
            args = (*args, seen.suppressed, now - seen.since)
        self._seen[key] = _Seen(since=now)
        logger.log(level, message, *args, exc_info=exc_info)
        return True


# The process's throttle for dependency failures: the API's UNAVAILABLE answers, the
# registries' failures, the store's background work.
DEPENDENCIES = Throttle()
