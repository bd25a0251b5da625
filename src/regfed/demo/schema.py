"""The project's copies of the two registries' published DDL."""

from __future__ import annotations

from importlib.resources import files


def registry_ddl(name: str) -> str:
    """The DDL of the ``"city"`` or ``"federal"`` registry."""
    if name not in ("city", "federal"):
        raise ValueError(f"unknown registry {name!r}")
    return files("regfed.demo").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
