"""Everything under tests/unit is marked ``unit``: pure logic and use cases over fakes, no
PostgreSQL and no server, so ``make test-unit`` runs them alone in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests collected from this folder."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.unit)
