"""The current call's deadline, and the budgets derived from it."""

from __future__ import annotations

from regfed import deadlines


def test_outside_a_call_there_is_no_deadline() -> None:
    """Background work is bounded by its own limits alone."""
    assert deadlines.remaining() is None
    assert deadlines.budget(2.0) == 2.0
    assert not deadlines.expired()


def test_a_budget_is_cut_to_what_is_left() -> None:
    """Inside a call a wait gets the smaller of its own limit and the call's time left."""
    with deadlines.within(0.5):
        assert 0 < deadlines.budget(2.0) <= 0.5
        assert deadlines.budget(0.1) == 0.1
    assert deadlines.remaining() is None


def test_an_inner_scope_never_extends_the_outer_one() -> None:
    """A registry's own timeout inside a call that has less time left keeps the call's."""
    with deadlines.within(0.2), deadlines.within(10):
        remaining = deadlines.remaining()
        assert remaining is not None
        assert remaining <= 0.2


def test_a_spent_deadline_gives_no_budget() -> None:
    """Past the deadline every budget is zero."""
    with deadlines.within(0):
        assert deadlines.expired()
        assert deadlines.budget(5) == 0
