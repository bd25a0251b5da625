"""The README's promises that code can check."""

from __future__ import annotations

from pathlib import Path

from regfed.demo.people import readme_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_lists_the_demo_people_as_seeded() -> None:
    """The demo table in the README is the one the seeded people produce."""
    assert readme_table() in README.read_text(encoding="utf-8")
