"""Failures of one dependency: the first logged in full, the rest counted."""

from __future__ import annotations

import logging

import pytest

from regfed.logthrottle import Throttle

log = logging.getLogger("regfed.test.throttle")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def failure() -> ValueError:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return exc


def test_one_traceback_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    """Within the window only the first line is logged (with its traceback); the next
    one after it says how many were left out."""
    clock = Clock()
    throttle = Throttle(window=30, clock=clock)
    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(100):
            throttle.log(log, logging.WARNING, "store", "store failed", exc_info=failure())
        clock.now = 31
        throttle.log(log, logging.WARNING, "store", "store failed", exc_info=failure())
    assert len(caplog.records) == 2
    assert caplog.records[0].exc_info is not None
    assert "99 more like it" in caplog.records[1].getMessage()


def test_keys_are_throttled_apart(caplog: pytest.LogCaptureFixture) -> None:
    """Each dependency gets its own first line."""
    throttle = Throttle(window=30, clock=Clock())
    with caplog.at_level(logging.WARNING, logger=log.name):
        for key in ("store", "registry:city", "store", "registry:city"):
            throttle.log(log, logging.WARNING, key, "%s failed", key)
    assert [r.getMessage() for r in caplog.records] == [
        "store failed",
        "registry:city failed",
    ]
